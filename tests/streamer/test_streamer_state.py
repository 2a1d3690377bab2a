"""The state and its Redis key: no lost wake-up, and a predecessor's crash dated from its key."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from streamdesk.clock import SYSTEM_CLOCK
from streamdesk.redisutil import create_redis
from streamdesk_streamer.state import StreamerState, crash_gap

pytestmark = pytest.mark.unit


async def test_a_state_change_during_a_state_write_is_written_at_once() -> None:
    """No lost wake-up: the state key follows a change made while the previous write runs."""
    written: list[tuple[str, float]] = []

    class Probe(StreamerState):
        async def write(self) -> None:
            written.append((self.name, time.monotonic()))
            if len(written) == 1:
                await asyncio.sleep(0.05)  # the write is in flight...
                self.set("streaming")  # ...when the stream comes up

    async def nothing() -> None:
        return None

    redis = create_redis("redis://127.0.0.1:9/0")  # never connected: writes are stubbed
    state = Probe(redis, SYSTEM_CLOCK, dict, interval=5.0, ttl=60)
    task = asyncio.create_task(state.run(nothing))
    try:
        async with asyncio.timeout(1.0):  # far less than the 5 s heartbeat interval
            while len(written) < 2:
                await asyncio.sleep(0.01)
    finally:
        state.stopping = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()
    assert [state for state, _ in written[:2]] == ["starting", "streaming"]


def test_crash_gap_starts_at_the_earliest_mark_of_a_lossy_state() -> None:
    assert crash_gap(None) is None and crash_gap([]) is None
    assert crash_gap({"state": "stopped", "ts": 10.0}) is None  # a clean stop left its own gap
    assert crash_gap({"state": "idle", "ts": 10.0}) is None
    assert crash_gap({"state": "streaming"}) is None  # nothing to date it by
    found = crash_gap({"state": "streaming", "ts": 20.0, "unpublished_since": 15.0})
    assert found is not None
    reason, at = found
    assert "without a clean shutdown (state streaming)" in reason
    assert at == datetime.fromtimestamp(15.0, UTC)
    # Only while reconnecting does the state's own start count (its gap may be in memory only).
    assert crash_gap({"state": "streaming", "ts": 20.0, "since": 5.0}) == (
        "previous streamer stopped without a clean shutdown (state streaming)",
        datetime.fromtimestamp(20.0, UTC),
    )
    found = crash_gap({"state": "reconnecting", "ts": 20.0, "since": 5, "unpublished_since": None})
    assert found is not None and found[1] == datetime.fromtimestamp(5.0, UTC)
