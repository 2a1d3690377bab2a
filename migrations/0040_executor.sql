-- trade-executor: at most one unsettled order per (account, symbol), alerts, lookup indexes.

-- An order is unsettled from the moment it may have reached the broker (submitting) until it
-- is final. One per (account, symbol) makes reconciliation unambiguous: an unknown order can
-- only be the one unlinked broker order of that symbol. A cancel_requested row that was never
-- submitted (submitted_at IS NULL) has no broker order and does not count.
CREATE UNIQUE INDEX trades_one_unsettled_per_symbol ON trades (account_hash, symbol)
    WHERE account_hash IS NOT NULL
      AND (status IN ('submitting', 'working', 'unknown')
           OR (status = 'cancel_requested' AND submitted_at IS NOT NULL));

-- Rate and daily-notional rules count recently submitted orders per account.
CREATE INDEX trades_account_submitted ON trades (account_hash, submitted_at)
    WHERE submitted_at IS NOT NULL;

-- Duplicate rule: identical recent requests.
CREATE INDEX trades_symbol_created ON trades (symbol, created_at);

-- Operational alerts raised by the executor (unresolvable unknown orders, broker answers it
-- cannot interpret). Health and the dashboard read the open ones.
CREATE TABLE executor_alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    trade_id    bigint REFERENCES trades (id) ON DELETE CASCADE,
    kind        text        NOT NULL,
    message     text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    resolved_at timestamptz
);
CREATE UNIQUE INDEX executor_alerts_open ON executor_alerts (trade_id, kind)
    WHERE resolved_at IS NULL;

ALTER TABLE executor_alerts ENABLE ROW LEVEL SECURITY;
GRANT ALL ON executor_alerts TO service_role;
