-- Supabase mode, safe for real money (issue 13; docs/supabase.md, "Security model").
--
-- Replaces the grants and policies of 0004/0060 with the access matrix of docs/supabase.md:
--   anon                 SELECT market data, only while control_state.anon_market_data;
--   authenticated        SELECT market data;
--   operator             + INSERT pending trades for themself (request columns only), SELECT
--                          their own trades and those trades' events, positions and balances,
--                          cancel their own trades through streamdesk_cancel_trade();
--   service_role/owner   everything (service_role bypasses RLS).
-- Nothing else, for nobody: no UPDATE or DELETE for an API role anywhere, and no access at all
-- to the service tables (control plane, executor alerts, operators, indicator state, ...).
-- The executor checks the submitter against `operators` again before it trades (not_operator).

-- The anon switch: `streamdesk operators anon on|off`.
ALTER TABLE control_state ADD COLUMN anon_market_data boolean NOT NULL DEFAULT true;

-- Read by the anon policies. SECURITY DEFINER because anon may not read control_state itself;
-- no argument and an empty search_path, like streamdesk_is_operator(). A missing row is closed.
CREATE FUNCTION streamdesk_anon_market_data() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT coalesce((SELECT c.anon_market_data FROM public.control_state c WHERE c.id), false)
$$;
REVOKE ALL ON FUNCTION streamdesk_anon_market_data() FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION streamdesk_anon_market_data() TO anon, authenticated, service_role;

-- Start from nothing. On Supabase every table created in `public` is granted to anon and
-- authenticated by default (ALTER DEFAULT PRIVILEGES of the `postgres` role), partitions the
-- writer creates each day included; RLS without a policy hides their rows, but a grant that
-- nobody decided on is one mistake away from a leak. So: revoke everything from the API roles,
-- stop the default grants for tables this role creates from now on, and grant back below
-- exactly what the matrix allows. service_role keeps everything (defaults included), as on
-- Supabase.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, anon, authenticated;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM anon, authenticated;
GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO service_role;

-- Every table has RLS (partitions too: read directly they show nothing), every view runs with
-- the caller's rights (a view runs as its owner otherwise, and the owner bypasses RLS), and
-- the old policies go: the ones below are the whole set.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.relname FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
               AND NOT c.relrowsecurity LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', r.relname);
    END LOOP;
    FOR r IN SELECT c.relname FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v' LOOP
        EXECUTE format('ALTER VIEW public.%I SET (security_invoker = true)', r.relname);
    END LOOP;
    FOR r IN SELECT policyname, tablename FROM pg_policies WHERE schemaname = 'public' LOOP
        EXECUTE format('DROP POLICY %I ON public.%I', r.policyname, r.tablename);
    END LOOP;
END
$$;

-- Market data. The views (equity_data, indicators, option_prices) are security_invoker, so
-- the tables under them need the same SELECT and policies. The function calls are wrapped in
-- a sub-select so they run once per statement, not once per row.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['equity_data_hot', 'indicators_hot', 'option_prices_hot',
                             'equity_data_packed', 'indicators_packed', 'option_prices_packed',
                             'storage_grid', 'bars_1m', 'stream_gaps'] LOOP
        EXECUTE format('GRANT SELECT ON public.%I TO anon, authenticated', t);
        EXECUTE format('CREATE POLICY market_read ON public.%I FOR SELECT TO authenticated '
                       'USING (true)', t);
        EXECUTE format('CREATE POLICY market_read_anon ON public.%I FOR SELECT TO anon '
                       'USING ((SELECT public.streamdesk_anon_market_data()))', t);
    END LOOP;
END
$$;
GRANT SELECT ON equity_data, indicators, option_prices TO anon, authenticated;

-- Trades: an operator inserts request columns only (the rest keep their defaults: status
-- 'pending', no broker order id, no account), for themself only; reads their own. A user
-- removed from `operators` can neither insert nor read from the next statement on. Only the
-- executor (owner / service_role) moves a status; users cancel through the function below.
GRANT SELECT ON trades TO authenticated;
GRANT INSERT (user_id, symbol, asset_type, instruction, quantity, order_type, limit_price,
              duration, source) ON trades TO authenticated;
