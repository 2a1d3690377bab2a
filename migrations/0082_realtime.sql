-- Supabase Realtime, database side (docs/supabase.md, "Realtime topics" and "Security model").
--
-- 1. On plain PostgreSQL, what Supabase's Realtime creates in every project: the `realtime`
--    schema, `realtime.messages`, `realtime.topic()` and `realtime.send()`, with the columns,
--    types and grants of Supabase's own tenant migrations, so the policies and the trigger below
--    run, and are tested, unchanged on both. Created only where absent: on Supabase this part
--    changes nothing (there Realtime owns these objects and keeps them current).
-- 2. Who may receive what on our private channels (RLS on realtime.messages is what Realtime
--    asks when a client joins a private channel).
-- 3. A trigger on `trades` that broadcasts every change a user should see to the submitting
--    operator's topic, and can never make the trade's own transaction fail.

DO $do$
BEGIN
    IF to_regnamespace('realtime') IS NULL THEN
        CREATE SCHEMA realtime;
        GRANT USAGE ON SCHEMA realtime TO anon, authenticated, service_role;
    END IF;

    IF to_regclass('realtime.messages') IS NULL THEN
        -- As on Supabase: range-partitioned by day on inserted_at (a timestamp without time
        -- zone, UTC there), partitions named messages_YYYY_MM_DD, kept 72 hours. On Supabase
        -- the Realtime server creates and drops them; here realtime.send() does it (below).
        CREATE TABLE realtime.messages (
            topic          text      NOT NULL,
            extension      text      NOT NULL,
            payload        jsonb,
            event          text,
            private        boolean   DEFAULT false,
            updated_at     timestamp NOT NULL DEFAULT now(),
            inserted_at    timestamp NOT NULL DEFAULT now(),
            id             uuid      NOT NULL DEFAULT gen_random_uuid(),
            binary_payload bytea,
            CONSTRAINT messages_payload_exclusive
                CHECK (payload IS NULL OR binary_payload IS NULL),
            PRIMARY KEY (id, inserted_at)
        ) PARTITION BY RANGE (inserted_at);
        -- Realtime's replay reads the latest private broadcasts of a topic.
        CREATE INDEX messages_inserted_at_topic_index ON realtime.messages (inserted_at DESC, topic)
            WHERE extension = 'broadcast' AND private IS TRUE;
        ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
        -- Supabase grants these and lets the policies decide (none: nothing passes).
        GRANT SELECT, INSERT, UPDATE ON realtime.messages TO anon, authenticated, service_role;
    END IF;

    IF to_regprocedure('realtime.topic()') IS NULL THEN
        -- The topic of the channel being authorised: Realtime sets `realtime.topic` in the
        -- transaction in which it checks a join against the policies (and send() sets it too).
        CREATE FUNCTION realtime.topic() RETURNS text
        LANGUAGE sql STABLE AS $fn$
            SELECT nullif(current_setting('realtime.topic', true), '')
        $fn$;
    END IF;

    IF to_regprocedure('realtime.send(jsonb, text, text, boolean)') IS NULL THEN
        -- Broadcast from the database: one row in realtime.messages, which Supabase Realtime
        -- reads from the WAL and delivers to the topic's subscribers that the SELECT policies
        -- admit. Runs with the caller's rights (anon and authenticated have no INSERT policy on
        -- our topics). Never raises: a failed send is a WARNING, as on Supabase. The payload
        -- gets an `id` (the message id) when it has none.
        -- Unlike Supabase, the time is taken in UTC explicitly, so the row always lands in the
        -- partition of its UTC day whatever the session's TimeZone; and the day's partition is
        -- created here on first use, older days than three dropped (nothing else maintains this
        -- table on plain PostgreSQL; nothing reads it either: no Realtime server).
        CREATE FUNCTION realtime.send(payload jsonb, event text, topic text,
                                      private boolean DEFAULT true) RETURNS void
        LANGUAGE plpgsql AS $fn$
        DECLARE
            v_id   uuid      := gen_random_uuid();
            v_at   timestamp := now() AT TIME ZONE 'UTC';
            v_day  date      := (now() AT TIME ZONE 'UTC')::date;
            v_part text      := 'messages_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM_DD');
            v_old  record;
        BEGIN
            BEGIN
                IF to_regclass('realtime.' || v_part) IS NULL THEN
                    EXECUTE format('CREATE TABLE IF NOT EXISTS realtime.%I PARTITION OF '
                                   'realtime.messages FOR VALUES FROM (%L) TO (%L)',
                                   v_part, v_day::timestamp, (v_day + 1)::timestamp);
                    FOR v_old IN
                        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = 'realtime.messages'::regclass
                          AND c.relname ~ '^messages_[0-9]{4}_[0-9]{2}_[0-9]{2}$'
                          AND c.relname < 'messages_' || to_char(v_day - 3, 'YYYY_MM_DD')
                    LOOP
                        EXECUTE format('DROP TABLE realtime.%I', v_old.relname);
                    END LOOP;
                END IF;
                PERFORM set_config('realtime.topic', topic, true);
                INSERT INTO realtime.messages
                    (id, topic, extension, payload, event, private, inserted_at, updated_at)
                VALUES (v_id, topic, 'broadcast',
                        CASE WHEN payload ? 'id' THEN payload
                             ELSE payload || jsonb_build_object('id', v_id) END,
                        event, private, v_at, v_at);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'realtime.send to % failed: % (SQLSTATE %)', topic, SQLERRM, SQLSTATE;
            END;
        END
        $fn$;
    END IF;
