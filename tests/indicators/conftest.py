"""Helpers for the indicators tests: settings, producing ticks, running the service, dumps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from streamdesk import constants
from streamdesk.codec import encode_ticks
from streamdesk.config import load_settings
from streamdesk.models import EquityTick, OptionTick
from streamdesk_indicators.config import Settings
from streamdesk_indicators.runner import IndicatorsService

SettingsFactory = Callable[..., Settings]
TABLES = {
    "equity_data": 'SELECT ticker, "timestamp", price, volume, bid, ask, cum_volume '
    "FROM equity_data ORDER BY 1, 2",
    "indicators": 'SELECT ticker, "timestamp", sma9, vwap, ema9 FROM indicators ORDER BY 1, 2',
    "option_prices": "SELECT * FROM option_prices ORDER BY 1, 2",
    "bars_1m": "SELECT * FROM bars_1m ORDER BY 1, 2",
}


@pytest.fixture
def make_settings(db_url: str, redis_url: str, tmp_path: Path) -> SettingsFactory:
    """Settings on this test's real servers; kwargs override (never os.environ)."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "database_url": db_url,
            "redis_url": redis_url,
            "stream_partitions": 2,
            "batch_interval": 0.2,
            "heartbeat_interval": 0.2,
            "instance_id": "test-indicators",
            "shutdown_timeout": 10.0,
            "log_format": "text",
        }
        base.update(overrides)
        return load_settings(Settings, **base)

    return make


async def produce(
    redis_url: str, ticks: Sequence[EquityTick | OptionTick], partitions: int, per_entry: int = 50
) -> int:
    """XADD ``ticks`` in stream order, ``per_entry`` per entry and partition; entries added."""
    r = aioredis.Redis.from_url(redis_url)
    pending: dict[int, tuple[list[EquityTick], list[OptionTick]]] = {}
    added = 0
    try:
        async with r.pipeline(transaction=False) as pipe:
            for t in ticks:
                sym = t.underlying if isinstance(t, OptionTick) else t.symbol
                p = constants.partition_for(sym, partitions)
                eq, op = pending.setdefault(p, ([], []))
                (op if isinstance(t, OptionTick) else eq).append(t)  # type: ignore[arg-type]
                if len(eq) + len(op) >= per_entry:
                    pipe.xadd(
                        constants.tick_stream(p), {constants.TICK_FIELD: encode_ticks(eq, op)}
                    )
                    pending[p] = ([], [])
                    added += 1
                    if len(pipe) >= 500:
                        await pipe.execute()
            for p, (eq, op) in pending.items():
                if eq or op:
                    pipe.xadd(
                        constants.tick_stream(p), {constants.TICK_FIELD: encode_ticks(eq, op)}
                    )
                    added += 1
            await pipe.execute()
    finally:
        await r.aclose()
    return added


async def drained(redis_url: str, partitions: int) -> bool:
    """Every tick stream fully delivered to the group and acknowledged."""
    r = aioredis.Redis.from_url(redis_url)
    try:
        for p in range(partitions):
            stream = constants.tick_stream(p)
            if not await r.exists(stream):
                continue
            groups = await r.xinfo_groups(stream)
            g = next((g for g in groups if g["name"] == constants.INDICATORS_GROUP.encode()), None)
            if g is None or g["pending"] != 0 or g["lag"] != 0:
                return False
        return True
    finally:
        await r.aclose()


async def wait_drained(redis_url: str, partitions: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await drained(redis_url, partitions):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"streams not drained within {timeout}s")


async def run_service_until_drained(settings: Settings, timeout: float = 60.0) -> IndicatorsService:
    """Run the service in-process until the streams are drained, then stop it gracefully."""
    service = IndicatorsService(settings)
    task = asyncio.create_task(service.run())
    try:
        await asyncio.sleep(0.3)
        deadline = time.monotonic() + timeout
        while not await drained(settings.redis_url, settings.stream_partitions):
            if task.done():
                task.result()
                raise AssertionError("service stopped early")
            if time.monotonic() > deadline:
                raise AssertionError("streams not drained in time")
            await asyncio.sleep(0.1)
        service.shutdown.request("test")
        assert await asyncio.wait_for(task, 15.0) == 0
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=5)
    return service


async def dump_tables(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """All output tables, ordered, as tuples."""
    conn = await asyncpg.connect(dsn)
    try:
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in TABLES.items()}
    finally:
        await conn.close()
