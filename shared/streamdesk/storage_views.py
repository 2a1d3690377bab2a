"""SQL of the packed storage's later views: migrations 0095 (reads) and 0110 (bars).

``python -m streamdesk.storage_sql 0095`` / ``0110`` writes them; ``tests/storage/test_layout.py``
checks that the files still equal :func:`reads_migration_sql` / :func:`bars_migration_sql`.
How the views are planned: docs/database.md, "Packed storage".
"""

from __future__ import annotations

from .storage_layout import BARS, BLOCK_SLOTS, CHUNK_SECONDS, FLOAT_SCALE, SPECS, Column, TableSpec
from .storage_sql import _defaults_sql, _packed_table_sql

# --- Migration 0095: the views read each chunk's meta once (docs/database.md, "Reads") -------


def _chunk_fields(i: int) -> list[str]:
    """Column ``i``'s meta fields, extracted once per chunk by the 0095 views (bit layout:
    streamdesk.storage_layout), each as ``<expr> AS <field><i>``."""
    base, info = f"q.m[{2 * i + 1}]", f"q.m[{2 * i + 2}]"
    width, stride = f"({info} & 63)::int", f"({info} >> 40 & 255)::int"
    bwidth = f"({info} >> 28 & 63)::int"
    return [
        f"{base} AS b{i}",
        f"({info} >> 6 & 63)::int AS k{i}",
        f"({info} >> 12 & 65535)::int AS s{i}",
        f"{width} AS w{i}",
        f"(1::int8 << {width}) - 1 AS mk{i}",
        f"CASE WHEN ({info} >> 39 & 1) = 1 THEN (1::int8 << {width}) - 1 ELSE -1 END AS nc{i}",
        f"{stride} AS st{i}",
        f"GREATEST({BLOCK_SLOTS} / {stride}, 1) AS bp{i}",
        f"63 / GREATEST({bwidth}, 1) AS bk{i}",
        f"{bwidth} AS bw{i}",
        f"(1::int8 << {bwidth}) - 1 AS bm{i}",
        f"({info} >> 48 & 32767)::int AS bs{i}",
        f"({info} >> 34 & 31) = {FLOAT_SCALE} AS ex{i}",
        f"power(10::float8, ({info} >> 34 & 31)::int) AS dv{i}",
    ]


def _slot_parts(i: int) -> tuple[str, str, str]:
    """(slot index ``j``, offset code ``v``, chunk + block base) of column ``i`` at ``g.pos``."""
    j = f"((g.pos - 1) / c.st{i})"
    v = f"((COALESCE(c.w[c.s{i} + {j} / c.k{i}], 0) >> ({j} % c.k{i} * c.w{i})) & c.mk{i})"
    blk = f"({j} / c.bp{i})"
    bb = f"((COALESCE(c.w[c.bs{i} + {blk} / c.bk{i}], 0) >> ({blk} % c.bk{i} * c.bw{i})) & c.bm{i})"
    return j, v, f"(c.b{i} + {bb})"


def _slot_value(i: int, kind: str) -> str:
    """Column ``i``'s value at ``g.pos``; the offset code is computed once (NULLIF: NULL code)."""
    j, v, base = _slot_parts(i)
    if kind == "i":
        return f"{base} + NULLIF({v}, c.nc{i})"
    if kind.startswith("e:"):  # a label of the closed set, stored as its index
        labels = ", ".join(f"'{x}'" for x in kind[2:].split(","))
        return f"(ARRAY[{labels}]::text[])[({base} + NULLIF({v}, c.nc{i}))::int + 1]"
    return (
        f"CASE WHEN c.ex{i} THEN CASE WHEN {v} = c.nc{i} THEN NULL ELSE c.f[c.b{i}::int + {j}] END "
        f"ELSE ({base} + NULLIF({v}, c.nc{i}))::float8 / c.dv{i} END"
    )


def _kind(col: Column) -> str:
    return f"e:{','.join(col.labels)}" if col.kind == "e" else col.kind


