"""Brackets through the executor, against market-sim and the real schwab-py client.

Prices are driven through the sim's admin API (``set_price``); exits are placed 5 % away from
the market, far beyond what the sim's random walk moves in a test (about 0.1 % a minute).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from bracket_helpers import (
    LIVE_LEG,
    cents,
    events_of_tree,
    insert_bracket,
    legs,
    request_cancel,
    sim_orders,
    sim_tree,
    wait_legs,
)
from executor_helpers import FINAL, SettingsFactory, broker_quote, running, wait_status

from streamdesk_executor.connections import open_executor

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("exit_leg", ["take_profit", "stop_loss"])
async def test_entry_fills_then_exactly_one_exit_fills_and_the_other_is_cancelled(
    make_settings: SettingsFactory, sim: Any, exit_leg: str
) -> None:
    symbol = {"take_profit": "NVDA", "stop_loss": "AMD"}[exit_leg]
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, symbol)
            entry = await insert_bracket(conn, symbol, bid, ask, quantity=2)
            row = await wait_status(conn, entry, FINAL)
            assert row["status"] == "filled" and row["leg"] == "entry", row["error"]
            found = await wait_legs(conn, entry, ("working",), broker_status=("WORKING",))
            assert set(found) == {"take_profit", "stop_loss"}
            tp, sl = found["take_profit"], found["stop_loss"]
            assert (tp["instruction"], tp["order_type"], tp["quantity"]) == ("SELL", "LIMIT", 2)
            assert (sl["instruction"], sl["order_type"], sl["stop_price"]) == (
                "SELL",
                "STOP",
                row["stop_loss_price"],
            )
            # one conditional order at the broker, its ids on the rows
            tree = sim_tree(sim, row["broker_order_id"])
            assert [o["strategy"] for o in tree] == ["TRIGGER", "OCO", "SINGLE", "SINGLE"]
            assert [str(o["order_id"]) for o in tree[2:]] == [
                tp["broker_order_id"],
                sl["broker_order_id"],
            ]
            if exit_leg == "take_profit":
                sim.set_price(symbol, float(tp["limit_price"] * Decimal("1.01")))
            else:
                sim.set_price(symbol, float(sl["stop_price"] * Decimal("0.99")))
            done = await wait_legs(conn, entry, FINAL)
            other = "stop_loss" if exit_leg == "take_profit" else "take_profit"
            assert done[exit_leg]["status"] == "filled", done[exit_leg]["error"]
            assert done[exit_leg]["filled_quantity"] == 2
            assert done[other]["status"] == "cancelled"
            assert done[other]["broker_status"] == "CANCELED"
            statuses = {
                str(o["order_id"]): o["status"] for o in sim_tree(sim, row["broker_order_id"])
            }
            assert statuses[done[exit_leg]["broker_order_id"]] == "FILLED"
            assert statuses[done[other]["broker_order_id"]] == "CANCELED"
            assert len(sim_orders(sim)) == 4  # nothing placed twice
            history = await events_of_tree(conn, entry)
            assert {h[0] for h in history} == {entry, tp["id"], sl["id"]}
        finally:
            await conn.close()


async def test_cancelling_a_working_bracket_cancels_every_leg(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, "INTC")
            # an entry under the market: it works, its exits wait for it
            entry = await insert_bracket(
                conn, "INTC", bid, ask, entry_limit=cents(bid * Decimal("0.97"))
            )
            row = await wait_status(conn, entry, ("working", *FINAL))
            assert row["status"] == "working", row["error"]
            await wait_legs(conn, entry, ("working",), broker_status=("AWAITING_PARENT_ORDER",))
            await request_cancel(conn, entry)
            row = await wait_status(conn, entry, FINAL)
            assert row["status"] == "cancelled"
            done = await wait_legs(conn, entry, ("cancelled",))
            assert len(done) == 2
            assert {o["status"] for o in sim_tree(sim, row["broker_order_id"])} == {"CANCELED"}
        finally:
            await conn.close()


async def test_cancelling_a_leg_after_the_entry_filled_cancels_the_exits(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, "ORCL")
            entry = await insert_bracket(conn, "ORCL", bid, ask)
            assert (await wait_status(conn, entry, FINAL))["status"] == "filled"
            found = await wait_legs(conn, entry, ("working",), broker_status=("WORKING",))
            await request_cancel(conn, found["take_profit"]["id"])
            done = await wait_legs(conn, entry, ("cancelled",))
            assert len(done) == 2  # the broker cancels the OCO sibling too
        finally:
            await conn.close()


async def test_a_cancel_that_comes_too_late_for_the_entry_cancels_its_exits(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """The entry filled while no executor ran, and its row was asked to cancel meanwhile:
    start-up finds the entry filled (its status wins) and cancels the exits instead."""
    settings = make_settings()
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with running(settings) as ex:
            bid, ask = await broker_quote(ex, "CSCO")
            entry = await insert_bracket(
                conn, "CSCO", bid, ask, entry_limit=cents(bid * Decimal("0.98"))
            )
            assert (await wait_status(conn, entry, ("working", *FINAL)))["status"] == "working"
            await wait_legs(conn, entry, ("working",))
        sim.set_price("CSCO", float(cents(bid * Decimal("0.975"))))  # the entry fills
        await request_cancel(conn, entry)
        async with running(settings):
            row = await wait_status(conn, entry, FINAL)
            assert row["status"] == "filled"
            done = await wait_legs(conn, entry, ("cancelled",))
            assert len(done) == 2
            assert any("its entry had filled" in e[3] for e in await events_of_tree(conn, entry))
    finally:
        await conn.close()


async def test_a_bracket_the_broker_rejects_rejects_its_legs(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """Not enough cash: the sim accepts, then rejects the tree; every row follows."""
    sim.reset_broker(1000)
    settings = make_settings(risk_check_buying_power=False)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, "META")
            entry = await insert_bracket(conn, "META", bid, ask, quantity=50)
            row = await wait_status(conn, entry, FINAL)
            assert row["status"] == "rejected"
            done = await wait_legs(conn, entry, ("rejected",))
            assert len(done) == 2
        finally:
            await conn.close()


async def test_legs_are_linked_by_the_next_pass_when_the_tree_cannot_be_read(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """The read of the tree right after acceptance fails (it takes longer than the broker
    timeout): the legs stay `submitting`, linked to their entry, until a pass links them."""
    settings = make_settings(executor_broker_timeout=1.0)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, "PEP")
            sim.http_fault(
                delay=1.5, path_prefix=f"/trader/v1/accounts/{ex.account}/orders/", count=1
            )
            entry = await insert_bracket(
                conn, "PEP", bid, ask, entry_limit=cents(bid * Decimal("0.97"))
            )
            found = await wait_legs(conn, entry, ("working",), broker_status=LIVE_LEG)
            for leg in found.values():
                evs = await conn.fetch(
                    "SELECT from_status, to_status FROM trade_events WHERE trade_id = $1 "
                    "ORDER BY id",
                    leg["id"],
                )
                assert [tuple(e) for e in evs] == [(None, "submitting"), ("submitting", "working")]
            assert len(sim_orders(sim)) == 4
        finally:
            await conn.close()
            sim.clear_faults()


async def test_legs_do_not_hold_up_the_next_order_of_their_symbol(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """Legs are not in the one-unsettled-order-per-symbol rule: with the exits working, a new
    order of the symbol is claimed and placed."""
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, "KO")
            entry = await insert_bracket(conn, "KO", bid, ask)
            assert (await wait_status(conn, entry, FINAL))["status"] == "filled"
            await wait_legs(conn, entry, ("working",))
            again = await insert_bracket(conn, "KO", bid, ask, quantity=1)
            assert (await wait_status(conn, again, FINAL))["status"] == "filled"
            assert len(await legs(conn, again)) == 2
        finally:
            await conn.close()


async def test_a_legs_quantity_follows_its_broker_order(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """Schwab works a bracket's exits for what the entry filled; market-sim fills whole
    orders, so the broker's view of a partly filled entry's exit is made here from the real
    one with another quantity, and given to the sync: the leg shows the broker's quantity."""
    settings = make_settings()
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with running(settings) as ex:
            bid, ask = await broker_quote(ex, "BAC")
            entry = await insert_bracket(
                conn, "BAC", bid, ask, quantity=5, entry_limit=cents(bid * Decimal("0.97"))
            )
            found = await wait_legs(conn, entry, ("working",))
        sl = found["stop_loss"]
        # not running: no maintenance pass puts the real quantity back meanwhile
        async with open_executor(settings) as ex:
            order = await ex.broker.get_order(sl["broker_order_id"])
            assert order is not None and order.quantity == 5
            await ex.sync.apply_order(dict(sl), dataclasses.replace(order, quantity=Decimal(2)))
        row = await conn.fetchrow("SELECT * FROM trades WHERE id = $1", sl["id"])
        assert row["quantity"] == 2 and row["status"] == "working"
        reasons = [e[3] for e in await events_of_tree(conn, entry) if e[0] == sl["id"]]
        assert reasons[-1].startswith("quantity 5 -> 2: the broker works the exit")
    finally:
        await conn.close()


async def test_legs_beyond_one_batch_are_synced_by_later_passes(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """Long-lived exits can outnumber a pass's batch: passes page through them, so every
    leg's status reaches its row (here a batch of 2 and 6 legs)."""
    settings = make_settings(executor_max_pending_batch=2)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            entries = []
            for symbol in ("GOOG", "AMZN", "MSFT"):
                bid, ask = await broker_quote(ex, symbol)
                entries.append(await insert_bracket(conn, symbol, bid, ask, quantity=1))
            for entry in entries:
                assert (await wait_status(conn, entry, FINAL))["status"] == "filled"
                # AWAITING_PARENT_ORDER -> WORKING reaches a row only through a sync pass
                await wait_legs(conn, entry, ("working",), broker_status=("WORKING",))
        finally:
            await conn.close()
