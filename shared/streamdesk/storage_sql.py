"""SQL of the packed storage: the views that decode it and migration 0060 (generated here).

``python -m streamdesk.storage_sql > migrations/0060_storage_layout.sql`` wrote the migration;
``tests/storage/test_layout.py`` checks that the file still equals :func:`migration_sql`.
Why the view looks the way it does (see docs/database.md, "Packed storage"):

* ``timestamp`` comes from ``storage_grid.ts`` (a primary key; the writer registers every
  second it writes, compaction every second of a chunk), so time predicates become index
  ranges and ``ORDER BY timestamp DESC LIMIT n`` walks the grid backwards and stops after n
  rows. That needs the view's top level to be a plain join (grid x LATERAL), which the planner
  pulls up into the caller's query; a UNION ALL at the top would be planned apart, unordered;
* per second the LATERAL probes the hot table (``(ticker, timestamp)``) and the packed table
  (``(ticker, t0)``) by index, and decodes the slot with O(1) subscripts: the packed columns
  are stored inline and uncompressed (``STORAGE MAIN``, ``toast_tuple_target = 8160``: the
  bit-packed words do not compress anyway), so no detoasting per second;
* the presence test is written ``<> 0`` (estimated as almost always true): with ``= 1`` the
  planner expects almost no rows and prefers scanning everything.
"""

from __future__ import annotations

from .storage_layout import BLOCK_SLOTS, CHUNK_SECONDS, FLOAT_SCALE, SPECS, TableSpec


def _field(i: int, name: str) -> str:
    """SQL of one per-column meta field of value column ``i`` (0 = presence)."""
    info = f"q.m[{2 * i + 2}]"
    return {
        "b": f"q.m[{2 * i + 1}]",
        "w": f"({info} & 63)::int",
        "k": f"({info} >> 6 & 63)::int",
        "s": f"({info} >> 12 & 65535)::int",
        "bw": f"({info} >> 28 & 63)::int",
        "sc": f"({info} >> 34 & 31)::int",
        "nl": f"({info} >> 39 & 1)",
        "st": f"({info} >> 40 & 255)::int",
        "bs": f"({info} >> 48 & 32767)::int",
    }[name]


def _v(i: int) -> str:
    """The ``i``-th column's offset code at the grid's second (``g.pos``)."""
    j = f"((g.pos - 1) / {_field(i, 'st')})"
    w, k = _field(i, "w"), _field(i, "k")
    word = f"COALESCE(q.w[{_field(i, 's')} + {j} / {k}], 0)"
    return f"(({word} >> ({j} % {k} * {w})) & ((1::int8 << {w}) - 1))"


def _bb(i: int) -> str:
    """The base of the ``i``-th column's block at ``g.pos`` (relative to the chunk base)."""
    blk = f"((g.pos - 1) / {_field(i, 'st')} / GREATEST({BLOCK_SLOTS} / {_field(i, 'st')}, 1))"
    bw = _field(i, "bw")
    bk = f"(63 / GREATEST({bw}, 1))"
    word = f"COALESCE(q.w[{_field(i, 'bs')} + {blk} / {bk}], 0)"
    return f"(({word} >> ({blk} % {bk} * {bw})) & ((1::int8 << {bw}) - 1))"


def _value(i: int, kind: str) -> str:
    v = _v(i)
    w = _field(i, "w")
    is_null = f"({_field(i, 'nl')} = 1 AND {v} = (1::int8 << {w}) - 1)"
    code = f"({_field(i, 'b')} + {_bb(i)} + {v})"
    if kind == "i":
        return f"CASE WHEN {is_null} THEN NULL ELSE {code} END"
    j = f"((g.pos - 1) / {_field(i, 'st')})"
    return (
        f"CASE WHEN {is_null} THEN NULL "
        f"WHEN {_field(i, 'sc')} = {FLOAT_SCALE} THEN q.f[{_field(i, 'b')}::int + {j}] "
        f"ELSE {code}::float8 / power(10::float8, {_field(i, 'sc')}) END"
    )


def view_sql_0060(spec: TableSpec) -> str:
    """``CREATE VIEW`` of migration 0060 (replaced by :func:`view_sql` in 0095; kept so the
    0060 file can still be regenerated and checked): per grid second, hot rows UNION ALL
    decoded slots.

    The view's top level is ``storage_grid g CROSS JOIN LATERAL (...)``: a plain join, which
    the planner pulls up into the caller's query, so ``timestamp`` (``g.ts``, a primary key)
    orders and bounds the scan and every second costs two index probes (hot row, chunk).
    """
    statics = [s for s, _ in spec.static]
    names = [*statics, *(c.name for c in spec.values)]
    hot_sel = ", ".join(f"h.{n}" for n in ["ticker", *names])
    packed = ["q.ticker", *[f"q.{s}" for s in statics]]
    for i, col in enumerate(spec.values, start=1):
        packed.append(f"{_value(i, col.kind)} AS {col.name}")
    packed_sel = ",\n           ".join(packed)
    out = ", ".join(["x.ticker", 'g.ts AS "timestamp"', *(f"x.{n}" for n in names)])
    return f"""CREATE VIEW {spec.view} WITH (security_invoker = true) AS
SELECT {out}
FROM storage_grid g
CROSS JOIN LATERAL (
    SELECT {hot_sel}
    FROM {spec.hot} h
    WHERE h."timestamp" = g.ts
    UNION ALL
    SELECT {packed_sel}
    FROM {spec.packed} q
    WHERE q.t0 = g.t0 AND {_field(0, "b")} + {_bb(0)} + {_v(0)} <> 0
) x;
"""


