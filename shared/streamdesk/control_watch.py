"""Follow the control plane from a service: :class:`ControlWatcher`.

The watcher holds the latest :class:`~streamdesk.control.ControlSnapshot`. It subscribes to
:data:`~streamdesk.constants.CONTROL_CHANNEL` and re-reads Postgres when a change is
announced; between messages it polls the version every ``poll_interval`` seconds, so a lost
message (Redis down, a reconnect) delays a change by at most that. Database or Redis failures
keep the last snapshot (or none yet) and are retried; they never stop the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
import redis.asyncio as aioredis

from .constants import CONTROL_CHANNEL
from .control import ControlSnapshot, UniverseSpec, read_snapshot, read_version

log = logging.getLogger(__name__)

PoolSource = Callable[[], asyncpg.Pool | None]


class ControlWatcher:
    """Keeps :attr:`snapshot` current; :attr:`changed` is set whenever it changes."""

    def __init__(
        self,
        pool: asyncpg.Pool | PoolSource,
        redis: aioredis.Redis | None,
        *,
        defaults: UniverseSpec | None = None,
        poll_interval: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        self._pool: PoolSource = pool if callable(pool) else (lambda: pool)
        self.redis = redis
        self.defaults = defaults
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.snapshot: ControlSnapshot | None = None
        self.changed = asyncio.Event()
        self.errors = 0
        self._warned = False

    async def refresh(self) -> ControlSnapshot | None:
        """Re-read if the version moved (or nothing was read yet); return the snapshot."""
        pool = self._pool()
        if pool is None:
            return self.snapshot
        try:
            async with asyncio.timeout(self.timeout):
                known = self.snapshot
                if known is not None and await read_version(pool) == known.version:
                    return known
                snap = await read_snapshot(pool, defaults=self.defaults)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            self.errors += 1
            if not self._warned:
                self._warned = True
                log.warning("control plane unreadable (%s); keeping the last state", exc)
            return self.snapshot
        self._warned = False
        if snap != self.snapshot:
            self.snapshot = snap
            self.changed.set()
        return snap

    async def run(self) -> None:
        """Follow changes until cancelled."""
        while True:
            await self.refresh()
            if self.redis is None:
                await asyncio.sleep(self.poll_interval)
                continue
            try:
                await self._listen(self.redis)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: poll until it is back
                self.errors += 1
                log.debug("control channel unavailable: %s", exc)
                await asyncio.sleep(self.poll_interval)

    async def _listen(self, redis: aioredis.Redis) -> None:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await asyncio.wait_for(pubsub.subscribe(CONTROL_CHANNEL), self.timeout)
            await self.refresh()  # a change announced before we subscribed
            while True:
                # get_message's own timeout bounds the wait; wait_for guards a stuck socket.
                await asyncio.wait_for(
                    pubsub.get_message(timeout=self.poll_interval), self.poll_interval + 5
                )
                await self.refresh()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 2.0)  # type: ignore[no-untyped-call]
