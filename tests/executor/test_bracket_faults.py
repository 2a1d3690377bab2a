"""Unknown outcomes of a bracket's placement: matched by its tree, legs linked from the
children, never re-sent; and a crash between placement and recording, settled at start-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from bracket_helpers import cents, events_of_tree, insert_bracket, sim_orders, sim_tree, wait_legs
from executor_helpers import (
    FINAL,
    SettingsFactory,
    broker_quote,
    events_of,
    insert_trade,
    running,
    wait_status,
)

from streamdesk.models import TradeRequest
from streamdesk_executor.connections import open_executor
from streamdesk_executor.orders import build_order

pytestmark = pytest.mark.integration

FAULT_REASONS = {
    "500_after_accept": "broker error 500 after sending",
    "no_location": "accepted without a Location header",
    "drop_after_accept": "connection error after sending: RemoteProtocolError",
    "hang_after_accept": "no answer within 1s (broker call timeout)",
}


@pytest.mark.parametrize("fault", list(FAULT_REASONS))
async def test_unknown_bracket_is_reconciled_by_its_tree_without_resending(
    make_settings: SettingsFactory, sim: Any, fault: str
) -> None:
    settings = make_settings(executor_broker_timeout=1.0)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, "TSLA")
            sim.order_fault(fault, count=1)
            entry = await insert_bracket(conn, "TSLA", bid, ask)
            row = await wait_status(conn, entry, FINAL, timeout=20)
            assert row["status"] == "filled", row["error"]
            found = await wait_legs(conn, entry, ("working",), broker_status=("WORKING",))
            evs = await events_of(conn, entry)
            assert next(e[2] for e in evs if e[1] == "unknown") == FAULT_REASONS[fault]
            assert any(e[2].startswith("reconciled: matched broker order") for e in evs)
            for leg in found.values():
                steps = [e[:2] for e in await events_of(conn, leg["id"])]
                assert steps == [
                    (None, "submitting"),
                    ("submitting", "unknown"),
                    ("unknown", "working"),
                ]
            # exactly one tree at the broker, its orders on our rows
            tree = sim_tree(sim, row["broker_order_id"])
            assert len(sim_orders(sim)) == len(tree) == 4
            assert {str(o["order_id"]) for o in tree[2:]} == {
                r["broker_order_id"] for r in found.values()
            }
        finally:
            await conn.close()
            sim.clear_faults()


async def test_a_crash_after_placing_a_bracket_is_settled_at_start_up(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """The executor placed a bracket and died before recording it: the entry and its legs are
    `submitting`, the tree exists at the broker. Start-up links all three; nothing is sent."""
    settings = make_settings(executor_absent_after=5.0)
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with open_executor(settings) as ex:
            account = ex.account
            bid, ask = await broker_quote(ex, "XOM")
            tp, sl = cents(ask * Decimal("1.05")), cents(bid * Decimal("0.95"))
            req = TradeRequest(
                symbol="XOM",
                asset_type="EQUITY",
                instruction="BUY",
                quantity=Decimal(2),
                order_type="LIMIT",
                limit_price=cents(bid * Decimal("0.97")),
                take_profit_price=tp,
                stop_loss_price=sl,
            )
            placed = await ex.broker.place(build_order(req))
            assert placed.order_id is not None
        ago = datetime.now(UTC) - timedelta(seconds=10)
        common = {"status": "submitting", "account_hash": account, "submitted_at": ago}
        entry = await insert_trade(
            conn,
            symbol="XOM",
            quantity=2,
            order_type="LIMIT",
            limit_price=req.limit_price,
            take_profit_price=tp,
            stop_loss_price=sl,
            leg="entry",
            **common,
        )
        for leg, kind, price in (("take_profit", "LIMIT", tp), ("stop_loss", "STOP", sl)):
            await insert_trade(
                conn,
                symbol="XOM",
                instruction="SELL",
                quantity=2,
                order_type=kind,
                limit_price=price if kind == "LIMIT" else None,
                stop_price=price if kind == "STOP" else None,
                parent_id=entry,
                leg=leg,
                **common,
            )
        async with running(settings):
            row = await wait_status(conn, entry, ("working",))
            assert row["broker_order_id"] == placed.order_id
            found = await wait_legs(
                conn, entry, ("working",), broker_status=("AWAITING_PARENT_ORDER",)
            )
            assert len(found) == 2
        history = await events_of_tree(conn, entry)
        assert ("executor stopped before the broker answered") in {h[3] for h in history}
        assert len(sim_orders(sim)) == 4
    finally:
        await conn.close()


async def test_a_bracket_that_never_reached_the_broker_settles_its_legs(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """Claimed (legs created), then the process died before sending: after the absent delay
    the entry is `rejected` ("never reached the broker") and so are its legs."""
    settings = make_settings(executor_absent_after=1.0)
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with open_executor(settings) as ex:
            account = ex.account
        ago = datetime.now(UTC) - timedelta(seconds=10)
        common = {"status": "submitting", "account_hash": account, "submitted_at": ago}
        entry = await insert_trade(
            conn,
            symbol="JPM",
            quantity=1,
            order_type="LIMIT",
            limit_price=Decimal(100),
            take_profit_price=Decimal(120),
            leg="entry",
            **common,
        )
        await insert_trade(
            conn,
            symbol="JPM",
            instruction="SELL",
            quantity=1,
            order_type="LIMIT",
            limit_price=Decimal(120),
            parent_id=entry,
            leg="take_profit",
            **common,
        )
        async with running(settings):
            row = await wait_status(conn, entry, FINAL)
            assert row["status"] == "rejected" and "never reached the broker" in row["error"]
            found = await wait_legs(conn, entry, ("rejected",))
            assert "never reached the broker" in found["take_profit"]["error"]
        assert sim_orders(sim) == {}
    finally:
        await conn.close()
