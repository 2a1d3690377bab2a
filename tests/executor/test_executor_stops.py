"""Single stop orders through the executor, against market-sim and the real schwab-py client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from executor_helpers import (
    FINAL,
    SettingsFactory,
    broker_quote,
    insert_trade,
    running,
    wait_status,
)

pytestmark = pytest.mark.integration

CENT = Decimal("0.01")


async def test_a_sell_stop_works_then_triggers_and_fills(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            _, ask = await broker_quote(ex, "MSFT")
            bought = await insert_trade(
                conn, symbol="MSFT", quantity=3, order_type="LIMIT", limit_price=ask.quantize(CENT)
            )
            assert (await wait_status(conn, bought, FINAL))["status"] == "filled"
            bid, _ = await broker_quote(ex, "MSFT")
            stop = (bid - Decimal(2)).quantize(CENT)
            t = await insert_trade(
                conn,
                symbol="MSFT",
                instruction="SELL",
                quantity=3,
                order_type="STOP",
                stop_price=stop,
            )
            row = await wait_status(conn, t, ("working", *FINAL))
            assert row["status"] == "working", row["error"]
            # the market falls through the stop: the broker triggers it, the row follows
            sim.set_price("MSFT", float(stop - Decimal(3)))
            row = await wait_status(conn, t, FINAL)
            assert row["status"] == "filled", row["error"]
            assert row["filled_quantity"] == 3 and row["avg_fill_price"] < stop
        finally:
            await conn.close()


async def test_a_stop_on_the_wrong_side_is_refused_before_the_broker(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            _, ask = await broker_quote(ex, "AAPL")
            t = await insert_trade(
                conn,
                symbol="AAPL",
                instruction="BUY",
                quantity=1,
                order_type="STOP",
                stop_price=(ask - Decimal(1)).quantize(CENT),
            )
            row = await wait_status(conn, t, FINAL)
            assert row["status"] == "rejected" and row["broker_order_id"] is None
            assert "stop_side" in row["error"] or "above" in row["error"], row["error"]
        finally:
            await conn.close()


async def test_a_trailing_stop_row_follows_the_brokers_stop_then_fills(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """The row's `stop_price` (NULL in the request) is the broker's current trailing stop:
    it rises with the price, and the pull-back through it fills the order."""
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, "NFLX")
            bought = await insert_trade(
                conn, symbol="NFLX", quantity=2, order_type="LIMIT", limit_price=ask.quantize(CENT)
            )
            assert (await wait_status(conn, bought, FINAL))["status"] == "filled"
            offset = (bid * Decimal("0.04")).quantize(CENT)
            t = await insert_trade(
                conn,
                symbol="NFLX",
                instruction="SELL",
                quantity=2,
                order_type="TRAILING_STOP",
                trail_type="VALUE",
                trail_offset=offset,
            )
            row = await wait_status(conn, t, ("working", *FINAL))
            assert row["status"] == "working", row["error"]
            first = await _wait_stop(conn, t, lambda p: p is not None)
            high = (bid * Decimal("1.03")).quantize(CENT)
            sim.set_price("NFLX", float(high))
            raised = await _wait_stop(conn, t, lambda p: p is not None and p > first)
            assert raised >= high - offset - Decimal("0.05")
            sim.set_price("NFLX", float((raised - Decimal(1)).quantize(CENT)))
            row = await wait_status(conn, t, FINAL)
            assert row["status"] == "filled" and row["filled_quantity"] == 2
        finally:
            await conn.close()


async def _wait_stop(
    conn: asyncpg.Connection, trade_id: int, ok: Callable[[Decimal | None], bool]
) -> Decimal:
    deadline = time.monotonic() + 10
    while True:
        stop = await conn.fetchval("SELECT stop_price FROM trades WHERE id = $1", trade_id)
        if ok(stop):
            return Decimal(stop)
        assert time.monotonic() < deadline, f"stop_price of {trade_id} is {stop}"
        await asyncio.sleep(0.05)
