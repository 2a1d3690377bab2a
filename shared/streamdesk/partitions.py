"""Daily partitions of the time-series tables: create ahead, drop past retention.

Partition ``{table}_pYYYYMMDD`` holds ``[day 00:00 UTC, next day 00:00 UTC)``. Retention drops
whole partitions (``DROP TABLE``), never ``DELETE``.

``equity_data``, ``indicators`` and ``option_prices`` are views (migration 0060); their rows
live in ``<table>_hot`` (partitions keep the names ``<table>_pYYYYMMDD``) and, once
compacted, in the packed tables and ``storage_grid`` (partitions ``<packed>_pYYYYMMDD``,
created by compaction for the days it writes). Retention drops all of them by day.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)

_PART_RE = re.compile(r"^(?P<table>[a-z_0-9]+)_p(?P<day>\d{8})$")

#: Logical table -> the partitioned table that holds its recent rows.
HOT_PARENT = {
    "equity_data": "equity_data_hot",
    "indicators": "indicators_hot",
    "option_prices": "option_prices_hot",
}
#: Logical table -> its packed table (compacted chunks).
PACKED_PARENT = {
    "equity_data": "equity_data_packed",
    "indicators": "indicators_packed",
    "option_prices": "option_prices_packed",
}
GRID = "storage_grid"


def partition_name(table: str, day: date) -> str:
    """Name of ``table``'s partition for ``day``."""
    return f"{table}_p{day:%Y%m%d}"


async def managed_tables(conn: asyncpg.Connection) -> list[str]:
    """Tables registered in ``partitioned_tables``."""
    return [r[0] for r in await conn.fetch("SELECT table_name FROM partitioned_tables ORDER BY 1")]


async def _parent(conn: asyncpg.Connection, table: str) -> str:
    hot = HOT_PARENT.get(table)
    if hot is not None and await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", hot):
        return hot
    return table  # before migration 0060, or another registered table


async def ensure_partition(
    conn: asyncpg.Connection, table: str, day: date, *, parent: str | None = None
) -> bool:
    """Create ``table``'s partition for ``day`` if absent (RLS enabled); True if created.

    ``table`` is a logical name (``equity_data`` ...: the partition goes to its hot table) or,
    with ``parent``, the partition ``{table}_pYYYYMMDD`` of ``parent`` itself.
    """
    name = partition_name(table, day)
    if parent is None:
        parent = await _parent(conn, table)
        if parent != table:  # the views' time axis needs the day too (the writer fills it)
            await ensure_partition(conn, GRID, day, parent=GRID)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{name}")
    if exists:
        return False
    try:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{parent}" '
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
        await conn.execute(f'ALTER TABLE "{name}" ENABLE ROW LEVEL SECURITY')
        if parent in PACKED_PARENT.values():
            # packed rows stay inline and uncompressed up to a page (see storage_sql)
            await conn.execute(f'ALTER TABLE "{name}" SET (toast_tuple_target = 8160)')
    except asyncpg.DuplicateTableError:
        return False  # created concurrently by another process
    log.info("created partition %s", name)
    return True


async def ensure_storage_partitions(conn: asyncpg.Connection, day: date) -> None:
    """Partitions of the packed tables and the grid for ``day`` (used by compaction)."""
    for packed in (*PACKED_PARENT.values(), GRID):
        await ensure_partition(conn, packed, day, parent=packed)


async def ensure_partitions(
    conn: asyncpg.Connection,
    days_ahead: int = 3,
    today: date | None = None,
    days_behind: int = 1,
) -> list[str]:
    """Create partitions from ``today - days_behind`` to ``today + days_ahead`` for every table."""
    today = today or datetime.now(UTC).date()
    created = []
    for table in await managed_tables(conn):
        for offset in range(-days_behind, days_ahead + 1):
            day = today + timedelta(days=offset)
            if await ensure_partition(conn, table, day):
                created.append(partition_name(table, day))
    return created


async def list_partitions(conn: asyncpg.Connection, table: str) -> list[tuple[str, date]]:
    """Existing daily partitions of ``table`` with their day, oldest first."""
    rows = await conn.fetch(
        """
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = $1
        """,
        await _parent(conn, table),
    )
    out = []
    for r in rows:
        m = _PART_RE.match(r[0])
        if m and m["table"] == table:
            d = m["day"]
            out.append((r[0], date(int(d[:4]), int(d[4:6]), int(d[6:]))))
    return sorted(out, key=lambda x: x[1])


async def drop_expired_partitions(
    conn: asyncpg.Connection, retention_days: int, today: date | None = None
) -> list[str]:
    """Drop partitions whose whole day is older than ``retention_days`` before ``today``."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=retention_days)
    dropped = []
    tables = await managed_tables(conn)
    storage = [PACKED_PARENT[t] for t in tables if t in PACKED_PARENT]
    if storage:
        storage.append(GRID)
    for table in [*tables, *storage]:
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
        if table in storage and not exists:
            continue  # before migration 0060
        for name, day in await list_partitions(conn, table):
            if day < cutoff:
                await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                log.info("dropped partition %s (older than %d days)", name, retention_days)
                if table in tables:  # the storage parts of the same day go with them
                    dropped.append(name)
    return dropped


_BAR_PART_RE = re.compile(r"^(?P<table>bars_grid|bars_1m_packed)_p(?P<month>\d{6})$")


async def drop_expired_bar_partitions(
    conn: asyncpg.Connection, retention_days: int, today: date | None = None
) -> list[str]:
    """Drop the monthly partitions of ``bars_1m`` (packed bars and their grid, migration 0110)
    whose whole month ended more than ``retention_days`` before ``today``."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=retention_days)
    rows = await conn.fetch(
        """
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname IN ('bars_grid', 'bars_1m_packed')
        """
    )
    dropped = []
    for r in sorted(x[0] for x in rows):
        m = _BAR_PART_RE.match(r)
        if not m:
            continue
        year, month = int(m["month"][:4]), int(m["month"][4:])
        end = date(year + month // 12, month % 12 + 1, 1)
        if end <= cutoff:
            await conn.execute(f'DROP TABLE IF EXISTS "{r}"')
            log.info("dropped partition %s (older than %d days)", r, retention_days)
            dropped.append(r)
    return dropped