def _packed_table_sql(spec: TableSpec) -> str:
    statics = "".join(f"    {name} {typ} NOT NULL,\n" for name, typ in spec.static)
    unit = "second" if spec.slot_seconds == 1 else "slot"
    return f"""CREATE TABLE {spec.packed} (
    ticker text        NOT NULL,
    t0     timestamptz NOT NULL,  -- chunk start ({spec.chunk_seconds} s windows)
    t1     timestamptz NOT NULL,  -- last {unit} with a row
    n      integer     NOT NULL,  -- rows in the chunk
{statics}    m      bigint[]    NOT NULL,  -- per column: base, info (see streamdesk.storage_layout)
    w      bigint[]    NOT NULL,  -- frame-of-reference codes, bit-packed
    f      double precision[],    -- columns kept as exact doubles
    PRIMARY KEY (ticker, t0)
) PARTITION BY RANGE (t0);
CREATE INDEX {spec.packed}_t0 ON {spec.packed} (t0);
ALTER TABLE {spec.packed} ENABLE ROW LEVEL SECURITY;
CREATE POLICY market_read ON {spec.packed} FOR SELECT TO anon, authenticated USING (true);
COMMENT ON TABLE {spec.packed} IS
    'Compacted rows of {spec.view}: one row per instrument and {spec.chunk_seconds} s chunk.';
"""


def _insert_trigger_sql(spec: TableSpec) -> str:
    fn = f"storage_insert_{spec.view}"
    return f"""CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- Like INSERT .. ON CONFLICT DO NOTHING on the original table: a row whose key exists
    -- (hot or compacted) is skipped (NULL: not counted). A new second inside an already
    -- compacted chunk cannot be stored without a second copy of the chunk: refused.
    IF EXISTS (SELECT 1 FROM {spec.packed}
               WHERE ticker = NEW.ticker AND t0 = storage_chunk_start(NEW."timestamp")) THEN
        IF EXISTS (SELECT 1 FROM {spec.view}
                   WHERE ticker = NEW.ticker AND "timestamp" = NEW."timestamp") THEN
            RETURN NULL;
        END IF;
        RAISE unique_violation USING MESSAGE = format(
            '{spec.view}: %s at %s falls in a compacted chunk', NEW.ticker, NEW."timestamp");
    END IF;
    INSERT INTO {spec.hot} SELECT NEW.* ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO storage_grid (ts, t0, pos)
    VALUES (NEW."timestamp", storage_chunk_start(NEW."timestamp"),
            storage_grid_pos(NEW."timestamp"))
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER {spec.view}_insert INSTEAD OF INSERT ON {spec.view}
    FOR EACH ROW EXECUTE FUNCTION {fn}();
"""


def _defaults_sql(spec: TableSpec) -> str:
    # Omitted columns get the hot table's defaults, as they did on the original table.
    return f"""DO $d$
DECLARE r record;
BEGIN
    FOR r IN SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS expr
             FROM pg_attrdef d JOIN pg_attribute a
               ON a.attrelid = d.adrelid AND a.attnum = d.adnum
             WHERE d.adrelid = '{spec.hot}'::regclass LOOP
        EXECUTE format('ALTER VIEW {spec.view} ALTER COLUMN %I SET DEFAULT %s', r.attname, r.expr);
    END LOOP;
END
$d$;
"""


