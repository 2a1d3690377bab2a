"""Compaction: move finished chunks from the hot tables into packed rows.

A chunk (one instrument, one :data:`~streamdesk.storage_layout.CHUNK_SECONDS` window) is
*finished* when the same instrument already has a hot row in a later window. The indicators
engine only ever writes (or rewrites, for a still-open second) an instrument's newest second,
so nothing can be written into a finished chunk any more: the rule needs no clock and holds
after restarts and replays. An instrument's last chunk stays hot until it trades again.

Each batch (one window, up to ``batch_rows`` rows) is ONE transaction: exclusive storage lock
(the writer holds it shared while it commits), read the hot rows, insert the packed rows and
the window's grid seconds, delete the hot rows. A crash (kill -9) anywhere rolls the whole
batch back; readers see the rows either hot or packed, never both or neither. Re-running is
idempotent: what was moved is no longer hot. Memory is bounded by one batch.

After moving rows it VACUUMs the hot tables it deleted from (their space is reused at once,
so the hot tables stay at a few windows' size) and REINDEXes hot partitions of past days that
are now empty (VACUUM truncates their heap, not their indexes), so a finished day's hot
partition costs a few pages until retention drops it.

Rows that cannot be packed exactly (a timestamp off the whole second, per-contract columns
that change inside a chunk, an integer range beyond 62 bits) stay hot, are counted in
``skipped`` and go with their day's partition at retention.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from .partitions import ensure_storage_partitions
from .storage_layout import ALL_SPECS, Packed, TableSpec, decode, encode

log = logging.getLogger(__name__)

#: Advisory lock: compaction holds it exclusively per batch, the writer shared per commit.
STORAGE_LOCK_KEY = 0x5D_57_0A_6E

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class CompactStats:
    """What one :func:`compact` call did."""

    chunks: int = 0
    rows: int = 0
    skipped: int = 0
    batches: int = 0
    seconds: float = 0.0
    per_table: dict[str, int] = field(default_factory=dict)


def _candidates_sql(spec: TableSpec) -> str:
    fn, ts = spec.chunk_start_fn, spec.time_col
    return f"""
    WITH last AS (
        SELECT ticker, {fn}(max("{ts}")) AS open_chunk
        FROM {spec.hot} GROUP BY ticker
    )
    SELECT {fn}(h."{ts}") AS t0, h.ticker, count(*) AS n
    FROM {spec.hot} h JOIN last l ON l.ticker = h.ticker
    WHERE h."{ts}" < l.open_chunk
    GROUP BY 1, 2 ORDER BY 1, 2
    """


def _select_sql(spec: TableSpec) -> str:
    cols = ", ".join([*(s for s, _ in spec.static), *(c.name for c in spec.values)])
    ts = spec.time_col
    return (
        f'SELECT ticker, "{ts}", {cols} FROM {spec.hot} '
        f'WHERE ticker = ANY($1::text[]) AND "{ts}" >= $2 AND "{ts}" < $3 '
        f'ORDER BY ticker, "{ts}"'
    )


def _delete_sql(spec: TableSpec) -> str:
    ts = spec.time_col
    if spec.hot_fills:
        # only the rows read: a backfill (which does not take the storage lock) may insert
        # into this window meanwhile, and its rows stay hot for the next round
        return (
            f"DELETE FROM {spec.hot} h USING unnest($1::text[], $4::timestamptz[]) AS k(t, b) "
            f'WHERE h.ticker = k.t AND h."{ts}" = k.b AND $2::timestamptz <= $3'
        )
    return f'DELETE FROM {spec.hot} WHERE ticker = ANY($1::text[]) AND "{ts}" >= $2 AND "{ts}" < $3'


_GRID_SQL = """
INSERT INTO storage_grid (ts, t0, pos)
SELECT $1::timestamptz + g * interval '1 second', $1::timestamptz, g + 1
FROM generate_series(0, $2::int - 1) g
ON CONFLICT DO NOTHING
"""


def _packed_columns(spec: TableSpec) -> list[str]:
    return ["ticker", "t0", "t1", "n", *(s for s, _ in spec.static), "m", "w", "f"]


def _pack_ticker(
    spec: TableSpec,
    ticker: str,
    t0: datetime,
    rows: list[asyncpg.Record],
    existing: asyncpg.Record | None = None,
) -> tuple[Any, ...] | None:
    """The packed row of one instrument's chunk, or None if it cannot be packed exactly.

    ``existing`` (``hot_fills`` tables): the chunk's packed row, whose bars the hot ``rows``
    join in the slots it does not have (a packed bar wins over a hot one)."""
    n_static = len(spec.static)
    statics = tuple(rows[0][2 : 2 + n_static])
    slots: list[tuple[Any, ...] | None] = [None] * spec.chunk_slots
    if existing is not None:
        old = Packed(existing["n"], list(existing["m"]), list(existing["w"]), existing["f"])
        slots = decode(spec, old)
    base = int((t0 - _EPOCH).total_seconds())
    for r in rows:
        ts: datetime = r[1]
        if ts.microsecond:
            return None
        offset = int((ts - _EPOCH).total_seconds()) - base
        pos, rest = divmod(offset, spec.slot_seconds)
        if rest or tuple(r[2 : 2 + n_static]) != statics or not 0 <= pos < spec.chunk_slots:
            return None
        if slots[pos] is None:
            slots[pos] = tuple(r[2 + n_static :])
    try:
        packed = encode(spec, slots)
    except ValueError:
        return None
    last = max(i for i, sl in enumerate(slots) if sl is not None)
    t1 = t0 + timedelta(seconds=last * spec.slot_seconds)
    return (ticker, t0, t1, packed.n, *statics, packed.meta, packed.words, packed.floats)


_PAGE = 8192 - 24  # usable bytes of a heap page


def _tuple_bytes(rec: tuple[Any, ...]) -> int:
    """Approximate on-page size of a packed row (header, line pointer, arrays)."""
    size = 28 + 8  # tuple header + line pointer, null bitmap
    for v in rec:
        if isinstance(v, list):
            size += 24 + 8 * len(v)
        elif isinstance(v, str):
            size += len(v) + 1
        else:
            size += 8
    return (size + 7) // 8 * 8


def page_order(records: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Order rows so that consecutive ones fill pages (first-fit decreasing).

    Packed rows are 2-3.5 KB and stay inline; COPY fills the current page and moves on, so
    in arrival order a page often holds two rows and 2.5 KB of nothing. Bin-packing the
    batch first keeps pages ~95% full.
    """
    bins: list[tuple[int, list[tuple[Any, ...]]]] = []
    for rec in sorted(records, key=_tuple_bytes, reverse=True):
        size = _tuple_bytes(rec)
        for i, (used, items) in enumerate(bins):
            if used + size <= _PAGE:
                items.append(rec)
                bins[i] = (used + size, items)
                break
        else:
            bins.append((size, [rec]))
    return [rec for _, items in bins for rec in items]


