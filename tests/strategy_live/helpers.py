"""Helpers of the live-runtime integration tests (imported by file name, like the executor's
``executor_helpers``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import redis.asyncio as aioredis

from streamdesk import constants
from streamdesk.messages import CommittedMessage, encode_committed

HERE = Path(__file__).resolve().parent
#: A minute boundary in 2026-11 (fixed: nothing depends on the wall clock).
T0 = 1_796_000_000_000 - 1_796_000_000_000 % 60_000
T = TypeVar("T")


def message(ts: int, price: float, ticker: str = "AAA", seq: int = 1) -> CommittedMessage:
    """A committed message with one equity row."""
    return {
        "v": 1, "seq": seq, "committed_at": ts + 500,
        "rows": {"equity": 1, "options": 0, "bars": 1}, "from_ts": ts, "to_ts": ts,
        "equity": [{"ticker": ticker, "ts": ts, "price": price, "volume": 10, "bid": price - 0.01,
                    "ask": price + 0.01, "sma9": price, "vwap": price, "ema9": price}],
        "options": [], "options_truncated": False,
    }  # fmt: skip


async def publish(redis: aioredis.Redis, msg: CommittedMessage) -> str:
    """XADD a committed message as the writer does."""
    raw = await redis.xadd(constants.COMMITTED_STREAM, {"d": encode_committed(msg)})
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def insert_bar(conn: asyncpg.Connection, ticker: str, minute_ms: int, close: float) -> None:
    """A streamed 1-minute bar (as the writer writes it)."""
    await conn.execute(
        "INSERT INTO bars_1m (ticker, bucket, open, high, low, close, volume, vwap) "
        "VALUES ($1, $2, $3, $3, $3, $3, 100, $3)",
        ticker,
        datetime.fromtimestamp(minute_ms / 1000, UTC),
        close,
    )


async def add_strategy(conn: asyncpg.Connection, sid: str, module: str, **cols: Any) -> None:
    """A strategy row (enabled, ticker AAA unless told)."""
    values: dict[str, Any] = {"tickers": ["AAA"], "enabled": True, **cols}
    names = ["id", "module", *values]
    marks = ", ".join(f"${i + 1}" for i in range(len(names)))
    await conn.execute(
        f"INSERT INTO strategies ({', '.join(names)}) VALUES ({marks})", sid, module,
        *values.values(),
    )  # fmt: skip


async def wait_for(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 10.0
) -> T:
    """Poll ``probe`` until ``ok`` (AssertionError with the last value on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s; last value {value!r}")
        await asyncio.sleep(0.05)