def view_sql(spec: TableSpec) -> str:
    """``CREATE OR REPLACE VIEW`` of one logical table (migrations 0095, 0110).

    ``<grid> g x storage_instruments i``, then the chunk of ``(i.ticker, g.t0)``, then the hot
    row of ``(i.ticker, g.ts)``. Per-second tables: only where there is no chunk (an
    instrument's chunk is either packed or hot, never both: compaction moves it in one
    transaction and nothing writes into a packed chunk). ``bars_1m`` (``hot_fills``): where
    the chunk has no bar in that slot (a backfill may heal a gap of a packed day; a packed
    bar is never overwritten). All plain joins at the top, so the caller's ``ticker`` and
    time predicates and ``ORDER BY <time> DESC LIMIT n`` work on indexes as in 0060. The
    chunk is a LATERAL subquery over ``(i.ticker, g.t0)`` only, fenced with ``OFFSET 0``:
    its meta fields are extracted once per chunk, and the planner puts a Memoize on it
    (cache key ticker, t0), so the slots of a chunk cost one probe. The hot probe is fenced
    too (one index probe per hot slot; unfenced, the planner may scan every hot row of the
    ticker for every second), and its condition on the chunk is a one-time filter: where the
    chunk has the slot, the hot table is not touched at all.
    """
    statics = [s for s, _ in spec.static]
    _, v0, base0 = _slot_parts(0)
    if spec.hot_fills:
        packed_here = "pr.p"
        presence = (
            "LEFT JOIN LATERAL (\n"
            f"    SELECT COALESCE(c.t0 IS NOT NULL AND {base0} + {v0} <> 0, false) AS p OFFSET 0\n"
            ") pr ON true\n"
        )
        where = "(pr.p OR h.ticker IS NOT NULL)"
    else:
        packed_here = "c.t0 IS NOT NULL"
        presence = ""
        where = f"CASE WHEN c.t0 IS NULL THEN h.ticker IS NOT NULL ELSE {base0} + {v0} <> 0 END"
    # The gate is on ``c.nohash`` (json: no hash opclass), so the planner cannot put a
    # Memoize on the hot probe: keyed by the second, it would only ever miss.
    hot_gate = "NOT pr.p" if spec.hot_fills else "c.nohash IS NULL"
    exprs = {"ticker": "i.ticker", spec.time_col: f'g.ts AS "{spec.time_col}"'}
    for s_ in statics:
        exprs[s_] = f"CASE WHEN {packed_here} THEN c.{s_} ELSE h.{s_} END AS {s_}"
    for i, col in enumerate(spec.values, start=1):
        exprs[col.name] = (
            f"CASE WHEN {packed_here} THEN {_slot_value(i, _kind(col))} "
            f"ELSE h.{col.name} END AS {col.name}"
        )
    meta = ["q.t0", "'{}'::json AS nohash", "q.w", "q.f", *(f"q.{s_}" for s_ in statics)]
    for i in range(len(spec.values) + 1):
        meta += _chunk_fields(i)
    sel = ",\n       ".join(exprs[c] for c in spec.columns)
    chunk = ",\n           ".join(meta)
    return f"""CREATE OR REPLACE VIEW {spec.view} WITH (security_invoker = true) AS
SELECT {sel}
FROM {spec.grid} g
CROSS JOIN storage_instruments i
LEFT JOIN LATERAL (
    SELECT {chunk}
    FROM {spec.packed} q
    WHERE q.ticker = i.ticker AND q.t0 = g.t0 OFFSET 0
) c ON true
{presence}LEFT JOIN LATERAL (
    SELECT * FROM {spec.hot} hh
    WHERE {hot_gate} AND hh.ticker = i.ticker AND hh."{spec.time_col}" = g.ts OFFSET 0
) h ON true
WHERE i.tbl = '{spec.view}'
  AND {where};
"""


READS_HEADER = """-- Storage reads: the views decode the meta of each chunk once, not per second.
-- GENERATED by `python -m streamdesk.storage_sql 0095` (streamdesk/storage_sql.py); do not edit.
--
-- storage_instruments lists every instrument of each view (kept by a statement trigger on the
-- hot tables, where every row arrives first); the views join grid x instruments, probe the
-- hot row per second and the packed chunk per (instrument, chunk) through a memoized LATERAL.
-- Same columns, same rows as 0060's views (docs/database.md, "Reads").

CREATE TABLE storage_instruments (
    tbl    text NOT NULL,  -- the view: equity_data | indicators | option_prices
    ticker text NOT NULL,
    PRIMARY KEY (tbl, ticker)
);
ALTER TABLE storage_instruments ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON storage_instruments TO anon, authenticated;
GRANT ALL ON storage_instruments TO service_role;
CREATE POLICY market_read ON storage_instruments FOR SELECT TO authenticated USING (true);
CREATE POLICY market_read_anon ON storage_instruments FOR SELECT TO anon
    USING ((SELECT public.streamdesk_anon_market_data()));
COMMENT ON TABLE storage_instruments IS
    'Every ticker with rows in equity_data/indicators/option_prices (the views'' instrument axis).';

CREATE FUNCTION storage_register_instruments() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO storage_instruments (tbl, ticker)
    SELECT DISTINCT TG_ARGV[0], n.ticker FROM new_rows n
    WHERE NOT EXISTS (SELECT 1 FROM storage_instruments s
                      WHERE s.tbl = TG_ARGV[0] AND s.ticker = n.ticker)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;

"""


