"""The control plane in the executor: the kill switch rejects, a pause stops claiming.

Against market-sim through the real schwab-py client, real Postgres and Redis; what reached the
broker is read from the simulator's own order log (GET /admin/broker/orders).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from executor_helpers import (
    FINAL,
    SettingsFactory,
    broker_quote,
    insert_trade,
    running,
    wait_status,
)

from streamdesk.control import set_kill_switch, set_paused

pytestmark = pytest.mark.integration


def broker_orders(sim: Any) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = sim.admin_get("broker/orders")
    return orders


async def test_kill_switch_rejects_and_nothing_reaches_the_broker(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    redis = aioredis.Redis.from_url(settings.redis_url)
    async with running(settings):
        conn = await asyncpg.connect(settings.database_url)
        try:
            before = len(broker_orders(sim))
            await set_kill_switch(conn, True, "desk review", redis=redis)
            t = await insert_trade(conn, symbol="AAPL", quantity=1)
            row = await wait_status(conn, t, FINAL)
            assert row["status"] == "rejected"
            assert row["error"] == "the kill switch is engaged: desk review"
            assert row["broker_order_id"] is None and row["submitted_at"] is None
            ev = await conn.fetchrow(
                "SELECT from_status, reason, detail FROM trade_events "
                "WHERE trade_id = $1 AND to_status = 'rejected'",
                t,
            )
            assert ev is not None and ev["from_status"] == "pending"
            assert json.loads(ev["detail"])["codes"] == ["kill_switch"]
            assert len(broker_orders(sim)) == before  # nothing was sent

            # Released: the next trade goes through as usual.
            await set_kill_switch(conn, False, redis=redis)
            t2 = await insert_trade(conn, symbol="AAPL", quantity=1)
            assert (await wait_status(conn, t2, FINAL))["status"] == "filled"
            after = broker_orders(sim)
            assert len(after) == before + 1 and after[-1]["symbol"] == "AAPL"
        finally:
            await conn.close()
            await redis.aclose()


async def test_pause_stops_claiming_and_resume_picks_up(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings()
    redis = aioredis.Redis.from_url(settings.redis_url)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await broker_quote(ex, "MSFT")  # the simulator quotes a symbol once asked
            await set_paused(conn, "trade-executor", True, redis=redis)
            deadline = time.monotonic() + 5
            while not ex.paused:
                assert time.monotonic() < deadline, "the executor never saw the pause"
                await asyncio.sleep(0.05)
            assert ex.stats()["paused"] is True
            before = len(broker_orders(sim))
            t = await insert_trade(conn, symbol="MSFT", quantity=1)
            # Several poll intervals (0.2 s) and wake-ups pass: the row stays pending.
            await asyncio.sleep(1.5)
            status = await conn.fetchval("SELECT status FROM trades WHERE id = $1", t)
            assert status == "pending"
            assert len(broker_orders(sim)) == before

            await set_paused(conn, "trade-executor", False, redis=redis)
            row = await wait_status(conn, t, FINAL, timeout=10)
            assert row["status"] == "filled", row["error"]
            assert not ex.paused
        finally:
            await conn.close()
            await redis.aclose()
