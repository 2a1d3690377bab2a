"""The real indicators service (real Redis, real PostgreSQL) broadcasting to a local receiver.

The receiver is the Supabase stand-in of test_broadcast_http.py (a real HTTP server on
127.0.0.1 answering 202, or slowly).
"""

from __future__ import annotations

import asyncio
import heapq
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import redis.asyncio as aioredis
from conftest import SettingsFactory, produce, wait_drained
from ind_ticksim import et_ms, option_ticks, session_ticks
from test_broadcast_http import KEY, Receiver

from streamdesk import constants
from streamdesk_indicators.config import Settings
from streamdesk_indicators.runner import IndicatorsService

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _broadcast_settings(make_settings: SettingsFactory, url: str, **kw: Any) -> Settings:
    return make_settings(
        supabase_url=url,
        supabase_service_role_key=KEY,
        supabase_broadcast="on",
        supabase_degrade="0",
        **kw,
    )


def _ticks(minutes: int, start_minute: int = 0) -> list[Any]:
    t0 = et_ms(DAY, 10, start_minute)
    eq = session_ticks(["SPY", "QQQ"], t0, t0 + minutes * 60_000, seed=7, rate=2.0)
    return list(heapq.merge(eq, option_ticks("SPY", eq[0].ts, eq[-1].ts), key=lambda t: t.ts))


async def test_service_broadcasts_each_flush_with_the_committed_rows(
    receiver: Receiver, make_settings: SettingsFactory
) -> None:
    settings = _broadcast_settings(make_settings, receiver.url)
    service = IndicatorsService(settings)
    assert service.broadcast is not None
    task = asyncio.create_task(service.run())
    try:
        for wave in range(4):  # a few flushes (BATCH_INTERVAL 0.2 s)
            await produce(settings.redis_url, _ticks(1, wave), settings.stream_partitions)
            await asyncio.sleep(0.35)
        await wait_drained(settings.redis_url, settings.stream_partitions, 30.0)
        await asyncio.sleep(0.3)
        service.shutdown.request("test")
        assert await asyncio.wait_for(task, 15.0) == 0
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=5)
    r = aioredis.Redis.from_url(settings.redis_url)
    try:
        committed = {
            json.loads(m[b"d"])["seq"]: json.loads(m[b"d"])
            for _, m in await r.xrange(constants.COMMITTED_STREAM)
        }
    finally:
        await r.aclose()
    payloads = receiver.payloads()
    pub = service.broadcast
    assert service.commits >= 4 and len(committed) == service.commits
    assert pub.sent == len(payloads) >= 1 and pub.failed == 0
    # every flush is in exactly one broadcast (alone, or merged after a conflation)
    assert sum(p["flushes"] for p in payloads) == service.commits
    assert pub.sent + pub.conflated == service.commits
    for p in payloads:
        body = dict(p)
        assert body.pop("degrade") == 0 and body.pop("options_included") is True
        if body.pop("flushes") == 1:
            assert body == committed[body["seq"]]
    sent_rows = {(e["ticker"], e["ts"]) for p in payloads for e in p["equity"]}
    assert {"SPY", "QQQ"} <= {t for t, _ in sent_rows}
    assert any(p["options"] for p in payloads)
    counters = service.counters()
    assert counters["broadcast_sent"] == pub.sent and counters["broadcast_state"] == "ok"


async def test_slow_supabase_does_not_slow_the_writer(
    receiver: Receiver, make_settings: SettingsFactory
) -> None:
    receiver.default = (202, 2.0, {})
    settings = _broadcast_settings(make_settings, receiver.url, batch_interval=0.1)
    service = IndicatorsService(settings)
    task = asyncio.create_task(service.run())
    loop = asyncio.get_running_loop()
    try:
        await asyncio.sleep(0.3)
        start, t0 = service.commits, loop.time()
        minute = 0
        while loop.time() - t0 < 2.0:  # ticks keep arriving for 2 s
            await produce(settings.redis_url, _ticks(1, minute % 50), settings.stream_partitions)
            minute += 1
            await asyncio.sleep(0.05)
        commits = service.commits - start
        service.shutdown.request("test")
        assert await asyncio.wait_for(task, 15.0) == 0
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=5)
    # a writer waiting for Supabase would have committed about once per 2 s answer
    assert commits >= 8, commits
    assert service.broadcast is not None and service.broadcast.conflated >= 5
    assert len(receiver.requests) <= 3


async def test_refused_key_makes_the_heartbeat_degraded_and_say_why(
    receiver: Receiver, make_settings: SettingsFactory
) -> None:
    receiver.default = (401, 0.0, {})
    settings = _broadcast_settings(make_settings, receiver.url)
    service = IndicatorsService(settings)
    task = asyncio.create_task(service.run())
    loop = asyncio.get_running_loop()
    try:
        await produce(settings.redis_url, _ticks(1), settings.stream_partitions)
        deadline = loop.time() + 15.0
        while "SUPABASE_SERVICE_ROLE_KEY" not in service.heartbeat.reason:
            assert loop.time() < deadline, (service.heartbeat.status, service.commits)
            await asyncio.sleep(0.05)
        commits = service.commits
        await produce(settings.redis_url, _ticks(1, 1), settings.stream_partitions)
        await wait_drained(settings.redis_url, settings.stream_partitions, 30.0)
        while service.commits == commits:
            assert loop.time() < deadline + 15.0
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a flush or probe after the commit sets the status again
        service.shutdown.request("test")
        assert await asyncio.wait_for(task, 15.0) == 0
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=5)
    assert service.broadcast is not None and service.broadcast.state == "auth_failed"
    assert service.heartbeat.status == "degraded"
    assert "SUPABASE_SERVICE_ROLE_KEY" in service.heartbeat.reason
    assert "401" in service.heartbeat.reason and KEY not in service.heartbeat.reason
    assert service.commits > commits  # the writer keeps committing
