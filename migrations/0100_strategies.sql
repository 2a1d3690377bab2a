-- Strategies (issue 17; docs/strategies.md, "Live runtime", "Backfill", "Report").
--
-- A strategy is a row of `strategies` (module path, parameters, limits, mode, persisted state);
-- the strategy service (services/strategy) runs the enabled ones on committed data and turns
-- their orders into `trades` rows tagged with the strategy: `source = 'strategy'`,
-- `strategy_id`, and a `client_order_id` unique across the table, derived from the strategy id
-- and the signal's key, so a signal replayed after a crash inserts nothing the second time.

CREATE TABLE strategies (
    id                   text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    module               text        NOT NULL CHECK (module <> ''),
    params               jsonb       NOT NULL DEFAULT '{}'::jsonb
                                     CHECK (jsonb_typeof(params) = 'object'),
    tickers              text[]      NOT NULL DEFAULT '{}',
    enabled              boolean     NOT NULL DEFAULT false,
    -- paper unless explicitly opted in; live also needs TRADING_MODE=live (the account).
    mode                 text        NOT NULL DEFAULT 'paper' CHECK (mode IN ('paper', 'live')),
    quantity_max         integer     NOT NULL DEFAULT 100 CHECK (quantity_max > 0),
    max_position         integer     NOT NULL DEFAULT 100 CHECK (max_position >= 0),
    max_orders_per_day   integer     NOT NULL DEFAULT 50 CHECK (max_orders_per_day >= 0),
    max_loss_per_day     numeric     NOT NULL DEFAULT 1000 CHECK (max_loss_per_day >= 0),
    -- The strategy's own JSON state (ctx.state), written in the transaction of its orders.
    state                jsonb       NOT NULL DEFAULT '{}'::jsonb
                                     CHECK (jsonb_typeof(state) = 'object'),
    -- The runtime's resume point: committed-stream id, current minute per ticker, fills seen.
    runtime              jsonb       NOT NULL DEFAULT '{}'::jsonb,
    disabled_reason      text        NOT NULL DEFAULT '',
    flatten_requested_at timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Limit breaches, errors and refusals of a strategy (open while resolved_at IS NULL), as
-- executor_alerts are for orders; health and the dashboard read the open ones.
CREATE TABLE strategy_alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    strategy_id text        NOT NULL REFERENCES strategies (id) ON DELETE CASCADE,
    kind        text        NOT NULL,
    message     text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    resolved_at timestamptz
);
CREATE INDEX strategy_alerts_open ON strategy_alerts (strategy_id, at) WHERE resolved_at IS NULL;

ALTER TABLE trades
    ADD COLUMN strategy_id     text REFERENCES strategies (id),
    ADD COLUMN client_order_id text,
    ADD COLUMN paper           boolean NOT NULL DEFAULT false;
-- One row per signal: the runtime inserts with ON CONFLICT DO NOTHING.
CREATE UNIQUE INDEX trades_client_order_id ON trades (client_order_id)
    WHERE client_order_id IS NOT NULL;
CREATE INDEX trades_strategy ON trades (strategy_id, id) WHERE strategy_id IS NOT NULL;
ALTER TABLE trades ADD CONSTRAINT trades_strategy_source_check
    CHECK (strategy_id IS NULL OR (source = 'strategy' AND client_order_id IS NOT NULL));

-- Changes from the CLI or the dashboard wake the strategy service at once (it also polls).
CREATE FUNCTION streamdesk_notify_strategy() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('streamdesk_strategies', NEW.id);
    RETURN NEW;
END
$$;
CREATE TRIGGER strategies_notify AFTER INSERT OR UPDATE OF enabled, mode, params, tickers,
    quantity_max, max_position, max_orders_per_day, max_loss_per_day, flatten_requested_at,
    module ON strategies FOR EACH ROW EXECUTE FUNCTION streamdesk_notify_strategy();

-- Backfilled bars are marked; a streamed bar is never overwritten by a backfill (the backfill
-- inserts with ON CONFLICT DO NOTHING), and a streamed update of a backfilled minute (the
-- writer's upsert, which does not name `source`) makes it a streamed bar.
ALTER TABLE bars_1m ADD COLUMN source text NOT NULL DEFAULT 'stream'
    CHECK (source IN ('stream', 'backfill'));
CREATE FUNCTION streamdesk_bars_1m_streamed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.source := 'stream';
    RETURN NEW;
END
$$;
CREATE TRIGGER bars_1m_streamed BEFORE UPDATE ON bars_1m
    FOR EACH ROW WHEN (OLD.source = 'backfill' AND NEW.source = 'backfill')
    EXECUTE FUNCTION streamdesk_bars_1m_streamed();

-- Daily bars (only from the broker's price history; the writer writes minutes only).
CREATE TABLE bars_1d (
    ticker text             NOT NULL,
    day    date             NOT NULL,
    open   double precision NOT NULL,
    high   double precision NOT NULL,
    low    double precision NOT NULL,
    close  double precision NOT NULL,
    volume bigint           NOT NULL,
    source text             NOT NULL DEFAULT 'backfill' CHECK (source IN ('stream', 'backfill')),
    PRIMARY KEY (ticker, day)
);

-- Backfill bookkeeping: a gap healed at minute resolution, a ticker's history loaded.
ALTER TABLE stream_gaps ADD COLUMN healed_at timestamptz;
CREATE INDEX stream_gaps_unhealed ON stream_gaps (id)
    WHERE ended_at IS NOT NULL AND healed_at IS NULL;
CREATE TABLE backfill_tickers (
    ticker      text PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    minute_rows integer     NOT NULL DEFAULT 0,
    daily_rows  integer     NOT NULL DEFAULT 0
);

-- Closed by default: only services (table owner / service_role) see strategies.
ALTER TABLE strategies       ENABLE ROW LEVEL SECURITY;
ALTER TABLE strategy_alerts  ENABLE ROW LEVEL SECURITY;
ALTER TABLE bars_1d          ENABLE ROW LEVEL SECURITY;
ALTER TABLE backfill_tickers ENABLE ROW LEVEL SECURITY;
GRANT ALL ON strategies, strategy_alerts, bars_1d, backfill_tickers TO service_role;
-- bars_1d as the other market data (0081): signed-in users read it, anon while the anon
-- market-data switch is on.
GRANT SELECT ON bars_1d TO anon, authenticated;
CREATE POLICY market_read ON bars_1d FOR SELECT TO authenticated USING (true);
CREATE POLICY market_read_anon ON bars_1d FOR SELECT TO anon
    USING ((SELECT public.streamdesk_anon_market_data()));

-- A Supabase operator's own insert cannot pose as a strategy's order (`source` is one of the
-- columns they may insert): the policy of 0090 again, with that one condition added.
DROP POLICY trades_insert_operator ON trades;
CREATE POLICY trades_insert_operator ON trades FOR INSERT TO authenticated
    WITH CHECK (user_id = (SELECT auth.uid()) AND status = 'pending'
                AND leg = 'single' AND parent_id IS NULL
                AND broker_status IS NULL AND replace_stop_price IS NULL
                AND source <> 'strategy'
                AND (SELECT public.streamdesk_is_operator()));