CREATE POLICY trades_insert_operator ON trades FOR INSERT TO authenticated
    WITH CHECK (user_id = (SELECT auth.uid()) AND status = 'pending'
                AND (SELECT public.streamdesk_is_operator()));
CREATE POLICY trades_read_own ON trades FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()) AND (SELECT public.streamdesk_is_operator()));

GRANT SELECT ON trade_events TO authenticated;
CREATE POLICY trade_events_read_own ON trade_events FOR SELECT TO authenticated
    USING ((SELECT public.streamdesk_is_operator())
           AND EXISTS (SELECT 1 FROM trades t
                       WHERE t.id = trade_events.trade_id AND t.user_id = (SELECT auth.uid())));

-- The account (one Schwab account, the owner's): every operator sees it.
GRANT SELECT ON positions, account_balances TO authenticated;
CREATE POLICY positions_read_operator ON positions FOR SELECT TO authenticated
    USING ((SELECT public.streamdesk_is_operator()));
CREATE POLICY balances_read_operator ON account_balances FOR SELECT TO authenticated
    USING ((SELECT public.streamdesk_is_operator()));

-- Trade updates reach the dashboard through Realtime Broadcast on a private per-operator topic
-- (0082). Postgres Changes on `trades` would be a second, unmetered path to the same rows.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_publication_tables
               WHERE pubname = 'supabase_realtime' AND schemaname = 'public'
                 AND tablename = 'trades') THEN
        ALTER PUBLICATION supabase_realtime DROP TABLE trades;
    END IF;
END
$$;

-- Cancel one's own trade (PostgREST: POST /rest/v1/rpc/streamdesk_cancel_trade
-- {"p_trade_id": 42}). The same transitions, status words and trade_events row as the
-- gateway's POST /api/trades/{id}/cancel, plus `submitting` and `unknown` (the executor links
-- or reconciles the order first, then cancels it at the broker). Errors (SQLSTATE, and the
-- HTTP status PostgREST answers with):
--   42501 (403) the caller is not an operator, or the trade is someone else's
--   P0002 (404) no such trade
--   PT409 (409) the trade is final or already being cancelled (PostgREST maps PTnnn to nnn)
CREATE FUNCTION streamdesk_cancel_trade(p_trade_id bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_uid    uuid := auth.uid();
    v_owner  uuid;
    v_old    text;
    v_new    text;
    v_reason text;
BEGIN
    IF v_uid IS NULL OR NOT public.streamdesk_is_operator() THEN
        RAISE EXCEPTION 'streamdesk_cancel_trade: only operators may cancel trades'
            USING ERRCODE = '42501';
    END IF;
    SELECT t.user_id, t.status INTO v_owner, v_old
    FROM public.trades t WHERE t.id = p_trade_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no trade %', p_trade_id USING ERRCODE = 'P0002';
    END IF;
    IF v_owner IS DISTINCT FROM v_uid THEN
        RAISE EXCEPTION 'trade % is not yours', p_trade_id USING ERRCODE = '42501';
    END IF;
    IF v_old = 'pending' THEN
        v_new := 'cancelled';
        v_reason := 'cancelled by the user before submission';
    ELSIF v_old IN ('submitting', 'working', 'unknown') THEN
        v_new := 'cancel_requested';
        v_reason := 'cancel requested by the user';
    ELSE
        RAISE EXCEPTION 'trade % is %; it cannot be cancelled now', p_trade_id, v_old
            USING ERRCODE = 'PT409';
    END IF;
    UPDATE public.trades SET status = v_new, updated_at = now() WHERE id = p_trade_id;
    INSERT INTO public.trade_events (trade_id, from_status, to_status, reason)
    VALUES (p_trade_id, v_old, v_new, v_reason);
    RETURN jsonb_build_object('id', p_trade_id, 'status', v_new);
END
$$;
REVOKE ALL ON FUNCTION streamdesk_cancel_trade(bigint) FROM PUBLIC, anon, service_role;
GRANT EXECUTE ON FUNCTION streamdesk_cancel_trade(bigint) TO authenticated;
