"""The streamer's state (``connecting``, ``streaming``, ...) and its Redis key.

:class:`StreamerState` holds the current state with when and why it was entered, and keeps
``constants.STREAMER_STATE_KEY`` up to date: rewritten every heartbeat interval (the key has a
TTL) and at once after every change. The key is also read back once at start-up
(:func:`read_previous`): a predecessor killed without its clean stop (``kill -9``, OOM) left it
in ``subscribed``, ``streaming`` or ``reconnecting``, and :func:`crash_gap` turns that into the
start of the gap its death caused.

States: ``starting``, ``connecting``, ``subscribed``, ``streaming``, ``reconnecting``,
``paused``, ``idle``, ``auth_expired``, ``stopped`` (docs/streamer.md, Redis contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from streamdesk.clock import Clock
from streamdesk.constants import STREAMER_STATE_KEY

log = logging.getLogger(__name__)

#: States in which a predecessor that left no open gap may have lost ticks.
_LOSSY_STATES = ("subscribed", "streaming", "reconnecting")


class StreamerState:
    """The current state and the writer of its Redis key.

    ``payload`` builds the whole JSON document (it includes other parts' figures: symbols,
    open gap, unpublished ticks); ``on_change`` is called after every change (the entry
    point updates the heartbeat status with it).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        clock: Clock,
        payload: Callable[[], dict[str, Any]],
        *,
        interval: float,
        ttl: int,
    ) -> None:
        self.redis = redis
        self.clock = clock
        self.payload = payload
        self.interval = interval
        self.ttl = ttl
        self.name = "starting"
        self.since = clock.time()
        self.reason = ""
        self.on_change: Callable[[], None] | None = None
        #: Set when stopping: the writer loop ends on its own (cancellation of a ``wait_for``
        #: can be swallowed in Python 3.11 when the inner wait completes at once).
        self.stopping = False
        self._dirty = asyncio.Event()
        self._warned_at = 0.0

    def set(self, name: str, reason: str = "") -> None:
        """Enter state ``name`` (no-op if neither it nor the reason changes)."""
        if name != self.name or reason != self.reason:
            log.info("streamer state %s -> %s %s", self.name, name, reason)
            self.name = name
            self.since = self.clock.time()
            self.reason = reason
            self._dirty.set()
            if self.on_change is not None:
                self.on_change()

    def changed(self) -> None:
        """Something else in the payload changed: write the key now, not at the next round."""
        self._dirty.set()

    async def run(self, every_round: Callable[[], Awaitable[None]]) -> None:
        """Write the key every ``interval`` and after every change; then ``every_round``."""
        while not self.stopping:
            # Cleared before the write: a change made while the write is in flight sets it
            # again and is written at once, not one heartbeat interval later.
            self._dirty.clear()
            await self.write()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._dirty.wait()
            await every_round()

    async def write(self) -> None:
        """Write the key once (bounded; a failure is logged at most once a minute)."""
        try:
            await asyncio.wait_for(
                self.redis.set(STREAMER_STATE_KEY, json.dumps(self.payload()), ex=self.ttl), 5.0
            )
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("could not write streamer state: %s", exc)


async def read_previous(redis: aioredis.Redis) -> Any:
    """The state key as the previous streamer left it (parsed JSON), or None.

    Retried for up to 10 s: Redis may be restarting too (nothing flows meanwhile anyway).
    """
    deadline = time.monotonic() + 10.0
    while True:
        try:
            raw = await asyncio.wait_for(redis.get(STREAMER_STATE_KEY), 5.0)
            return json.loads(raw) if raw else None
        except (aioredis.RedisError, OSError, TimeoutError, ValueError) as exc:
            if time.monotonic() > deadline or isinstance(exc, ValueError):
                log.warning("could not read the previous streamer state: %s", exc)
                return None
            await asyncio.sleep(0.5)


def crash_gap(prev: Any) -> tuple[str, datetime] | None:
    """The gap a predecessor's unclean death caused: its reason and start, or None.

    A clean stop leaves an open gap (adopted instead); a crash leaves none, yet the ticks it
    had received but not published and the frames in flight are lost. Its last state key
    dates the loss: no tick it lost arrived before the earlier of its last state write and
    its oldest unpublished tick. (If the key expired, the outage is not recorded.)
    """
    state = prev.get("state") if isinstance(prev, dict) else None
    if not isinstance(prev, dict) or state not in _LOSSY_STATES:
        return None
    marks = [prev.get("ts"), prev.get("unpublished_since")]
    if state == "reconnecting":  # its gap may have been only in memory (database down)
        marks.append(prev.get("since"))
    times = [float(m) for m in marks if isinstance(m, int | float)]
    if not times:
        return None
    return (
        f"previous streamer stopped without a clean shutdown (state {state})",
        datetime.fromtimestamp(min(times), UTC),
    )
