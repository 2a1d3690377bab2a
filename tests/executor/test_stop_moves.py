"""Stop moves (``replace_stop_price``) through the executor: Broker.replace against market-sim
with the real schwab-py client; refusals; an unknown outcome followed to the successor."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from bracket_helpers import (
    cents,
    insert_bracket,
    request_stop_move,
    sim_orders,
    wait_for,
    wait_legs,
)
from executor_helpers import (
    FINAL,
    SettingsFactory,
    broker_quote,
    events_of,
    insert_trade,
    running,
    wait_status,
)

pytestmark = pytest.mark.integration


async def _working_stop(ex: Any, conn: asyncpg.Connection, symbol: str) -> asyncpg.Record:
    """Buy 3 shares, then a sell STOP 5 % under the bid, working."""
    bid, ask = await broker_quote(ex, symbol)
    bought = await insert_trade(
        conn, symbol=symbol, quantity=3, order_type="LIMIT", limit_price=cents(ask)
    )
    assert (await wait_status(conn, bought, FINAL))["status"] == "filled"
    t = await insert_trade(
        conn,
        symbol=symbol,
        instruction="SELL",
        quantity=3,
        order_type="STOP",
        stop_price=cents(bid * Decimal("0.95")),
    )
    row = await wait_status(conn, t, ("working", *FINAL))
    assert row["status"] == "working", row["error"]
    return row


async def _wait_event(conn: asyncpg.Connection, trade_id: int, prefix: str) -> str:
    async def check() -> str | None:
        return next(
            (e[2] for e in await events_of(conn, trade_id) if e[2].startswith(prefix)), None
        )

    found: str = await wait_for(f"event {prefix!r} of {trade_id}", check)
    return found


async def test_a_stop_move_replaces_the_order_and_the_new_stop_triggers(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            row = await _working_stop(ex, conn, "ADBE")
            old_id = row["broker_order_id"]
            bid, _ = await broker_quote(ex, "ADBE")
            new_stop = cents(bid * Decimal("0.98"))
            await request_stop_move(conn, row["id"], new_stop)
            reason = await _wait_event(conn, row["id"], "replaced: broker order")
            moved = await conn.fetchrow("SELECT * FROM trades WHERE id = $1", row["id"])
            assert moved["status"] == "working" and moved["replace_stop_price"] is None
            assert moved["stop_price"] == new_stop and moved["broker_order_id"] != old_id
            assert old_id in reason and moved["broker_order_id"] in reason
            orders = sim_orders(sim)
            assert orders[int(old_id)]["status"] == "REPLACED"
            new = orders[int(moved["broker_order_id"])]
            assert new["status"] == "WORKING" and Decimal(str(new["stop_price"])) == new_stop
            # between the new stop and the old one: only the moved stop triggers
            sim.set_price("ADBE", float(cents(bid * Decimal("0.965"))))
            done = await wait_status(conn, row["id"], FINAL)
            assert done["status"] == "filled" and done["filled_quantity"] == 3
        finally:
            await conn.close()


async def test_a_stop_move_to_the_wrong_side_is_refused_and_nothing_is_sent(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            row = await _working_stop(ex, conn, "CRM")
            before = len(sim_orders(sim))
            _, ask = await broker_quote(ex, "CRM")
            await request_stop_move(conn, row["id"], cents(ask * Decimal("1.01")))
            reason = await _wait_event(conn, row["id"], "stop move refused")
            assert "sell stop must be below the market" in reason
            after = await conn.fetchrow("SELECT * FROM trades WHERE id = $1", row["id"])
            assert after["replace_stop_price"] is None
            assert (after["stop_price"], after["broker_order_id"]) == (
                row["stop_price"],
                row["broker_order_id"],
            )
            assert len(sim_orders(sim)) == before
        finally:
            await conn.close()


async def test_a_stop_move_with_a_lost_answer_is_followed_to_the_successor(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            row = await _working_stop(ex, conn, "WMT")
            bid, _ = await broker_quote(ex, "WMT")
            new_stop = cents(bid * Decimal("0.97"))
            sim.order_fault("500_after_accept", count=1)
            await request_stop_move(conn, row["id"], new_stop)
            await _wait_event(conn, row["id"], "stop move outcome unknown (broker error 500")
            await _wait_event(conn, row["id"], "replaced: broker order")
            moved = await conn.fetchrow("SELECT * FROM trades WHERE id = $1", row["id"])
            assert moved["status"] == "working" and moved["stop_price"] == new_stop
            orders = sim_orders(sim)
            assert orders[int(row["broker_order_id"])]["status"] == "REPLACED"
            assert orders[int(moved["broker_order_id"])]["status"] == "WORKING"
            # one replacement at the broker: nothing re-sent
            assert sum(o["status"] == "WORKING" for o in orders.values()) == 1
        finally:
            await conn.close()
            sim.clear_faults()


async def test_moving_a_brackets_stop_loss_keeps_it_in_the_tree(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, "DIS")
            entry = await insert_bracket(conn, "DIS", bid, ask)
            assert (await wait_status(conn, entry, FINAL))["status"] == "filled"
            found = await wait_legs(conn, entry, ("working",), broker_status=("WORKING",))
            sl = found["stop_loss"]
            new_stop = cents(bid * Decimal("0.98"))
            await request_stop_move(conn, sl["id"], new_stop)
            await _wait_event(conn, sl["id"], "replaced: broker order")
            moved = await wait_legs(conn, entry, ("working",))
            assert moved["stop_loss"]["stop_price"] == new_stop
            new_id = int(moved["stop_loss"]["broker_order_id"])
            orders = sim_orders(sim)
            assert orders[int(sl["broker_order_id"])]["status"] == "REPLACED"
            # the successor took the old one's place in the OCO of the entry
            assert orders[new_id]["parent_id"] == orders[int(sl["broker_order_id"])]["parent_id"]
            sim.set_price("DIS", float(cents(bid * Decimal("0.965"))))
            done = await wait_legs(conn, entry, FINAL)
            assert done["stop_loss"]["status"] == "filled"
            assert done["take_profit"]["status"] == "cancelled"
        finally:
            await conn.close()
