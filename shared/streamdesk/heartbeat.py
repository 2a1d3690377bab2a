"""Service heartbeats: a JSON value under a TTL key, refreshed periodically.

The key is ``sd:hb:{service}:{instance}`` (see :mod:`streamdesk.constants`). Its value holds
``service``, ``instance``, ``version``, ``pid``, ``started_at``, ``uptime_s``, ``ts`` (epoch
seconds), ``status`` (``ok`` | ``degraded``), ``reason`` and ``counters``. When the process
dies the key expires after ``ttl`` seconds and the health service reports the component
``down``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis

from . import __version__
from .clock import SYSTEM_CLOCK, Clock
from .constants import HEARTBEAT_PATTERN, heartbeat_key

log = logging.getLogger(__name__)

CountersFn = Callable[[], Mapping[str, Any]]


class Heartbeat:
    """Writes a service's heartbeat every ``interval`` seconds until stopped."""

    def __init__(
        self,
        redis: aioredis.Redis,
        service: str,
        *,
        interval: float = 5.0,
        ttl: float = 15.0,
        counters: CountersFn | None = None,
        instance: str | None = None,
        version: str = __version__,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.redis = redis
        self.service = service
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self.interval = interval
        self.ttl = ttl
        self.counters = counters
        self.version = version
        self.clock = clock
        self.started = clock.time()
        self.status = "ok"
        self.reason = ""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.key = heartbeat_key(service, self.instance)

    def set_status(self, status: str, reason: str = "") -> None:
        """Report ``ok`` or ``degraded`` (with a reason) in the next beat."""
        self.status, self.reason = status, reason

    def payload(self) -> dict[str, Any]:
        """The heartbeat value as it will be written."""
        now = self.clock.time()
        return {
            "service": self.service,
            "instance": self.instance,
            "version": self.version,
            "pid": os.getpid(),
            "started_at": self.started,
            "uptime_s": round(now - self.started, 3),
            "ts": now,
            "status": self.status,
            "reason": self.reason,
            "counters": dict(self.counters()) if self.counters else {},
        }

    async def beat(self) -> None:
        """Write one heartbeat now."""
        await self.redis.set(
            self.key, json.dumps(self.payload(), default=str), px=int(self.ttl * 1000)
        )

    async def _run(self) -> None:
        # The flag as well as the cancellation: on Python 3.11 ``asyncio.wait_for`` can swallow
        # a cancel that lands as the beat completes, and the loop would then beat on forever
        # (seen as a gateway shutdown that never ended).
        while not self._stopping:
            try:
                await asyncio.wait_for(self.beat(), timeout=max(1.0, self.interval))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("heartbeat write failed: %s", exc)
            await asyncio.sleep(self.interval)

    def start(self) -> asyncio.Task[None]:
        """Start beating in a background task (returned, so the caller can await it)."""
        self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self.service}")
        return self._task

    async def stop(self, *, remove: bool = True) -> None:
        """Stop beating; by default delete the key so health sees a clean stop at once."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=2.0)
            self._task = None
        if remove:
            try:
                await asyncio.wait_for(self.redis.delete(self.key), timeout=2.0)
            except Exception as exc:
                log.debug("could not remove heartbeat key: %s", exc)


async def read_heartbeats(redis: aioredis.Redis) -> list[dict[str, Any]]:
    """All live heartbeats (expired ones are gone), parsed; unparsable ones are skipped."""
    out: list[dict[str, Any]] = []
    keys = [key async for key in redis.scan_iter(match=HEARTBEAT_PATTERN, count=200)]
    # One MGET for all of them: one round trip instead of one per service instance.
    values: list[Any] = list(await redis.mget(keys)) if keys else []
    for key, raw in zip(keys, values, strict=True):
        if raw is None:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            log.warning("unparsable heartbeat at %r", key)
            continue
        if isinstance(value, dict):
            out.append(value)
    return out
