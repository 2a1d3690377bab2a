"""Idle behaviour of the indicators service (market closed), against real Redis and Postgres.

With nothing flowing the service must be cheap (no database probe more often than
IDLE_PROBE_INTERVAL, one XREADGROUP per IDLE_READ_BLOCK_MS instead of one per READ_BLOCK_MS)
and still as fast as before the moment data arrives, and it must stop promptly in the middle
of its long idle read.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from streamdesk import constants
from streamdesk.codec import encode_ticks
from streamdesk.models import EquityTick
from streamdesk_indicators.config import Settings
from streamdesk_indicators.runner import IndicatorsService

pytestmark = pytest.mark.integration

# A fixed event time (a Tuesday, regular session): the engine's output does not depend on when
# the test runs; only durations measured around it do.
TICK_TS = int(datetime(2026, 3, 10, 15, 0, tzinfo=UTC).timestamp() * 1000)


def _settings(make_settings: Callable[..., Settings], **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "stream_partitions": 2,
        "storage_compact_interval": 0,  # only the flusher talks to the database
        "market_hours": "always",
    }
    base.update(kw)
    return make_settings(**base)


async def _start(settings: Settings) -> tuple[IndicatorsService, asyncio.Task[int]]:
    service = IndicatorsService(settings)
    task = asyncio.create_task(service.run())
    deadline = time.monotonic() + 20
    while len(service.consumer.partitions()) < settings.stream_partitions:
        if task.done():
            task.result()
        assert time.monotonic() < deadline, "partitions not owned in time"
        await asyncio.sleep(0.05)
    return service, task


async def _stop(service: IndicatorsService, task: asyncio.Task[int]) -> float:
    """Request a stop; seconds until run() returned."""
    t0 = time.monotonic()
    service.shutdown.request("test")
    try:
        assert await asyncio.wait_for(task, 20.0) == 0
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=5)
    return time.monotonic() - t0


def _count_pings(service: IndicatorsService) -> list[float]:
    """Instrument the writer's probe (still a real SELECT 1): monotonic time of each call."""
    calls: list[float] = []
    ping = service.writer.ping

    async def counted() -> None:
        calls.append(time.monotonic())
        await ping()

    service.writer.ping = counted  # type: ignore[method-assign]
    return calls


async def _xreadgroup_calls(r: aioredis.Redis) -> int:
    stats = await r.info("commandstats")
    return int(stats.get("cmdstat_xreadgroup", {}).get("calls", 0))


async def test_idle_flusher_probes_the_database_only_every_idle_probe_interval(
    make_settings: Callable[..., Settings],
) -> None:
    settings = _settings(
        make_settings, batch_interval=0.1, idle_probe_interval=1.0, idle_read_block_ms=1000
    )
    service, task = await _start(settings)
    pings = _count_pings(service)
    r = aioredis.Redis.from_url(settings.redis_url)
    try:
        await asyncio.sleep(0.5)  # past the start-up reads
        reads0 = await _xreadgroup_calls(r)
        t0 = time.monotonic()
        await asyncio.sleep(4.0)
        reads = await _xreadgroup_calls(r) - reads0
        elapsed = time.monotonic() - t0
        # Every BATCH_INTERVAL (0.1 s) before: ~40 probes. Now at most one per second.
        assert 2 <= len(pings) <= elapsed / settings.idle_probe_interval + 1, pings
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert all(g >= settings.idle_probe_interval - 0.05 for g in gaps), gaps
        # One blocking read per IDLE_READ_BLOCK_MS (1 s), not one per READ_BLOCK_MS (0.1 s).
        assert reads <= elapsed + 2, reads
        assert service.heartbeat.status == "ok"
        assert service.commits == 0
    finally:
        await r.aclose()
        await _stop(service, task)


async def test_tick_after_a_long_idle_is_committed_within_batch_interval(
    make_settings: Callable[..., Settings],
) -> None:
    # Idle periods far longer than the batch interval: a reader or a flusher that slept
    # through them would miss the bound by seconds.
    settings = _settings(
        make_settings, batch_interval=1.0, idle_probe_interval=30.0, idle_read_block_ms=8000
    )
    service, task = await _start(settings)
    r = aioredis.Redis.from_url(settings.redis_url)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await asyncio.sleep(3.0)  # well into the idle read and the idle flusher wait
        assert service.commits == 0
        tick = EquityTick("SPY", TICK_TS, 500.0, 499.9, 500.1, 1000, 100)
        p = constants.partition_for("SPY", settings.stream_partitions)
        await r.xadd(constants.tick_stream(p), {constants.TICK_FIELD: encode_ticks([tick], [])})
        deadline = time.monotonic() + 5
        while service.commits == 0:
            assert time.monotonic() < deadline, "the tick was never committed"
            await asyncio.sleep(0.01)
        latency_ms = service.latencies[-1]  # Redis' arrival time (entry id) -> COMMIT
        # The bench's bound: BATCH_INTERVAL + 0.25 s (the flush aims at BATCH_INTERVAL minus
        # the recent commit time; the rest is slack for this shared, niced machine).
        assert latency_ms <= settings.batch_interval * 1000 + 250, latency_ms
        row = await conn.fetchrow(
            'SELECT price FROM equity_data WHERE ticker = $1 AND "timestamp" = $2',
            "SPY",
            datetime.fromtimestamp(TICK_TS / 1000, UTC),
        )
        assert row is not None and row["price"] == 500.0
    finally:
        await conn.close()
        await r.aclose()
        await _stop(service, task)


async def test_stop_during_the_long_idle_read_is_prompt(
    make_settings: Callable[..., Settings],
) -> None:
    settings = _settings(make_settings, batch_interval=0.2, idle_read_block_ms=8000)
    service, task = await _start(settings)
    await asyncio.sleep(1.5)  # the reader is blocked in an 8 s XREADGROUP
    assert not service.consumer.done
    took = await _stop(service, task)
    assert took < 2.0, took
