"""The executor as a service: cancel while in flight, tokens, entry point and SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from executor_helpers import (
    FINAL,
    TEST_DEFAULTS,
    SettingsFactory,
    broker_quote,
    events_of,
    insert_trade,
    running,
    wait_status,
)

from streamdesk.constants import HEARTBEAT_PATTERN, last_quote_key

pytestmark = pytest.mark.integration


async def test_cancel_requested_while_submitting(make_settings: SettingsFactory, sim: Any) -> None:
    """The user cancels while the order is in flight (the broker hangs): the row keeps the
    request, reconciliation links the order, the cancel reaches the broker."""
    settings = make_settings(executor_broker_timeout=1.5)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, _ = await broker_quote(ex, "INTC")
            sim.order_fault("hang_after_accept", count=1)
            t = await insert_trade(
                conn,
                symbol="INTC",
                order_type="LIMIT",
                limit_price=(bid * Decimal("0.96")).quantize(Decimal("0.01")),
            )
            await wait_status(conn, t, ("submitting",))
            await conn.execute("UPDATE trades SET status = 'cancel_requested' WHERE id = $1", t)
            row = await wait_status(conn, t, FINAL, timeout=20)
            evs = await events_of(conn, t)
            assert row["status"] == "cancelled", (row["error"], evs)
            assert row["broker_order_id"] is not None
            order = await ex.broker.get_order(row["broker_order_id"])
            assert order is not None and order.status == "CANCELED"
            assert any(e[2].startswith("reconciled: matched broker order") for e in evs)
        finally:
            await conn.close()
            sim.clear_faults()


async def test_revoked_access_token_is_refreshed(make_settings: SettingsFactory, sim: Any) -> None:
    settings = make_settings()
    async with running(settings):
        conn = await asyncpg.connect(settings.database_url)
        try:
            sim.expire_tokens(access=True, refresh=False)
            t = await insert_trade(conn, symbol="AAPL")
            row = await wait_status(conn, t, FINAL)
            assert row["status"] == "filled", row["error"]
        finally:
            await conn.close()


async def test_revoked_refresh_token_stops_the_executor(
    make_settings: SettingsFactory, sim: Any
) -> None:
    """An operational error: the executor stops instead of retrying, sending nothing."""
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            sim.expire_tokens(access=True, refresh=True)
            t = await insert_trade(conn, symbol="AAPL")
            deadline = time.monotonic() + 15
            while ex.fatal is None:
                assert time.monotonic() < deadline, ex.stats()
                await asyncio.sleep(0.1)
            assert "log in again" in ex.fatal
            assert ex.stopping.is_set()
            # The claim needed a quote from the broker, which failed: nothing was taken.
            row = await conn.fetchrow("SELECT * FROM trades WHERE id = $1", t)
            assert row["status"] == "pending" and row["broker_order_id"] is None
        finally:
            await conn.close()


async def test_entry_point_heartbeat_and_sigterm(
    make_settings: SettingsFactory, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXECUTOR_", "RISK_"))}
    values = {
        **TEST_DEFAULTS,
        "database_url": settings.database_url,
        "redis_url": redis_url,
        "schwab_base_url": settings.schwab_base_url,
        "schwab_token_path": str(settings.schwab_token_path),
        "executor_instance": "ep-test",
        "executor_quote_source": "redis",
        "log_format": "json",
    }
    env.update({k.upper(): str(v) for k, v in values.items()})
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdesk_executor"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    r = aioredis.Redis.from_url(redis_url)
    conn = await asyncpg.connect(settings.database_url)
    try:
        # the streamer's quote hash (fresh), as in production
        await r.hset(
            last_quote_key("MSFT"),
            mapping={"last": "400", "bid": "399.9", "ask": "400.1", "ts": int(time.time() * 1000)},
        )
        t = await insert_trade(conn, symbol="MSFT")
        row = await wait_status(conn, t, FINAL, timeout=30)
        assert row["status"] == "filled", row["error"]
        assert row["claimed_by"] == "ep-test"
        deadline = time.monotonic() + 10
        beat: dict[str, Any] = {}
        while not beat.get("counters", {}).get("accepted"):
            assert time.monotonic() < deadline, beat
            keys = [k async for k in r.scan_iter(match=HEARTBEAT_PATTERN)]
            beat = json.loads(await r.get(keys[0])) if keys else {}
            await asyncio.sleep(0.2)
        assert beat["service"] == "trade-executor" and beat["instance"] == "ep-test"
        assert beat["counters"]["claimed"] == 1
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out[-2000:]
        assert time.monotonic() - t_stop < float(TEST_DEFAULTS["shutdown_timeout"]) + 3
        assert [k async for k in r.scan_iter(match=HEARTBEAT_PATTERN)] == []
        assert b"secret" not in out.lower() and b"access_token" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        await conn.close()
        await r.aclose()


async def test_listen_connection_loss_falls_back_to_poll_and_reconnects(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings(executor_poll_interval=0.5)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await broker_quote(ex, "AAPL")
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() "
                "AND application_name LIKE 'trade-executor-listen:%'"
            )
            assert killed == 1, await conn.fetch(
                "SELECT application_name, query FROM pg_stat_activity "
                "WHERE datname = current_database()"
            )
            t = await insert_trade(conn, symbol="AAPL")  # found by the poll
            assert (await wait_status(conn, t, FINAL))["status"] == "filled"
            # the executor notices (keep-alive query) and listens again
            deadline = time.monotonic() + 15
            while True:
                listening = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name LIKE 'trade-executor-listen:%'"
                )
                if listening == 1 and ex.counters["listen_errors"] >= 1:
                    break
                assert time.monotonic() < deadline, ex.stats()
                await asyncio.sleep(0.1)
            t = await insert_trade(conn, symbol="AAPL", quantity=2)
            assert (await wait_status(conn, t, FINAL))["status"] == "filled"
        finally:
            await conn.close()
