"""Single stop orders through the executor, against market-sim and the real schwab-py client."""

from __future__ import annotations

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
