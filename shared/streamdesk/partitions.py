"""Daily partitions of the time-series tables: create ahead, drop past retention.

Partition ``{table}_pYYYYMMDD`` holds ``[day 00:00 UTC, next day 00:00 UTC)``. Retention drops
whole partitions (``DROP TABLE``), never ``DELETE``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)

_PART_RE = re.compile(r"^(?P<table>[a-z_0-9]+)_p(?P<day>\d{8})$")


def partition_name(table: str, day: date) -> str:
    """Name of ``table``'s partition for ``day``."""
    return f"{table}_p{day:%Y%m%d}"


async def managed_tables(conn: asyncpg.Connection) -> list[str]:
    """Tables registered in ``partitioned_tables``."""
    return [r[0] for r in await conn.fetch("SELECT table_name FROM partitioned_tables ORDER BY 1")]


async def ensure_partition(conn: asyncpg.Connection, table: str, day: date) -> bool:
    """Create ``table``'s partition for ``day`` if absent (RLS enabled); True if created."""
    name = partition_name(table, day)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{name}")
    if exists:
        return False
    try:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" '
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
        await conn.execute(f'ALTER TABLE "{name}" ENABLE ROW LEVEL SECURITY')
    except asyncpg.DuplicateTableError:
        return False  # created concurrently by another process
    log.info("created partition %s", name)
    return True


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
        table,
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
    for table in await managed_tables(conn):
        for name, day in await list_partitions(conn, table):
            if day < cutoff:
                await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                log.info("dropped partition %s (older than %d days)", name, retention_days)
                dropped.append(name)
    return dropped
