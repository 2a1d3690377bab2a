-- Order types: stops, stop-limits, trailing stops and brackets (issue 18; docs/order-types.md,
-- "Request" and "Rows").
--
-- A client inserts one row; a bracket's exits are legs the executor inserts as rows of their
-- own (parent_id = the entry) in the transaction that claims the entry.

-- Request columns (what a client may insert).
ALTER TABLE trades
    ADD COLUMN stop_price         numeric,
    ADD COLUMN trail_type         text,
    ADD COLUMN trail_offset       numeric,
    ADD COLUMN stop_trigger       text,
    ADD COLUMN take_profit_price  numeric,
    ADD COLUMN stop_loss_price    numeric,
-- Executor columns (never a client's).
    ADD COLUMN parent_id          bigint REFERENCES trades (id),
    ADD COLUMN leg                text NOT NULL DEFAULT 'single',
    ADD COLUMN broker_status      text,
    ADD COLUMN replace_stop_price numeric;

ALTER TABLE trades DROP CONSTRAINT trades_order_type_check;
ALTER TABLE trades
    ADD CONSTRAINT trades_order_type_check CHECK (order_type IN (
        'MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT', 'TRAILING_STOP')),
    ADD CONSTRAINT trades_trail_type_check CHECK (trail_type IN ('VALUE', 'PERCENT')),
    ADD CONSTRAINT trades_trail_offset_check CHECK (trail_offset > 0),
    ADD CONSTRAINT trades_stop_trigger_check CHECK (stop_trigger IN ('LAST', 'BID', 'ASK', 'MARK')),
    ADD CONSTRAINT trades_leg_check CHECK (leg IN ('single', 'entry', 'take_profit', 'stop_loss')),
    -- A leg has an entry; singles and entries have none.
    ADD CONSTRAINT trades_leg_parent_check CHECK ((parent_id IS NULL) = (leg IN ('single', 'entry'))),
    ADD CONSTRAINT trades_replace_stop_price_check CHECK (replace_stop_price > 0);

-- An entry's legs (the blotter's nesting, the executor's sync and cancel).
CREATE INDEX trades_parent ON trades (parent_id) WHERE parent_id IS NOT NULL;

-- Legs share their entry's symbol and are settled with it: only top-level orders count in
-- the one-unsettled-order-per-symbol rule (reconciliation matches the top order, then links
-- the legs from its children).
DROP INDEX trades_one_unsettled_per_symbol;
CREATE UNIQUE INDEX trades_one_unsettled_per_symbol ON trades (account_hash, symbol)
    WHERE account_hash IS NOT NULL AND parent_id IS NULL
      AND (status IN ('submitting', 'working', 'unknown')
           OR (status = 'cancel_requested' AND submitted_at IS NOT NULL));

-- A requested stop move wakes the executors at once (payload `<id>:replace_stop`), as a new
-- trade or a cancel request does.
CREATE FUNCTION streamdesk_notify_trade_replace() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('streamdesk_trades', NEW.id::text || ':replace_stop');
    RETURN NEW;
END
$$;
CREATE TRIGGER trades_notify_replace AFTER UPDATE OF replace_stop_price ON trades
    FOR EACH ROW WHEN (NEW.replace_stop_price IS NOT NULL
                       AND OLD.replace_stop_price IS DISTINCT FROM NEW.replace_stop_price)
    EXECUTE FUNCTION streamdesk_notify_trade_replace();

-- Supabase: an operator may insert the new request columns, never the executor's. The policy
-- says it again, so a broader grant some day still cannot forge a leg or a replace request.
GRANT INSERT (stop_price, trail_type, trail_offset, stop_trigger, take_profit_price,
              stop_loss_price) ON trades TO authenticated;
DROP POLICY trades_insert_operator ON trades;
CREATE POLICY trades_insert_operator ON trades FOR INSERT TO authenticated
    WITH CHECK (user_id = (SELECT auth.uid()) AND status = 'pending'
                AND leg = 'single' AND parent_id IS NULL
                AND broker_status IS NULL AND replace_stop_price IS NULL
                AND (SELECT public.streamdesk_is_operator()));

-- Move one's own working stop (PostgREST: POST /rest/v1/rpc/streamdesk_replace_stop
-- {"p_trade_id": 42, "p_stop_price": 101.5}): sets replace_stop_price; the executor replaces
-- the broker order (risk re-checks stop_side) and clears it. A newer request overwrites one
-- not yet taken. Errors as streamdesk_cancel_trade:
--   42501 (403) the caller is not an operator, or the trade is someone else's
--   P0002 (404) no such trade
--   PT409 (409) the trade is not a working STOP / STOP_LIMIT
--   22023 (400) the stop price is missing, not positive or absurdly large
CREATE FUNCTION streamdesk_replace_stop(p_trade_id bigint, p_stop_price numeric) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_uid    uuid := auth.uid();
    v_owner  uuid;
    v_status text;
    v_type   text;
    v_stop   numeric;
BEGIN
    IF v_uid IS NULL OR NOT public.streamdesk_is_operator() THEN
        RAISE EXCEPTION 'streamdesk_replace_stop: only operators may move stops'
            USING ERRCODE = '42501';
    END IF;
    SELECT t.user_id, t.status, t.order_type, t.stop_price INTO v_owner, v_status, v_type, v_stop
    FROM public.trades t WHERE t.id = p_trade_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no trade %', p_trade_id USING ERRCODE = 'P0002';
    END IF;
    IF v_owner IS DISTINCT FROM v_uid THEN
        RAISE EXCEPTION 'trade % is not yours', p_trade_id USING ERRCODE = '42501';
    END IF;
    IF v_status <> 'working' OR v_type NOT IN ('STOP', 'STOP_LIMIT') THEN
        RAISE EXCEPTION 'trade % is a % % order; only a working STOP or STOP_LIMIT can be moved',
            p_trade_id, v_status, v_type USING ERRCODE = 'PT409';
    END IF;
    IF p_stop_price IS NULL OR p_stop_price <= 0 OR p_stop_price > 1000000000 THEN
        RAISE EXCEPTION 'bad stop price %', p_stop_price USING ERRCODE = '22023';
    END IF;
    UPDATE public.trades SET replace_stop_price = p_stop_price, updated_at = now()
    WHERE id = p_trade_id;
    INSERT INTO public.trade_events (trade_id, from_status, to_status, reason, detail)
    VALUES (p_trade_id, v_status, v_status, 'stop move requested by the user',
            jsonb_build_object('stop_price', v_stop, 'replace_stop_price', p_stop_price));
    RETURN jsonb_build_object('id', p_trade_id, 'status', v_status,
                              'replace_stop_price', p_stop_price);
END
$$;
REVOKE ALL ON FUNCTION streamdesk_replace_stop(bigint, numeric) FROM PUBLIC, anon, service_role;
GRANT EXECUTE ON FUNCTION streamdesk_replace_stop(bigint, numeric) TO authenticated;
