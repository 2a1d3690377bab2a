"""An idle strategy service (no committed messages, no open order) costs almost nothing: no
order read-back, a slow strategies poll while LISTEN is up, long committed reads; it still
places an order at once when a message comes, reads its fill back, and stops at once.

Real Postgres and Redis; the loops are counted through the service's own counters and by
wrapping its methods (they still run for real).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from helpers import T0, add_strategy, insert_bar, message, publish

from streamdesk import constants
from streamdesk.config import load_settings
from streamdesk_strategy.config import Settings
from streamdesk_strategy.service import StrategyService

pytestmark = pytest.mark.integration


@asynccontextmanager
async def idle_service(
    db_url: str, redis_url: str, idle: float
) -> AsyncIterator[tuple[StrategyService, asyncio.Task[None]]]:
    settings = load_settings(
        Settings, database_url=db_url, redis_url=redis_url, backfill_enabled=False,
        strategy_poll_interval=0.1, strategy_control_interval=0.2, strategy_block_ms=50,
        strategy_idle_interval=idle, strategy_checkpoint_interval=max(idle, 5.0),
    )  # fmt: skip
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    redis = aioredis.Redis.from_url(redis_url)
    svc = StrategyService(settings, pool, redis)
    await svc.start()
    task = asyncio.create_task(svc.run())
    try:
        yield svc, task
    finally:
        svc.stop()
        await asyncio.wait_for(task, 10)
        await svc.aclose()
        await pool.close()
        await redis.aclose()


def _count(obj: Any, name: str) -> list[float]:
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


async def test_idle_service_polls_at_the_idle_interval(db_url: str, redis_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.delete(constants.COMMITTED_STREAM)
        await add_strategy(conn, "quiet", "live_strategies:BuyEveryBar")
        async with idle_service(db_url, redis_url, idle=1.5) as (svc, _):
            await _until(lambda: svc.listening and svc.counters["idle_reads"] >= 1, 10, "idle")
            reloads = _count(svc, "_reload")
            reads = _count(svc.redis, "xread")
            window = 4.6
            await asyncio.sleep(window)
            bound = window / 1.5 + 1
            # fast periods (0.2 s control, 50 ms XREAD) would give ~23 reloads, ~90 reads
            assert len(reloads) <= bound, reloads
            assert len(reads) <= bound, reads
            assert len(reloads) >= 2  # the safety-net poll still runs
            assert svc.counters["order_reads"] == 0  # nothing open: nothing read back
    finally:
        await conn.close()
        await redis.aclose()


async def test_order_after_a_long_idle_is_placed_and_read_back(db_url: str, redis_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.delete(constants.COMMITTED_STREAM)
        await add_strategy(conn, "wake", "live_strategies:BuyEveryBar")
        await insert_bar(conn, "AAA", T0, 10.0)
        # an idle period beyond the test's bounds: only the events can make them
        async with idle_service(db_url, redis_url, idle=60.0) as (svc, _):
            await _until(lambda: svc.counters["idle_reads"] >= 1, 10, "never idle")
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            await publish(redis, message(T0, 10.0))
            await publish(redis, message(T0 + 60_000, 11.0))
            await _until(lambda: svc.counters["order_reads"] >= 1, 5, "order never read back")
            assert time.monotonic() - t0 < 3.0
            n = await conn.fetchval("SELECT count(*) FROM trades WHERE strategy_id = 'wake'")
            assert n >= 1
    finally:
        await conn.close()
        await redis.aclose()


async def test_stop_while_idle_is_prompt(db_url: str, redis_url: str) -> None:
    async with idle_service(db_url, redis_url, idle=60.0) as (svc, task):
        await _until(lambda: svc.counters["idle_reads"] >= 1, 10, "never idle")
        await asyncio.sleep(0.5)  # every loop is in its idle wait
        t0 = time.monotonic()
        svc.stop()
        await asyncio.wait_for(asyncio.shield(task), 10)
        assert time.monotonic() - t0 < 1.0
