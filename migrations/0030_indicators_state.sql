-- Indicators service: transactional checkpoints for exactly-once processing.
--
-- Every writer flush commits, in ONE transaction, the per-second rows, the engine state of
-- every symbol it touched and the last tick-stream entry id it consumed. A restarted service
-- loads this checkpoint, skips (and acks) pending entries at or below the committed id and
-- replays the rest, so it writes exactly what an uninterrupted one would.

CREATE TABLE indicator_offsets (
    stream     text        PRIMARY KEY,           -- sd:ticks:{partition}
    last_id    text        NOT NULL DEFAULT '0-0', -- last Redis entry id contained in a commit
    epoch      bigint      NOT NULL DEFAULT 0,     -- fencing token, bumped by each new owner
    owner      text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE indicator_offsets IS
    'Indicators service: last committed tick-stream entry per stream and its owner fencing epoch.';

CREATE TABLE indicator_state (
    symbol     text        PRIMARY KEY,
    stream     text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('equity', 'option')),
    state      bytea       NOT NULL,               -- msgpack, see streamdesk_indicators.engine
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX indicator_state_stream ON indicator_state (stream);
COMMENT ON TABLE indicator_state IS
    'Indicators service: engine state per symbol as of the last commit (restart rebuild).';

-- A second example indicator registered in the engine (EMA of bar closes).
ALTER TABLE indicators ADD COLUMN IF NOT EXISTS ema9 double precision;

ALTER TABLE indicator_offsets ENABLE ROW LEVEL SECURITY;
ALTER TABLE indicator_state   ENABLE ROW LEVEL SECURITY;
GRANT ALL ON indicator_offsets, indicator_state TO service_role;
