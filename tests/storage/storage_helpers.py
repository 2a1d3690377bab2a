"""Helpers for the storage tests: write a seeded session through the real Engine + Writer."""

from __future__ import annotations

import math
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from storage_universe import session, session_open_utc

from streamdesk.partitions import ensure_partition
from streamdesk_indicators.engine import Engine
from streamdesk_indicators.sessions import SessionCalendar
from streamdesk_indicators.writer import Batch, Writer

TABLES = ("equity_data", "indicators", "option_prices")
#: as migration 0060 sets for the database (test databases are clones: settings not copied)
NO_JIT = {"jit": "off"}
DAY = date(2026, 3, 10)


async def partitions(dsn: str, *days: date) -> None:
    """Hot partitions (and the grid's) for ``days``."""
    conn = await asyncpg.connect(dsn)
    try:
        for day in days or (DAY,):
            for table in TABLES:
                await ensure_partition(conn, table, day)
    finally:
        await conn.close()


async def write_session(
    dsn: str,
    seconds: int,
    per_underlying: int = 4,
    batch_seconds: int = 30,
    day: date = DAY,
    tickers: tuple[str, ...] = ("SPY", "QQQ"),
) -> int:
    """Write ``seconds`` of the reference universe (``tickers`` with ``per_underlying``
    contracts each) through the real Engine and Writer; return the rows written."""
    await partitions(dsn, day)
    writer = Writer(dsn)
    engine = Engine(SessionCalendar())
    rows = 0
    try:
        ticks = session(day, seconds, per_underlying=per_underlying, tickers=tickers)
        for i, (_, eq, opts) in enumerate(ticks):
            engine.process_equities(
                (e.symbol, e.ts, e.last, e.bid, e.ask, e.volume, e.last_size) for e in eq
            )
            for o in opts:
                engine.on_option(o)
            if (i + 1) % batch_seconds == 0 or i == seconds - 1:
                out, _ = engine.take()
                await writer.commit(
                    Batch(seconds=out.seconds, options=out.options, bars=out.bars, days=out.days)
                )
                rows += len(out.seconds) * 2 + len(out.options)
    finally:
        await writer.close()
    return rows


def key(value: Any) -> Any:
    """A value made comparable bit for bit (-0.0 vs 0.0, NaN)."""
    if isinstance(value, float):
        return ("f", value.hex()) if not math.isnan(value) else ("nan",)
    return value


async def dump(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the three views, ordered, values comparable bit for bit."""
    conn = await asyncpg.connect(dsn, server_settings=NO_JIT)
    try:
        return {
            t: [
                tuple(key(v) for v in r)
                for r in await conn.fetch(f'SELECT * FROM {t} ORDER BY ticker, "timestamp"')
            ]
            for t in TABLES
        }
    finally:
        await conn.close()


async def counts(dsn: str) -> dict[str, tuple[int, int]]:
    """(hot rows, packed samples) per table."""
    conn = await asyncpg.connect(dsn)
    try:
        return {
            t: (
                int(await conn.fetchval(f"SELECT count(*) FROM {t}_hot")),
                int(await conn.fetchval(f"SELECT coalesce(sum(n), 0) FROM {t}_packed")),
            )
            for t in TABLES
        }
    finally:
        await conn.close()


__all__ = [
    "DAY",
    "TABLES",
    "counts",
    "dump",
    "partitions",
    "session_open_utc",
    "timedelta",
    "write_session",
]
