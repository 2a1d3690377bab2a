"""An idle executor is cheap and still prompt: its polls slow down to EXECUTOR_IDLE_INTERVAL
while nothing is open and notifications arrive, and speed up again as soon as there is work.

Against market-sim through the real schwab-py client, real Postgres and Redis. The passes
and claims are counted by wrapping the executor's own methods (they still run for real).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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

from streamdesk_executor.connections import open_executor
from streamdesk_executor.executor import Executor

pytestmark = pytest.mark.integration


def _count(obj: Any, name: str) -> list[float]:
    """Record the monotonic time of every call of ``obj.name`` (an async method)."""
    calls: list[float] = []
    fn: Callable[..., Awaitable[Any]] = getattr(obj, name)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        return await fn(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def _settle_idle(ex: Executor) -> None:
    """Wait until the LISTEN connection is up and the start-up's fast passes are over."""
    await _until(lambda: ex.listening, 10, "never listening")
    await _until(lambda: ex.counters["maintenance_idle_waits"] >= 1, 10, "never idle")


async def test_idle_executor_polls_at_the_idle_interval(
    make_settings: SettingsFactory, sim: Any
) -> None:
    # Fast periods of 0.2 s: ~5 passes, ~20 claims (4 workers) and ~5 control reads a second
    # if the idle period were not applied.
    settings = make_settings(executor_idle_interval=1.5)
    async with running(settings) as ex:
        await _settle_idle(ex)
        passes = _count(ex.reconciler, "maintenance_pass")
        claims = _count(ex.intake, "claim_and_submit")
        control = _count(ex.control, "refresh")
        window = 4.6
        await asyncio.sleep(window)
        bound = window / settings.executor_idle_interval + 1
        assert len(passes) <= bound, passes
        assert len(claims) <= bound, claims
        assert len(control) <= bound, control
        assert len(passes) >= 2 and len(claims) >= 2  # the safety nets still run


async def test_trade_after_a_long_idle_is_placed_and_synced_at_the_fast_period(
    make_settings: SettingsFactory, sim: Any
) -> None:
    # An idle period far beyond the test's bounds: only the NOTIFY and the switch back to
    # the fast sync period can make them.
    settings = make_settings(executor_idle_interval=60.0)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await broker_quote(ex, "AAPL")
            await _settle_idle(ex)
            await asyncio.sleep(1.0)
            t0 = time.monotonic()
            t = await insert_trade(conn, symbol="AAPL")
            # filled = placed by a worker (NOTIFY) and the fill synced by a maintenance pass
            row = await wait_status(conn, t, FINAL, timeout=10)
            assert row["status"] == "filled", row["error"]
            assert time.monotonic() - t0 < 5.0
        finally:
            await conn.close()


async def test_idle_poll_still_finds_a_trade_whose_notification_was_lost(
    make_settings: SettingsFactory, sim: Any
) -> None:
    settings = make_settings(executor_idle_interval=1.5)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await broker_quote(ex, "MSFT")
            await _settle_idle(ex)
            # No NOTIFY for this insert (the trigger is off in this test's own database).
            await conn.execute("ALTER TABLE trades DISABLE TRIGGER trades_notify_insert")
            t0 = time.monotonic()
            t = await insert_trade(conn, symbol="MSFT")
            row = await wait_status(conn, t, FINAL, timeout=15)
            assert row["status"] == "filled", row["error"]
            assert time.monotonic() - t0 < settings.executor_idle_interval + 3.0
        finally:
            await conn.close()


async def test_stop_while_idle_is_prompt(make_settings: SettingsFactory, sim: Any) -> None:
    settings = make_settings(executor_idle_interval=60.0)
    async with open_executor(settings) as ex:
        task = asyncio.create_task(ex.run())
        try:
            await asyncio.wait_for(ex.ready.wait(), 20.0)
            await _settle_idle(ex)
            await asyncio.sleep(0.5)  # every loop is in its idle wait
            t0 = time.monotonic()
            ex.stop()
            await asyncio.wait_for(task, 10.0)
            assert time.monotonic() - t0 < 2.0
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=5)