def reads_migration_sql() -> str:
    """The full text of migrations/0095_storage_reads.sql."""
    parts = [READS_HEADER]
    for spec in SPECS:
        parts.append(
            f"CREATE TRIGGER storage_instruments AFTER INSERT ON {spec.hot}\n"
            f"    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT\n"
            f"    EXECUTE FUNCTION storage_register_instruments('{spec.view}');\n"
            f"INSERT INTO storage_instruments (tbl, ticker)\n"
            f"SELECT '{spec.view}', ticker FROM {spec.hot}\n"
            f"UNION SELECT '{spec.view}', ticker FROM {spec.packed};\n\n"
        )
    parts.append(
        "-- Each chunk has CHUNK_SECONDS grid seconds: the planner's estimate of chunks per time\n"
        "-- range (Memoize or not) must not wait for a lucky sample. Compaction re-ANALYZEs\n"
        "-- storage_grid (autovacuum never analyzes a partitioned parent).\n"
        "ALTER TABLE storage_grid ALTER COLUMN t0\n"
        f"    SET (n_distinct_inherited = {-1 / CHUNK_SECONDS:.6f});\n"
        "ANALYZE storage_grid, storage_instruments;\n\n"
    )
    for spec in SPECS:
        parts.append(view_sql(spec))
        parts.append("\n")
    return "".join(parts).rstrip("\n") + "\n"


# --- Migration 0110: bars_1m packed like the seconds (a year of bars in ~15 MB, not ~65) ----


def _policies_sql(table: str) -> str:
    return (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n"
        f"GRANT SELECT ON {table} TO anon, authenticated;\n"
        f"GRANT ALL ON {table} TO service_role;\n"
        f"CREATE POLICY market_read ON {table} FOR SELECT TO authenticated USING (true);\n"
        f"CREATE POLICY market_read_anon ON {table} FOR SELECT TO anon\n"
        f"    USING ((SELECT public.streamdesk_anon_market_data()));\n"
    )


