"""The publish task against a real Redis: the last quotes are written when ticks stop."""

from __future__ import annotations

import asyncio
import time

import pytest

from streamdesk.config import load_settings
from streamdesk.constants import last_quote_key
from streamdesk.redisutil import create_redis
from streamdesk_streamer.config import Settings
from streamdesk_streamer.streamer import Streamer

pytestmark = pytest.mark.integration

T0 = 1_764_000_000_000


def eq(sym: str, i: int) -> tuple[object, ...]:
    return (sym, T0 + i, 100.0 + i, 99.9 + i, 100.1 + i, 1000 + i, 10)


async def test_publish_loop_writes_the_last_quotes_when_ticks_stop(redis_url: str) -> None:
    redis = create_redis(redis_url)
    streamer = Streamer(load_settings(Settings, redis_url=redis_url, quote_interval=0.3), redis)
    task = asyncio.create_task(streamer.flusher.run())
    try:
        streamer.queue.put_many([eq("NVDA", 0)])
        streamer.queue.put_many([eq("NVDA", 1)])
        async with asyncio.timeout(5):
            while await redis.hget(last_quote_key("NVDA"), "ts") is None:
                await asyncio.sleep(0.01)
        # A tick after the first quote write: no tick follows it, yet its quote is written
        # within the interval by the idle publish loop.
        await asyncio.sleep(0.05)
        streamer.queue.put_many([eq("NVDA", 2)])
        started = time.monotonic()
        async with asyncio.timeout(5):
            while int(await redis.hget(last_quote_key("NVDA"), "ts") or 0) != T0 + 2:
                await asyncio.sleep(0.01)
        assert time.monotonic() - started < 0.3 + 0.25
    finally:
        streamer.flusher.stopping = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()
