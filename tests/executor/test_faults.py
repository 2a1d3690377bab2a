"""Unknown outcomes: market-sim faults after accepting an order, reconciliation, start-up."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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

from streamdesk.constants import EXECUTOR_RECONCILE_KEY
from streamdesk.models import TradeRequest
from streamdesk_executor.connections import open_executor
from streamdesk_executor.orders import build_order, parse_order

pytestmark = pytest.mark.integration

FAULT_REASONS = {
    "500_after_accept": "broker error 500 after sending",
    "no_location": "accepted without a Location header",
    "drop_after_accept": "connection error after sending: RemoteProtocolError",
    "hang_after_accept": "no answer within 1s (broker call timeout)",
}


@pytest.mark.parametrize("fault", list(FAULT_REASONS))
async def test_fault_after_accept_is_unknown_then_reconciled(
    make_settings: SettingsFactory, sim: Any, fault: str
) -> None:
    # The hang is not shortened: the sim hangs until the fault is cleared; it is the
    # executor's 1 s broker-call timeout that turns it into `unknown`.
    settings = make_settings(executor_broker_timeout=1.0)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            sim.order_fault(fault, count=1)
            t = await insert_trade(conn, symbol="AAPL", quantity=3)
            row = await wait_status(conn, t, FINAL, timeout=20)
            evs = await events_of(conn, t)
            assert row["status"] == "filled", (row["error"], evs)
            assert ("submitting", "unknown") in [e[:2] for e in evs]
            unknown_reason = next(e[2] for e in evs if e[1] == "unknown")
            assert unknown_reason == FAULT_REASONS[fault]
            reconciled = [e for e in evs if e[2].startswith("reconciled: matched broker order")]
            assert len(reconciled) == 1 and reconciled[0][:2] == ("unknown", "working")
            assert reconciled[0][2].endswith(str(row["broker_order_id"]))
            # exactly one order at the broker: nothing was re-sent
            orders = await ex.broker.list_orders(datetime.now(UTC) - timedelta(minutes=5))
            assert [o.order_id for o in orders] == [row["broker_order_id"]]
        finally:
            await conn.close()
            sim.clear_faults()


async def test_startup_reconciles_before_new_trades(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """A crash left: a sent-but-unrecorded order, a claimed-but-never-sent row, and a working
    row whose order filled meanwhile. Start-up settles all three before taking new trades."""
    settings = make_settings(executor_absent_after=5.0, executor_workers=2)
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with open_executor(settings) as ex:
            account = ex.account
            sent = build_order(
                TradeRequest(
                    symbol="MSFT",
                    asset_type="EQUITY",
                    instruction="BUY",
                    quantity=Decimal(2),
                    order_type="MARKET",
                )
            )
            r1 = await ex.broker.place(sent)
            r3 = await ex.broker.place(
                build_order(
                    TradeRequest(
                        symbol="QQQ",
                        asset_type="EQUITY",
                        instruction="BUY",
                        quantity=Decimal(1),
                        order_type="MARKET",
                    )
                )
            )
            assert r1.order_id and r3.order_id
        ago = datetime.now(UTC) - timedelta(seconds=10)
        lost = await insert_trade(
            conn,
            symbol="MSFT",
            quantity=2,
            status="submitting",
            account_hash=account,
            submitted_at=ago,
        )
        never = await insert_trade(
            conn,
            symbol="SPY",
            quantity=1,
            status="submitting",
            account_hash=account,
            submitted_at=ago,
        )
        work = await insert_trade(
            conn,
            symbol="QQQ",
            quantity=1,
            status="working",
            account_hash=account,
            submitted_at=ago,
            broker_order_id=r3.order_id,
        )
        newer = await insert_trade(conn, symbol="MSFT", quantity=1)
        await asyncio.sleep(0.3)  # fills at the broker
        async with running(settings):
            # ready: start-up reconciliation has run
            rows = {r["id"]: r for r in await conn.fetch("SELECT * FROM trades")}
            assert rows[lost]["status"] == "filled"
            assert rows[lost]["broker_order_id"] == r1.order_id
            assert rows[never]["status"] == "rejected"
            assert "never reached the broker" in rows[never]["error"]
            assert rows[work]["status"] == "filled"
            assert rows[newer]["status"] == "pending"  # start-up came first
            row = await wait_status(conn, newer, FINAL)
            assert row["status"] == "filled"
        evs = await events_of(conn, lost)
        assert [e[:2] for e in evs] == [
            ("submitting", "unknown"),
            ("unknown", "working"),
            ("working", "filled"),
        ]
        assert evs[0][2] == "executor stopped before the broker answered"
    finally:
        await conn.close()


async def test_unknown_alert_raised_then_settled_absent(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """The broker hangs every account request: the place times out (`unknown`), the order
    list too, so the row stays unknown and an alert is raised. Once the broker answers again
    the order is not there (the hung request never reached the order handler): after
    EXECUTOR_ABSENT_AFTER the row is settled `rejected` and the alert resolved."""
    settings = make_settings(
        executor_broker_timeout=1.0, executor_alert_after=0.5, executor_absent_after=4.0
    )
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await broker_quote(ex, "NVDA")
            sim.http_fault(hang=True, path_prefix="/trader/v1/accounts/", count=None)
            t = await insert_trade(conn, symbol="NVDA", quantity=1)
            await wait_status(conn, t, ("unknown",))
            alert = None
            for _ in range(100):
                alert = await conn.fetchrow("SELECT * FROM executor_alerts WHERE trade_id = $1", t)
                if alert is not None:
                    break
                await asyncio.sleep(0.1)
            assert alert is not None and alert["kind"] == "unknown"
            assert "broker unreachable" in alert["message"] and alert["resolved_at"] is None
            assert await conn.fetchval("SELECT status FROM trades WHERE id = $1", t) == "unknown"
            summary = json.loads(await ex.redis.get(EXECUTOR_RECONCILE_KEY))
            assert summary["still_unknown"] == 1 and "broker unreachable" in summary["error"]
            sim.clear_faults()
            row = await wait_status(conn, t, FINAL, timeout=20)
            assert row["status"] == "rejected", (row["error"], await events_of(conn, t))
            assert "never reached the broker" in row["error"]
            assert await conn.fetchval(
                "SELECT resolved_at IS NOT NULL FROM executor_alerts WHERE trade_id = $1", t
            )
            assert await ex.broker.list_orders(datetime.now(UTC) - timedelta(minutes=5)) == []
            summary = json.loads(await ex.redis.get(EXECUTOR_RECONCILE_KEY))
            assert "error" not in summary and summary["still_unknown"] == 0
        finally:
            await conn.close()


async def test_partial_fill_and_expiry_from_broker_state(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """Sync applies what the broker reports: a partial fill keeps the row working with the
    filled quantity and average price; EXPIRED ends it `expired` with the fills kept."""
    settings = make_settings()
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with open_executor(settings) as ex:
            t = await insert_trade(
                conn,
                symbol="AAPL",
                quantity=5,
                status="working",
                account_hash=ex.account,
                submitted_at=datetime.now(UTC),
                broker_order_id="900001",
            )
            row = dict(await conn.fetchrow("SELECT * FROM trades WHERE id = $1", t))
            raw = {
                "orderId": 900001,
                "status": "WORKING",
                "orderType": "MARKET",
                "quantity": 5,
                "filledQuantity": 2,
                "enteredTime": "2026-11-25T15:00:01+0000",
                "orderLegCollection": [
                    {
                        "instruction": "BUY",
                        "quantity": 5,
                        "instrument": {"symbol": "AAPL", "assetType": "EQUITY"},
                    }
                ],
                "orderActivityCollection": [{"executionLegs": [{"quantity": 2, "price": 101.5}]}],
            }
            partial = parse_order(raw)
            assert partial is not None
            assert await ex.sync.apply_order(row, partial) is False
            row = dict(await conn.fetchrow("SELECT * FROM trades WHERE id = $1", t))
            assert row["status"] == "working" and row["filled_quantity"] == 2
            assert row["avg_fill_price"] == Decimal("101.5")
            expired = parse_order({**raw, "status": "EXPIRED"})
            assert expired is not None
            assert await ex.sync.apply_order(row, expired) is True
            row = dict(await conn.fetchrow("SELECT * FROM trades WHERE id = $1", t))
            assert row["status"] == "expired" and row["filled_quantity"] == 2
            assert [e[:3] for e in await events_of(conn, t)] == [
                ("working", "working", "partial fill"),
                ("working", "expired", "broker reports EXPIRED"),
            ]
    finally:
        await conn.close()


async def test_lowercase_symbol_is_normalized_and_reconciled(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings(executor_broker_timeout=1.0)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await broker_quote(ex, "AMD")
            sim.order_fault("500_after_accept", count=1)
            t = await insert_trade(conn, symbol="amd", quantity=2)
            row = await wait_status(conn, t, FINAL, timeout=20)
            assert row["status"] == "filled", (row["error"], await events_of(conn, t))
            assert row["symbol"] == "AMD"
            assert any(e[2].startswith("reconciled: matched") for e in await events_of(conn, t))
        finally:
            await conn.close()