def bars_migration_sql() -> str:
    """The full text of migrations/0110_storage_bars.sql."""
    spec = BARS
    start, pos, slot = spec.chunk_start_fn, spec.pos_fn, spec.slot_seconds
    origin = f"timestamptz 'epoch' + interval '{spec.chunk_origin} seconds'"
    packed = _packed_table_sql(spec)
    for line in (
        "ALTER TABLE bars_1m_packed ENABLE ROW LEVEL SECURITY;\n",
        "CREATE POLICY market_read ON bars_1m_packed FOR SELECT TO anon, authenticated "
        "USING (true);\n",
    ):
        packed = packed.replace(line, "")
    packed += _policies_sql("bars_1m_packed")
    grid_policies = _policies_sql("bars_grid")
    view = view_sql(spec).replace("CREATE OR REPLACE VIEW", "CREATE VIEW")
    defaults = _defaults_sql(spec)
    per_chunk = f"{-1 / 390:.6f}"  # a regular session: 390 minutes in a chunk
    return f"""-- Storage of bars_1m: finished 8-hour chunks of bars, packed like the seconds.
-- GENERATED by `python -m streamdesk.storage_sql 0110` (streamdesk/storage_sql.py); do not edit.
--
-- bars_1m keeps its columns, names and semantics as a view over
--   bars_1m_hot      the recent bars, original layout (the writer upserts the forming minute)
--   bars_1m_packed   one row per ticker per {spec.chunk_seconds} s chunk from 13:00 UTC
--                    (the regular session is one chunk), monthly partitions
--   bars_grid        one row per minute that has bars: the view's time axis, monthly
-- Every insert into bars_1m_hot registers its minutes in bars_grid (statement trigger, which
-- also creates a missing month). A bar added later to a packed chunk (a backfill healing a
-- gap) stays hot and shows through the view until compaction merges it; a packed bar wins.

ALTER TABLE bars_1m RENAME TO bars_1m_hot;

CREATE FUNCTION {start}(ts timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN date_bin(interval '{spec.chunk_seconds} seconds', ts, {origin});

CREATE FUNCTION {pos}(ts timestamptz) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN ts = date_trunc('minute', ts)
                THEN (extract(epoch FROM ts - {start}(ts)) / {slot})::int + 1 END;

CREATE TABLE bars_grid (
    ts  timestamptz NOT NULL PRIMARY KEY,  -- a minute with bars (hot or compacted)
    t0  timestamptz NOT NULL,              -- its chunk start
    pos integer                            -- 1-based slot in the chunk; NULL off the minute
) PARTITION BY RANGE (ts);
{grid_policies}COMMENT ON TABLE bars_grid IS 'Every minute with bars (bars_1m''s time axis).';
ALTER TABLE bars_grid ALTER COLUMN t0 SET (n_distinct_inherited = {per_chunk});

{packed}ALTER TABLE bars_1m_packed ALTER COLUMN w SET STORAGE MAIN, ALTER COLUMN f SET STORAGE MAIN,
    ALTER COLUMN m SET STORAGE MAIN;

-- Monthly partitions bars_grid_pYYYYMM and bars_1m_packed_pYYYYMM (RLS on, packed rows inline).
CREATE FUNCTION bars_partitions(month date) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    lo timestamptz := date_trunc('month', month)::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := lo + interval '1 month';
    t text;
    part text;
BEGIN
    FOREACH t IN ARRAY ARRAY['bars_grid', 'bars_1m_packed'] LOOP
        part := t || '_p' || to_char(month, 'YYYYMM');
        IF to_regclass(format('public.%I', part)) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               part, t, lo, hi);
                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', part);
                IF t = 'bars_1m_packed' THEN
                    EXECUTE format('ALTER TABLE %I SET (toast_tuple_target = 8160)', part);
                END IF;
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL;  -- created concurrently
            END;
        END IF;
    END LOOP;
END
$fn$;

CREATE FUNCTION bars_grid_register() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE m date;
BEGIN
    FOR m IN SELECT DISTINCT date_trunc('month', n.bucket AT TIME ZONE 'UTC')::date
             FROM new_rows n LOOP
        PERFORM bars_partitions(m);
    END LOOP;
    INSERT INTO bars_grid (ts, t0, pos)
    SELECT DISTINCT n.bucket, {start}(n.bucket), {pos}(n.bucket) FROM new_rows n
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER bars_grid AFTER INSERT ON bars_1m_hot
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bars_grid_register();
CREATE TRIGGER storage_instruments AFTER INSERT ON bars_1m_hot
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION storage_register_instruments('bars_1m');

-- The bars that exist already.
SELECT bars_partitions(m)
FROM (SELECT DISTINCT date_trunc('month', bucket AT TIME ZONE 'UTC')::date AS m
      FROM bars_1m_hot) x;
INSERT INTO bars_grid (ts, t0, pos)
SELECT DISTINCT bucket, {start}(bucket), {pos}(bucket) FROM bars_1m_hot;
INSERT INTO storage_instruments (tbl, ticker)
SELECT DISTINCT 'bars_1m', ticker FROM bars_1m_hot ON CONFLICT DO NOTHING;

{view}
{defaults}
CREATE FUNCTION storage_insert_bars_1m() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- Like INSERT .. ON CONFLICT DO NOTHING on the original table: a bar whose key exists
    -- (hot or compacted) is skipped (NULL: not counted). Writers that upsert use bars_1m_hot.
    IF EXISTS (SELECT 1 FROM bars_1m WHERE ticker = NEW.ticker AND bucket = NEW.bucket) THEN
        RETURN NULL;
    END IF;
    INSERT INTO bars_1m_hot SELECT NEW.* ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER bars_1m_insert INSTEAD OF INSERT ON bars_1m
    FOR EACH ROW EXECUTE FUNCTION storage_insert_bars_1m();
GRANT SELECT ON bars_1m TO anon, authenticated;
GRANT ALL ON bars_1m TO service_role;

ANALYZE bars_grid, storage_instruments;
"""
