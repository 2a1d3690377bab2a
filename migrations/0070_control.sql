-- Runtime control plane (issue 12): the kill switch, the streamed universe and per-service
-- pause flags, changed from the dashboard's operations panel and read by the services at run
-- time (streamdesk.control). Only services (table owner / service_role) read or change them:
-- RLS on, no policy for anon or authenticated.

-- One row. `version` grows on every change of anything in this file's tables, so a service
-- polls one integer to know whether to re-read.
CREATE TABLE control_state (
    id                 boolean     PRIMARY KEY DEFAULT true CHECK (id),
    kill_switch        boolean     NOT NULL DEFAULT false,
    kill_reason        text,
    kill_changed_at    timestamptz NOT NULL DEFAULT now(),
    -- NULL until the universe was seeded from TICKERS / OPTION_UNDERLYINGS (once, ever):
    -- after that the universe table is the truth, even when it is empty.
    universe_seeded_at timestamptz,
    version            bigint      NOT NULL DEFAULT 1
);
INSERT INTO control_state (id) VALUES (true);

CREATE TABLE universe (
    kind     text        NOT NULL CHECK (kind IN ('equity', 'option')),
    symbol   text        NOT NULL CHECK (symbol ~ '^[A-Z0-9./$]{1,12}$'),
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, symbol)
);

CREATE TABLE service_pauses (
    service    text        PRIMARY KEY,
    paused     boolean     NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE control_state  ENABLE ROW LEVEL SECURITY;
ALTER TABLE universe       ENABLE ROW LEVEL SECURITY;
ALTER TABLE service_pauses ENABLE ROW LEVEL SECURITY;
GRANT ALL ON control_state, universe, service_pauses TO service_role;
