-- Supabase mode (docs/supabase.md): who may trade. An explicit allow-list of operators,
-- changed only by the service role (or the table owner: `streamdesk operators add|remove`).
-- A table rather than an `app_metadata` role claim: removing an operator takes effect on the
-- next statement, not when their JWT expires, and the executor can check the submitter of a
-- trade at execution time with the same data that row-level security uses.

CREATE TABLE operators (
    user_id  uuid        PRIMARY KEY,
    email    text,
    note     text        NOT NULL DEFAULT '',
    added_at timestamptz NOT NULL DEFAULT now(),
    added_by text        NOT NULL DEFAULT current_user
);
ALTER TABLE operators ENABLE ROW LEVEL SECURITY;
GRANT ALL ON operators TO service_role;

-- True when the caller (the JWT subject PostgREST set) is an operator. SECURITY DEFINER so
-- policies can ask without granting anyone SELECT on the list; no argument, so nobody can probe
-- whether someone else is one; empty search_path so a caller's objects cannot shadow ours.
-- Services (table owner) read `operators` directly.
CREATE FUNCTION streamdesk_is_operator() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT EXISTS (SELECT 1 FROM public.operators o WHERE o.user_id = auth.uid())
$$;
REVOKE ALL ON FUNCTION streamdesk_is_operator() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION streamdesk_is_operator() TO anon, authenticated, service_role;