END
$do$;

-- Who may receive on our topics (docs/supabase.md, "Realtime topics"). The row's own `topic`
-- column is what is checked: in Realtime's join check it is the channel's topic (a probe row
-- inserted for the check), and it stays right for any other reader. Broadcast only: presence
-- on these channels is refused.
--   streamdesk:market            authenticated; anon while control_state.anon_market_data
--   streamdesk:trades:<user_id>  that user, while an operator
CREATE FUNCTION streamdesk_may_receive(p_topic text, p_extension text, p_anon boolean)
RETURNS boolean
LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT p_extension = 'broadcast' AND CASE
        WHEN p_topic = 'streamdesk:market' THEN
            NOT p_anon OR public.streamdesk_anon_market_data()
        WHEN p_topic LIKE 'streamdesk:trades:%' THEN
            NOT p_anon AND auth.uid() IS NOT NULL
            AND p_topic = 'streamdesk:trades:' || auth.uid()::text
            AND public.streamdesk_is_operator()
        ELSE false
    END
$$;
REVOKE ALL ON FUNCTION streamdesk_may_receive(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION streamdesk_may_receive(text, text, boolean)
    TO anon, authenticated, service_role;

DROP POLICY IF EXISTS streamdesk_receive ON realtime.messages;
DROP POLICY IF EXISTS streamdesk_receive_anon ON realtime.messages;
DROP POLICY IF EXISTS streamdesk_topics_read_guard ON realtime.messages;
DROP POLICY IF EXISTS streamdesk_topics_read_guard_anon ON realtime.messages;
DROP POLICY IF EXISTS streamdesk_topics_no_send ON realtime.messages;
DROP POLICY IF EXISTS streamdesk_topics_no_update ON realtime.messages;

CREATE POLICY streamdesk_receive ON realtime.messages FOR SELECT TO authenticated
    USING (public.streamdesk_may_receive(topic, extension, false));
CREATE POLICY streamdesk_receive_anon ON realtime.messages FOR SELECT TO anon
    USING (public.streamdesk_may_receive(topic, extension, true));
-- A project may hold other, broader policies on realtime.messages (Supabase's examples start
-- with `USING (true)`); permissive policies add up, so these restrictive ones keep our topics
-- to the rules above whatever else is there, and keep API roles from sending on them (only the
-- trigger below, and the writer with the service key, do).
CREATE POLICY streamdesk_topics_read_guard ON realtime.messages AS RESTRICTIVE
    FOR SELECT TO authenticated
    USING (topic NOT LIKE 'streamdesk:%' OR public.streamdesk_may_receive(topic, extension, false));
CREATE POLICY streamdesk_topics_read_guard_anon ON realtime.messages AS RESTRICTIVE
    FOR SELECT TO anon
    USING (topic NOT LIKE 'streamdesk:%' OR public.streamdesk_may_receive(topic, extension, true));
CREATE POLICY streamdesk_topics_no_send ON realtime.messages AS RESTRICTIVE
    FOR INSERT TO anon, authenticated
    WITH CHECK (topic NOT LIKE 'streamdesk:%');
CREATE POLICY streamdesk_topics_no_update ON realtime.messages AS RESTRICTIVE
    FOR UPDATE TO anon, authenticated
    USING (topic NOT LIKE 'streamdesk:%');

-- Broadcast a trade's change to its operator (event `trade`, topic streamdesk:trades:<user_id>,
-- payload {id, symbol, status, filled_quantity, avg_fill_price, error, updated_at}). Service
-- trades (user_id NULL) have no subscriber and are not sent. SECURITY DEFINER: the insert into
-- realtime.messages is ours, whoever changed the trade (an operator's INSERT, the executor,
-- the cancel RPC). Anything failing in here is a WARNING: the trade's transaction (the
-- executor's state machine) must never fail because a notification could not be queued.
CREATE FUNCTION streamdesk_broadcast_trade() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    BEGIN
        PERFORM realtime.send(
            jsonb_build_object(
                'id', NEW.id, 'symbol', NEW.symbol, 'status', NEW.status,
                'filled_quantity', NEW.filled_quantity, 'avg_fill_price', NEW.avg_fill_price,
                'error', NEW.error, 'updated_at', NEW.updated_at),
            'trade',
            'streamdesk:trades:' || NEW.user_id::text,
            true);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'streamdesk: broadcast of trade % failed: % (SQLSTATE %)',
            NEW.id, SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END
$$;
-- (Explicitly from the API roles too: Supabase's default privileges grant them EXECUTE.)
REVOKE ALL ON FUNCTION streamdesk_broadcast_trade() FROM PUBLIC, anon, authenticated, service_role;

CREATE TRIGGER trades_broadcast_insert AFTER INSERT ON trades
    FOR EACH ROW WHEN (NEW.user_id IS NOT NULL)
    EXECUTE FUNCTION streamdesk_broadcast_trade();
CREATE TRIGGER trades_broadcast_update AFTER UPDATE ON trades
    FOR EACH ROW WHEN (NEW.user_id IS NOT NULL AND (
        OLD.status IS DISTINCT FROM NEW.status
        OR OLD.filled_quantity IS DISTINCT FROM NEW.filled_quantity
        OR OLD.avg_fill_price IS DISTINCT FROM NEW.avg_fill_price
        OR OLD.error IS DISTINCT FROM NEW.error))
    EXECUTE FUNCTION streamdesk_broadcast_trade();
