"""Trimming against a real Redis: by age on Redis's clock, never past unacknowledged entries."""

from __future__ import annotations

import pytest
import time_machine

from streamdesk.constants import INDICATORS_GROUP, TICK_FIELD, tick_stream
from streamdesk.redisutil import create_redis
from streamdesk_streamer.trimmer import Trimmer

pytestmark = pytest.mark.integration

T0 = 1_764_000_000_000


async def test_trim_by_age_never_passes_unacknowledged_entries(redis_url: str) -> None:
    redis = create_redis(redis_url)
    try:
        trimmer = Trimmer(redis, partitions=1, retention_seconds=60)
        stream = tick_stream(0)
        # Old entries with explicit ids (ms timestamps), so age is under our control.
        old = [f"{T0 + i}-0" for i in range(10)]
        for entry_id in old:
            await redis.xadd(stream, {TICK_FIELD: b"x"}, id=entry_id)
        await redis.xgroup_create(stream, INDICATORS_GROUP, id="0")
        # The consumer reads 6 and acknowledges only the first 3.
        resp = await redis.xreadgroup(INDICATORS_GROUP, "c1", {stream: ">"}, count=6)
        ids = [i for i, _ in resp[0][1]]
        await redis.xack(stream, INDICATORS_GROUP, *ids[:3])
        now = T0 + 3_600_000  # everything is an hour old
        cutoff = await trimmer.safe_trim_id(stream, (now - 60_000, 0))
        assert cutoff == (T0 + 3, 0)  # oldest pending entry
        await redis.execute_command("XTRIM", stream, "MINID", f"{cutoff[0]}-{cutoff[1]}")
        left = [i.decode() for i, _ in await redis.xrange(stream)]
        assert left == old[3:]
        # After everything is acknowledged, entries never delivered still stay.
        await redis.xack(stream, INDICATORS_GROUP, *ids[3:])
        cutoff = await trimmer.safe_trim_id(stream, (now - 60_000, 0))
        assert cutoff == (T0 + 5, 1)  # just after last-delivered-id
        removed = await trimmer.trim_once(now_ms=now)
        remaining = [i.decode() for i, _ in await redis.xrange(stream)]
        assert set(remaining) >= set(old[6:])  # undelivered entries are kept
        assert removed == 10 - 3 - len(remaining)
    finally:
        await redis.aclose()


async def test_trim_without_group_is_by_age_only(redis_url: str) -> None:
    redis = create_redis(redis_url)
    try:
        trimmer = Trimmer(redis, partitions=2, retention_seconds=60)
        for i in range(5):
            await redis.xadd(tick_stream(0), {TICK_FIELD: b"x"}, id=f"{T0 + i * 30_000}-0")
        cutoff = await trimmer.safe_trim_id(tick_stream(0), (T0 + 70_000, 0))
        assert cutoff == (T0 + 70_000, 0)
        assert await trimmer.safe_trim_id(tick_stream(1), (T0, 0)) is None  # no stream
        await redis.execute_command("XTRIM", tick_stream(0), "MINID", f"{T0 + 70_000}-0")
        assert await redis.xlen(tick_stream(0)) == 2
    finally:
        await redis.aclose()


async def test_trim_age_is_measured_on_the_redis_clock(redis_url: str) -> None:
    """Entry ids are the Redis server's milliseconds: a streamer whose own clock is days ahead
    trims by Redis's clock, so entries younger than the retention there stay (found under
    libfaketime, which moves every process's clock but Redis's)."""
    redis = create_redis(redis_url)
    sec, usec = await redis.time()
    server_ms = int(sec) * 1000 + int(usec) // 1000
    traveller = time_machine.travel(server_ms / 1000 + 4 * 86_400, tick=True)
    traveller.start()
    try:
        trimmer = Trimmer(redis, partitions=1, retention_seconds=60)
        old, young = f"{server_ms - 120_000}-0", f"{server_ms - 10_000}-0"
        for entry_id in (old, young):
            await redis.xadd(tick_stream(0), {TICK_FIELD: b"x"}, id=entry_id)
        await trimmer.trim_once()
        left = [i.decode() for i, _ in await redis.xrange(tick_stream(0))]
        assert young in left  # younger than 60 s on Redis's clock: kept
        # ``~`` trims whole macro nodes only; exact trimming by the same cutoff removes `old`.
        cutoff = await trimmer.safe_trim_id(tick_stream(0), (server_ms - 60_000, 0))
        await redis.execute_command("XTRIM", tick_stream(0), "MINID", f"{cutoff[0]}-{cutoff[1]}")
        assert [i.decode() for i, _ in await redis.xrange(tick_stream(0))] == [young]
    finally:
        traveller.stop()
        await redis.aclose()