async def _compact_batch(
    conn: asyncpg.Connection, spec: TableSpec, t0: datetime, tickers: list[str]
) -> tuple[int, int, int]:
    """Move one window of ``tickers``; return (chunks, rows, skipped chunks)."""
    t1 = t0 + timedelta(seconds=spec.chunk_seconds)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", STORAGE_LOCK_KEY)
        existing = {
            r["ticker"]: r
            for r in await conn.fetch(
                f"SELECT ticker, n, m, w, f FROM {spec.packed} "
                "WHERE ticker = ANY($1::text[]) AND t0 = $2",
                tickers,
                t0,
            )
        }
        rows = await conn.fetch(_select_sql(spec), tickers, t0, t1)
        by_ticker: dict[str, list[asyncpg.Record]] = {}
        for r in rows:
            by_ticker.setdefault(r[0], []).append(r)
        records = []
        moved: list[str] = []
        merged: list[str] = []
        skipped = 0
        n_rows = 0
        for ticker, trows in by_ticker.items():
            old = existing.get(ticker)
            if old is not None and not spec.hot_fills:
                packed = None  # never: nothing writes into a packed per-second chunk
            else:
                packed = _pack_ticker(spec, ticker, t0, trows, old)
            if packed is None:
                skipped += 1
                continue
            records.append(packed)
            moved.append(ticker)
            if old is not None:
                merged.append(ticker)
            n_rows += len(trows)
        if records:
            if merged:  # the merged chunk replaces the packed one, in this transaction
                await conn.execute(
                    f"DELETE FROM {spec.packed} WHERE ticker = ANY($1::text[]) AND t0 = $2",
                    merged,
                    t0,
                )
            await conn.copy_records_to_table(
                spec.packed, records=page_order(records), columns=_packed_columns(spec)
            )
            if spec.hot_fills:
                # the grid already has every hot bar's minute (a trigger on the hot table)
                moved_set = set(moved)  # once: 2,000+ instruments per batch of bars
                keys = [r for r in rows if r[0] in moved_set]
                await conn.execute(
                    _delete_sql(spec), [r[0] for r in keys], t0, t1, [r[1] for r in keys]
                )
            else:
                await conn.execute(_GRID_SQL, t0, spec.chunk_slots)
                await conn.execute(_delete_sql(spec), moved, t0, t1)
    if skipped:
        log.warning(
            "%s: %d chunk(s) at %s left hot (cannot be packed exactly)",
            spec.view,
            skipped,
            t0.isoformat(),
        )
    return len(records), n_rows, skipped