HEADER = f"""-- Storage: per-second tables become views over recent rows + compacted chunks.
-- GENERATED by `python -m streamdesk.storage_sql` (streamdesk/storage_sql.py); do not edit.
--
-- equity_data / indicators / option_prices keep their columns, names and semantics as views:
--   <table>_hot         the recent rows, original layout and daily partitions <table>_pYYYYMMDD
--   <packed>            one row per instrument per {CHUNK_SECONDS} s chunk (bit-packed columns)
--   storage_grid        one row per second that has rows (ts -> chunk, slot): the time axis
-- Inserts into a view go to its hot table (INSTEAD OF trigger); the writer inserts there
-- directly, compaction (streamdesk.storage_compact) moves finished chunks in one transaction.

ALTER TABLE equity_data   RENAME TO equity_data_hot;
ALTER TABLE indicators    RENAME TO indicators_hot;
ALTER TABLE option_prices RENAME TO option_prices_hot;

-- The views probe the hot rows of each second by timestamp alone when no ticker is given
-- (option_prices_hot has this index since 0050); the hot tables are small, so it is cheap.
CREATE INDEX IF NOT EXISTS equity_data_timestamp_idx ON equity_data_hot ("timestamp");
CREATE INDEX IF NOT EXISTS indicators_timestamp_idx ON indicators_hot ("timestamp");

CREATE FUNCTION storage_chunk_start(ts timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN date_bin(interval '{CHUNK_SECONDS} seconds', ts, timestamptz 'epoch');

CREATE FUNCTION storage_grid_pos(ts timestamptz) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN ts = date_trunc('second', ts)
                THEN extract(epoch FROM ts - storage_chunk_start(ts))::integer + 1 END;

CREATE TABLE storage_grid (
    ts  timestamptz NOT NULL PRIMARY KEY,  -- a second with rows (hot or compacted)
    t0  timestamptz NOT NULL,              -- its chunk start
    pos integer                            -- 1-based slot in the chunk; NULL off the second
) PARTITION BY RANGE (ts);
ALTER TABLE storage_grid ENABLE ROW LEVEL SECURITY;
CREATE POLICY market_read ON storage_grid FOR SELECT TO anon, authenticated USING (true);
COMMENT ON TABLE storage_grid IS
    'Every second that has rows in equity_data/indicators/option_prices (the views'' time axis).';

-- Register the seconds of rows that exist already (daily partitions like the hot tables).
DO $g$
DECLARE d date;
BEGIN
    FOR d IN SELECT DISTINCT to_date(substring(c.relname FROM '_p([0-9]{8})$'), 'YYYYMMDD')
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent IN ('equity_data_hot'::regclass, 'indicators_hot'::regclass,
                                   'option_prices_hot'::regclass)
               AND c.relname ~ '_p[0-9]{8}$' LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF storage_grid FOR VALUES FROM (%L) TO (%L)',
                       'storage_grid_p' || to_char(d, 'YYYYMMDD'),
                       d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY',
                       'storage_grid_p' || to_char(d, 'YYYYMMDD'));
    END LOOP;
END
$g$;
INSERT INTO storage_grid (ts, t0, pos)
SELECT ts, storage_chunk_start(ts), storage_grid_pos(ts) FROM (
    SELECT "timestamp" AS ts FROM equity_data_hot
    UNION SELECT "timestamp" FROM indicators_hot
    UNION SELECT "timestamp" FROM option_prices_hot
) x
ON CONFLICT DO NOTHING;

"""

FOOTER = """
-- Packed columns stay inline and uncompressed (the view reads one slot per second with a
-- subscript; the bit-packed words do not compress). Partitions also get toast_tuple_target
-- 8160 (streamdesk.partitions) so rows up to a page are never toasted.
ALTER TABLE equity_data_packed ALTER COLUMN w SET STORAGE MAIN, ALTER COLUMN f SET STORAGE MAIN,
    ALTER COLUMN m SET STORAGE MAIN;
ALTER TABLE indicators_packed ALTER COLUMN w SET STORAGE MAIN, ALTER COLUMN f SET STORAGE MAIN,
    ALTER COLUMN m SET STORAGE MAIN;
ALTER TABLE option_prices_packed ALTER COLUMN w SET STORAGE MAIN,
    ALTER COLUMN f SET STORAGE MAIN, ALTER COLUMN m SET STORAGE MAIN;

-- The views' per-second decoding is many small expressions: LLVM JIT would spend seconds
-- compiling them for every larger query (measured: 3-4 s before a 60 ms scan), so turn it
-- off for this database (new sessions) where we may; connections can still SET jit = on.
DO $j$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'could not turn JIT off for this database (%); set jit = off per role', SQLERRM;
END
$j$;

GRANT SELECT ON equity_data, indicators, option_prices, equity_data_packed, indicators_packed,
    option_prices_packed, storage_grid TO anon, authenticated;
GRANT ALL ON equity_data, indicators, option_prices, equity_data_packed, indicators_packed,
    option_prices_packed, storage_grid TO service_role;
"""


def migration_sql() -> str:
    """The full text of migrations/0060_storage_layout.sql."""
    parts = [HEADER]
    for spec in SPECS:
        parts.append(_packed_table_sql(spec))
        parts.append("\n")
    for spec in SPECS:
        parts.append(view_sql_0060(spec))
        parts.append("\n")
        parts.append(_defaults_sql(spec))
        parts.append("\n")
        parts.append(_insert_trigger_sql(spec))
        parts.append("\n")
    parts.append(FOOTER)
    return "".join(parts)


if __name__ == "__main__":  # pragma: no cover
    import sys

    from .storage_views import bars_migration_sql, reads_migration_sql

    which = {"0095": reads_migration_sql, "0110": bars_migration_sql}
    print(which.get(sys.argv[1] if sys.argv[1:] else "", migration_sql)(), end="")
