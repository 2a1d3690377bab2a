-- Row-level security on every table. Services connect as the table owner (or service_role)
-- and are not restricted; `anon` and `authenticated` (Supabase's API roles) are.

ALTER TABLE equity_data      ENABLE ROW LEVEL SECURITY;
ALTER TABLE indicators       ENABLE ROW LEVEL SECURITY;
ALTER TABLE option_prices    ENABLE ROW LEVEL SECURITY;
ALTER TABLE bars_1m          ENABLE ROW LEVEL SECURITY;
ALTER TABLE stream_gaps      ENABLE ROW LEVEL SECURITY;
ALTER TABLE partitioned_tables ENABLE ROW LEVEL SECURITY;
ALTER TABLE trades           ENABLE ROW LEVEL SECURITY;
ALTER TABLE trade_events     ENABLE ROW LEVEL SECURITY;
ALTER TABLE positions        ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_balances ENABLE ROW LEVEL SECURITY;
ALTER TABLE schema_migrations ENABLE ROW LEVEL SECURITY;

-- Market data: readable by anyone with the API key.
GRANT SELECT ON equity_data, indicators, option_prices, bars_1m, stream_gaps
    TO anon, authenticated;
CREATE POLICY market_read ON equity_data   FOR SELECT TO anon, authenticated USING (true);
CREATE POLICY market_read ON indicators    FOR SELECT TO anon, authenticated USING (true);
CREATE POLICY market_read ON option_prices FOR SELECT TO anon, authenticated USING (true);
CREATE POLICY market_read ON bars_1m       FOR SELECT TO anon, authenticated USING (true);
CREATE POLICY market_read ON stream_gaps   FOR SELECT TO anon, authenticated USING (true);

-- Trades: an authenticated user inserts only request columns, only for themself, only as
-- 'pending'; reads only their own; never updates or deletes (only the executor, as owner or
-- service_role, moves status). Cancellation goes through the gateway.
GRANT SELECT ON trades TO authenticated;
GRANT INSERT (user_id, symbol, asset_type, instruction, quantity, order_type, limit_price,
              duration, source) ON trades TO authenticated;
CREATE POLICY trades_insert_own ON trades FOR INSERT TO authenticated
    WITH CHECK (user_id = auth.uid() AND status = 'pending');
CREATE POLICY trades_read_own ON trades FOR SELECT TO authenticated
    USING (user_id = auth.uid());

GRANT SELECT ON trade_events TO authenticated;
CREATE POLICY trade_events_read_own ON trade_events FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM trades t WHERE t.id = trade_id AND t.user_id = auth.uid()));

GRANT SELECT ON positions, account_balances TO authenticated;
CREATE POLICY positions_read ON positions FOR SELECT TO authenticated USING (true);
CREATE POLICY balances_read ON account_balances FOR SELECT TO authenticated USING (true);

GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO service_role;

-- Dashboard clients on Supabase see their orders change through Realtime.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_publication_tables
        WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = 'trades'
    ) THEN
        ALTER PUBLICATION supabase_realtime ADD TABLE trades;
    END IF;
END
$$;