_EMPTY_PAST = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass
  AND c.relname < (SELECT max(c2.relname) FROM pg_inherits i2
                   JOIN pg_class c2 ON c2.oid = i2.inhrelid
                   WHERE i2.inhparent = $1::regclass AND c2.relpages > 0)
  AND pg_indexes_size(c.oid) > 3 * 8192
"""


#: How often (seconds, per process) compaction ANALYZEs ``storage_grid``: autovacuum never
#: analyzes a partitioned parent, and the views' plans need its statistics (the number of
#: chunks in a time range decides whether each chunk is read once, memoized).
GRID_ANALYZE_INTERVAL = 600.0
_grid_analyzed_at: dict[tuple[object, ...], float] = {}  # (server port, database) -> monotonic


async def maintain(conn: asyncpg.Connection, tables: list[TableSpec]) -> None:
    """VACUUM the hot tables; REINDEX empty hot partitions of past days (outside a txn);
    ANALYZE ``storage_grid`` every :data:`GRID_ANALYZE_INTERVAL` seconds."""
    now = time.monotonic()
    key = tuple(await conn.fetchrow("SELECT inet_server_port(), current_database()") or ())
    if now - _grid_analyzed_at.get(key, -GRID_ANALYZE_INTERVAL) >= GRID_ANALYZE_INTERVAL:
        await conn.execute("ANALYZE storage_grid, storage_instruments")
        _grid_analyzed_at[key] = now
    for spec in tables:
        await conn.execute(f"VACUUM {spec.hot}")
        for r in await conn.fetch(_EMPTY_PAST, spec.hot):
            name = r[0]
            if await conn.fetchval(f'SELECT NOT EXISTS (SELECT 1 FROM "{name}")'):
                await conn.execute(f'REINDEX TABLE "{name}"')
                log.info("reindexed empty hot partition %s", name)


async def compact(
    conn: asyncpg.Connection,
    *,
    batch_rows: int = 20_000,
    max_batches: int | None = None,
    tables: tuple[TableSpec, ...] = ALL_SPECS,
) -> CompactStats:
    """Compact every finished chunk (or ``max_batches`` batches); see the module docstring."""
    stats = CompactStats()
    started = time.perf_counter()
    days_done: set[object] = set()
    for spec in tables:
        candidates = await conn.fetch(_candidates_sql(spec))
        batches: list[tuple[datetime, list[str]]] = []
        for r in candidates:
            t0, ticker, n = r[0], r[1], int(r[2])
            if (
                batches
                and batches[-1][0] == t0
                and (len(batches[-1][1]) + 1) * max(n, 1) <= (batch_rows)
            ):
                batches[-1][1].append(ticker)
            else:
                batches.append((t0, [ticker]))
        moved = 0
        for t0, tickers in batches:
            if max_batches is not None and stats.batches >= max_batches:
                break
            day = t0.astimezone(UTC).date()
            if spec.hot_fills:  # bars: monthly partitions (migration 0110)
                month = day.replace(day=1)
                if ("bars", month) not in days_done:
                    await conn.execute("SELECT bars_partitions($1::date)", month)
                    days_done.add(("bars", month))
            elif day not in days_done:
                await ensure_storage_partitions(conn, day)
                days_done.add(day)
            chunks, rows, skipped = await _compact_batch(conn, spec, t0, tickers)
            stats.chunks += chunks
            stats.rows += rows
            stats.skipped += skipped
            stats.batches += 1
            moved += rows
        stats.per_table[spec.view] = moved
    if stats.rows:
        await maintain(conn, [s for s in tables if stats.per_table.get(s.view)])
    stats.seconds = time.perf_counter() - started
    if stats.rows:
        log.info(
            "compacted %d rows into %d chunks in %.2f s (%s)",
            stats.rows,
            stats.chunks,
            stats.seconds,
            ", ".join(f"{k} {v}" for k, v in stats.per_table.items()),
        )
    return stats
