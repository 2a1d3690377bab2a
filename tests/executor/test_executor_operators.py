"""Defence in depth behind RLS: the real executor trades only for services and operators.

A trades row whose ``user_id`` is not in ``operators`` (inserted here as the table owner, the
way a hole in the policies or a mistaken service would) ends ``rejected`` with ``not_operator``
and never reaches market-sim; an operator's row and a service's (``user_id`` NULL) are placed.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
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

OPERATOR = uuid.UUID("0a000000-0000-4000-8000-0000000000e1")
STRANGER = uuid.UUID("0b000000-0000-4000-8000-0000000000e2")


async def test_only_operators_and_services_reach_the_broker(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("INSERT INTO operators (user_id, note) VALUES ($1, 'test')", OPERATOR)
        async with running(settings) as ex:
            for symbol in ("NVDA", "AAPL", "MSFT"):  # market-sim quotes a symbol once asked
                await broker_quote(ex, symbol)
            stranger = await insert_trade(conn, symbol="NVDA", quantity=3, user_id=STRANGER)
            operator = await insert_trade(conn, symbol="AAPL", quantity=1, user_id=OPERATOR)
            service = await insert_trade(conn, symbol="MSFT", quantity=2)
            row = await wait_status(conn, stranger, FINAL)
            assert row["status"] == "rejected"
            assert "not an operator" in row["error"] and row["broker_order_id"] is None
            assert row["submitted_at"] is None
            for trade_id in (operator, service):
                done = await wait_status(conn, trade_id, FINAL)
                assert done["status"] == "filled", (trade_id, done["error"])
            assert ex.counters["rejected_not_operator"] == 1
            assert ex.counters["submitted"] == 2
            # what the broker knows, through the real schwab-py client
            orders = await ex.broker.list_orders(ex.clock.now() - timedelta(days=1))
            assert sorted(o.symbol for o in orders) == ["AAPL", "MSFT"], orders
        assert sorted(o["symbol"] for o in sim.admin_get("broker/orders")) == ["AAPL", "MSFT"]
        assert await events_of(conn, stranger) == [("pending", "rejected", row["error"])]
        detail = await conn.fetchval(
            "SELECT detail FROM trade_events WHERE trade_id = $1 AND to_status = 'rejected'",
            stranger,
        )
        assert json.loads(detail)["codes"] == ["not_operator"]
    finally:
        await conn.close()


async def test_an_operator_removed_before_the_claim_is_refused(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """The list is read at claim time: removal stops a queued order (no restart, no cache)."""
    settings = make_settings()
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("INSERT INTO operators (user_id) VALUES ($1)", OPERATOR)
        queued = await insert_trade(conn, symbol="QQQ", user_id=OPERATOR)
        await conn.execute("DELETE FROM operators WHERE user_id = $1", OPERATOR)
        async with running(settings):
            row = await wait_status(conn, queued, FINAL)
        assert row["status"] == "rejected" and "not an operator" in row["error"]
        assert sim.admin_get("broker/orders") == []
    finally:
        await conn.close()
