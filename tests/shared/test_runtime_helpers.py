"""Heartbeat (real Redis), graceful shutdown (bounded drain) and logging set-up."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal

import pytest

from streamdesk.heartbeat import Heartbeat, read_heartbeats
from streamdesk.log import JsonFormatter, TextFormatter
from streamdesk.redisutil import create_redis
from streamdesk.shutdown import GracefulShutdown


@pytest.mark.integration
async def test_heartbeat_writes_counters_and_expires(redis_url: str) -> None:
    r = create_redis(redis_url)
    counters = {"ticks": 0}
    hb = Heartbeat(r, "unit-svc", interval=0.1, ttl=0.5, counters=lambda: counters, instance="i1")
    try:
        task = hb.start()
        counters["ticks"] = 42
        await asyncio.sleep(0.35)
        beats = await read_heartbeats(r)
        assert len(beats) == 1
        beat = beats[0]
        assert beat["service"] == "unit-svc" and beat["counters"]["ticks"] == 42
        assert beat["status"] == "ok" and 0 < beat["uptime_s"] < 5
        hb.set_status("degraded", "db down")
        await asyncio.sleep(0.25)
        assert (await read_heartbeats(r))[0]["reason"] == "db down"
        # A dead process stops beating: the key expires after its TTL.
        task.cancel()
        await asyncio.sleep(0.8)
        assert await read_heartbeats(r) == []
        # A clean stop removes the key at once.
        hb.start()
        await asyncio.sleep(0.15)
        await hb.stop()
        assert await r.exists(hb.key) == 0
    finally:
        await r.aclose()


@pytest.mark.unit
async def test_sigterm_requests_stop_and_drain_is_bounded() -> None:
    shutdown = GracefulShutdown(timeout=0.3)
    shutdown.install()
    os.kill(os.getpid(), signal.SIGTERM)
    assert await shutdown.wait(2.0)
    assert shutdown.requested and shutdown.signal_name == "SIGTERM"
    done: list[str] = []

    async def quick() -> None:
        done.append("quick")

    async def stuck() -> None:
        await asyncio.sleep(10)

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert not await shutdown.drain(quick, stuck, quick)
    assert loop.time() - t0 < 1.0
    assert done == ["quick"]
    loop.remove_signal_handler(signal.SIGTERM)
    loop.remove_signal_handler(signal.SIGINT)


@pytest.mark.unit
def test_json_and_text_log_lines() -> None:
    record = logging.LogRecord("streamdesk.x", logging.WARNING, __file__, 1, "lag %d", (5,), None)
    record.symbol = "AAPL"
    line = json.loads(JsonFormatter("streamer").format(record))
    assert line["msg"] == "lag 5" and line["service"] == "streamer"
    assert line["symbol"] == "AAPL" and line["level"] == "WARNING"
    text = TextFormatter().format(record)
    assert "lag 5" in text and "symbol=AAPL" in text
    assert "\n" not in JsonFormatter("s").format(record)
