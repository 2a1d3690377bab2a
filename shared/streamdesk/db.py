"""asyncpg helpers: a pool with sane defaults and a bounded close."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    command_timeout: float = 30.0,
    **kwargs: Any,
) -> asyncpg.Pool:
    """Create an asyncpg pool.

    ``statement_cache_size=0`` is deliberately *not* set: asyncpg needs a session-level
    connection (Supabase direct or session pooler); the transaction pooler is unsupported.
    Small pools keep memory low on the 512 MB VM.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        server_settings={"application_name": kwargs.pop("application_name", "streamdesk")},
        **kwargs,
    )
    assert pool is not None
    return pool


async def close_pool(pool: asyncpg.Pool, timeout: float = 5.0) -> None:
    """Close ``pool`` gracefully within ``timeout`` seconds, then terminate what is left."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except (TimeoutError, Exception) as exc:
        log.warning("pool close did not finish in %.1fs (%s); terminating", timeout, exc)
        pool.terminate()


async def connect(dsn: str, timeout: float = 10.0, **kwargs: Any) -> asyncpg.Connection:
    """Open one connection (for the CLI, migrations and LISTEN)."""
    return await asyncpg.connect(dsn, timeout=timeout, **kwargs)


async def close_connection(conn: asyncpg.Connection, timeout: float = 5.0) -> None:
    """Close ``conn`` within ``timeout`` seconds, then terminate it."""
    try:
        await asyncio.wait_for(conn.close(), timeout)
    except (TimeoutError, Exception):
        conn.terminate()
