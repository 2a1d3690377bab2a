"""Helpers shared by the trade-executor tests (plain functions; fixtures are in conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import asyncpg

from streamdesk_executor.config import Settings
from streamdesk_executor.connections import open_executor
from streamdesk_executor.executor import Executor

FINAL = ("filled", "cancelled", "rejected", "expired")

#: Defaults for tests: fast loops, short broker timeout, quotes from the broker (no streamer).
TEST_DEFAULTS: dict[str, Any] = {
    "executor_poll_interval": 0.2,
    "executor_sync_interval": 0.2,
    "executor_broker_timeout": 2.0,
    "executor_submit_grace": 1.0,
    "executor_quote_source": "broker",
    "executor_absent_after": 15.0,
    "executor_alert_after": 1.0,
    "risk_allow_market_orders": True,
    "risk_duplicate_window": 0.0,
    "risk_max_orders_per_minute": 100_000,
    "risk_max_daily_notional": "10000000",
    "risk_quote_max_age": 30.0,
    "heartbeat_interval": 1.0,
    "shutdown_timeout": 5.0,
}

SettingsFactory = Callable[..., Settings]


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Executor]:
    """An executor running in this event loop; stopped (bounded) on exit."""
    async with open_executor(settings) as executor:
        task = asyncio.create_task(executor.run(), name="test-executor")
        try:
            await asyncio.wait_for(executor.ready.wait(), 20.0)
            yield executor
        finally:
            executor.stop()
            try:
                await asyncio.wait_for(task, 10.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def insert_trade(conn: asyncpg.Connection, **cols: Any) -> int:
    """Insert a trade with only request columns (as a client would); return its id."""
    row: dict[str, Any] = {
        "symbol": "AAPL",
        "asset_type": "EQUITY",
        "instruction": "BUY",
        "quantity": 1,
        "order_type": "MARKET",
        "limit_price": None,
    }
    row.update(cols)
    names = list(row)
    placeholders = ", ".join(f"${i + 1}" for i in range(len(names)))
    trade_id = await conn.fetchval(
        f"INSERT INTO trades ({', '.join(names)}) VALUES ({placeholders}) RETURNING id",
        *row.values(),
    )
    return int(trade_id)


async def wait_status(
    conn: asyncpg.Connection, trade_id: int, statuses: tuple[str, ...], timeout: float = 15.0
) -> asyncpg.Record:
    """Wait until the trade is in one of ``statuses``; fail with its history otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        row = await conn.fetchrow("SELECT * FROM trades WHERE id = $1", trade_id)
        assert row is not None
        if row["status"] in statuses:
            return row
        if time.monotonic() > deadline:
            events = await conn.fetch(
                "SELECT from_status, to_status, reason FROM trade_events WHERE trade_id = $1 "
                "ORDER BY id",
                trade_id,
            )
            raise AssertionError(
                f"trade {trade_id} is {row['status']!r} (error={row['error']!r}), wanted "
                f"{statuses}; events: {[tuple(e) for e in events]}"
            )
        await asyncio.sleep(0.05)


async def events_of(conn: asyncpg.Connection, trade_id: int) -> list[tuple[str | None, str, str]]:
    """(from, to, reason) of every event of the trade, in order."""
    rows = await conn.fetch(
        "SELECT from_status, to_status, reason FROM trade_events WHERE trade_id = $1 ORDER BY id",
        trade_id,
    )
    return [(r["from_status"], r["to_status"], r["reason"]) for r in rows]


async def broker_quote(executor: Any, symbol: str) -> tuple[Decimal, Decimal]:
    """Bid and ask of ``symbol`` (market-sim starts quoting a symbol when first asked)."""
    deadline = time.monotonic() + 5
    while True:
        q = await executor.broker.quote(symbol)
        if q is not None:
            return q.bid, q.ask
        assert time.monotonic() < deadline, f"no quote for {symbol}"
        await asyncio.sleep(0.05)
