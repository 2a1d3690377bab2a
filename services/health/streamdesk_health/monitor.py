"""The check loop: one round every HEALTH_CHECK_INTERVAL, a cached snapshot, alerts on change.

HTTP requests never run checks; they read the latest snapshot, so the load on Redis and
Postgres is fixed by the interval whatever the number of scrapers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.constants import HEALTH_STATE_KEY, HEALTH_SUMMARY_KEY
from streamdesk.db import close_pool, create_pool
from streamdesk.heartbeat import read_heartbeats
from streamdesk.redisutil import create_redis
from streamdesk.shutdown import log_task_exception

from . import checks, db_checks
from .alerts import Alert, AlertSender, Change
from .config import Settings
from .status import ComponentResult, Status, worst

log = logging.getLogger(__name__)

#: Fixed components besides the expected services' heartbeats.
CORE_COMPONENTS = ("redis", "postgres", "freshness", "token", "executor")


@dataclass
class Snapshot:
    """The result of one check round."""

    status: Status
    components: dict[str, ComponentResult]
    checked_at: float
    duration_s: float
    round: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /health``."""
        return {
            "status": self.status.value,
            "checked_at": datetime.fromtimestamp(self.checked_at, UTC).isoformat(),
            "duration_s": round(self.duration_s, 4),
            "components": {name: c.to_json() for name, c in self.components.items()},
        }


class HealthMonitor:
    """Runs the checks periodically, keeps the latest snapshot, emits alerts on changes."""

    def __init__(self, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock
        self.redis: aioredis.Redis = create_redis(
            settings.redis_url,
            socket_timeout=settings.health_check_timeout,
            socket_connect_timeout=min(2.0, settings.health_check_timeout),
            max_connections=4,
        )
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self.snapshot: Snapshot | None = None
        self.rounds = 0
        self.alerter: AlertSender | None = None
        if settings.health_webhook_url:
            self.alerter = AlertSender(
                settings.health_webhook_url,
                min_interval=settings.health_webhook_min_interval_s,
                timeout=settings.health_webhook_timeout_s,
                stack_url=settings.health_stack_url,
                topic=settings.health_webhook_topic,
            )
        #: What the operator was last told, per component and "overall" (persisted in Redis).
        self.alerted: dict[str, str] | None = None
        self.started = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    # ------------------------------------------------------------------ clients

    async def get_pool(self) -> asyncpg.Pool:
        """The Postgres pool, created on first use (and retried after a failed start)."""
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncio.wait_for(
                    create_pool(
                        self.settings.database_url,
                        min_size=1,
                        max_size=2,
                        command_timeout=self.settings.health_check_timeout,
                        application_name="streamdesk-health",
                        timeout=self.settings.health_check_timeout,
                    ),
                    self.settings.health_check_timeout + 1,
                )
            return self._pool

    @property
    def component_names(self) -> list[str]:
        """Every component reported, in a stable order."""
        return [*self.settings.health_expected_services, *CORE_COMPONENTS]

    # ------------------------------------------------------------------ checks

    async def _timed(
        self, name: str, fn: Callable[[], Awaitable[ComponentResult]], now: datetime
    ) -> ComponentResult:
        start = time.perf_counter()
        try:
            result = await asyncio.wait_for(fn(), self.settings.health_check_timeout)
        except TimeoutError:
            result = ComponentResult(name, Status.DOWN, "check timed out")
        except Exception as exc:  # a failing check is a finding, not a crash
            log.debug("check %s failed", name, exc_info=True)
            result = ComponentResult(name, Status.DOWN, f"check failed: {_describe(exc)}")
        result.name = name
        result.checked_at = now.timestamp()
        result.duration_s = time.perf_counter() - start
        return result

    async def run_once(self, now: datetime | None = None) -> Snapshot:
        """Run one round of every check concurrently, store the snapshot, queue alerts."""
        now = now or self.clock.now()
        start = time.perf_counter()
        heartbeats: list[dict[str, Any]] = []
        hb_error: str | None = None
        try:
            heartbeats = await asyncio.wait_for(
                read_heartbeats(self.redis), self.settings.health_check_timeout
            )
        except Exception as exc:
            hb_error = f"cannot read heartbeats: {_describe(exc)}"
        ctx = checks.CheckContext(self.settings, self.redis, self.get_pool, now, heartbeats)

        def heartbeat_fn(service: str) -> Callable[[], Awaitable[ComponentResult]]:
            async def run() -> ComponentResult:
                if hb_error is not None:
                    return ComponentResult(service, Status.DOWN, hb_error)
                if service == "streamer":
                    return await checks.streamer_result(ctx)
                return checks.heartbeat_result(ctx, service)

            return run

        async def token() -> ComponentResult:
            return checks.token_result(self.settings, ctx.now_s)

        fns: dict[str, Callable[[], Awaitable[ComponentResult]]] = {
            s: heartbeat_fn(s) for s in self.settings.health_expected_services
        }
        fns.update(
            redis=lambda: checks.redis_result(ctx),
            postgres=lambda: db_checks.postgres_result(ctx),
            freshness=lambda: db_checks.freshness_result(ctx),
            token=token,
            executor=lambda: checks.executor_result(ctx),
        )
        results = await asyncio.gather(*(self._timed(n, f, now) for n, f in fns.items()))
        components = {r.name: r for r in results}
        self.rounds += 1
        snap = Snapshot(
            status=worst([r.status for r in results]),
            components=components,
            checked_at=now.timestamp(),
            duration_s=time.perf_counter() - start,
            round=self.rounds,
        )
        self.snapshot = snap
        await self._publish_summary(snap)
        await self._track_changes(snap)
        _trim_heap()
        return snap

    async def _publish_summary(self, snap: Snapshot) -> None:
        """This round's statuses for the dashboard, expiring when rounds stop."""
        current = {name: c.status.value for name, c in snap.components.items()}
        current["overall"] = snap.status.value
        body = json.dumps({"components": current, "at": snap.checked_at})
        ttl_ms = int(max(15.0, 3 * self.settings.health_check_interval) * 1000)
        try:
            await asyncio.wait_for(
                self.redis.set(HEALTH_SUMMARY_KEY, body, px=ttl_ms),
                self.settings.health_check_timeout,
            )
        except Exception as exc:
            log.warning("could not publish the health summary: %s", _describe(exc))

    # ------------------------------------------------------------------ alerts

    async def _load_alerted(self) -> dict[str, str]:
        try:
            raw = await asyncio.wait_for(
                self.redis.get(HEALTH_STATE_KEY), self.settings.health_check_timeout
            )
            value = json.loads(raw) if raw else {}
            states = value.get("components", {}) if isinstance(value, dict) else {}
            return {str(k): str(v) for k, v in states.items()}
        except Exception as exc:
            log.warning("could not load the last alerted state: %s", _describe(exc))
            return {}

    async def _track_changes(self, snap: Snapshot) -> None:
        if self.alerted is None:
            self.alerted = await self._load_alerted()
        if time.monotonic() - self.started < self.settings.health_alert_grace_s:
            return  # services are still starting; judge them after the grace period
        current = {name: c.status.value for name, c in snap.components.items()}
        current["overall"] = snap.status.value
        changes = [
            Change(
                name,
                self.alerted.get(name, "ok"),
                status,
                snap.components[name].reason if name in snap.components else "",
            )
            for name, status in current.items()
            if self.alerted.get(name, "ok") != status
        ]
        if not changes:
            return
        previous = self.alerted.get("overall", "ok")
        self.alerted = current
        for c in changes:
            if c.component != "overall":
                log.warning(
                    "component %s: %s -> %s %s", c.component, c.previous, c.current, c.reason
                )
        if self.alerter is not None:
            alert = Alert(
                snap.status.value, previous, [c for c in changes if c.component != "overall"]
            )
            if alert.changes:
                self.alerter.notify(alert)
        try:
            body = json.dumps({"components": current, "at": snap.checked_at})
            await asyncio.wait_for(
                self.redis.set(HEALTH_STATE_KEY, body), self.settings.health_check_timeout
            )
        except Exception as exc:
            log.warning("could not persist the alerted state: %s", _describe(exc))

    # ------------------------------------------------------------------ lifecycle

    async def _loop(self) -> None:
        interval = self.settings.health_check_interval
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self.run_once()
            except Exception:
                log.exception("check round failed")
            left = interval - (time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.05, left))

    def start(self) -> None:
        """Start the check loop and the alert sender (tasks kept and awaited by :meth:`stop`)."""
        self._stop.clear()
        loop_task = asyncio.create_task(self._loop(), name="health-checks")
        loop_task.add_done_callback(log_task_exception)
        self._tasks.append(loop_task)
        if self.alerter is not None:
            sender = asyncio.create_task(self.alerter.run(), name="health-alerts")
            sender.add_done_callback(log_task_exception)
            self._tasks.append(sender)

    @property
    def running(self) -> bool:
        """True while the check loop task is alive."""
        return bool(self._tasks) and not self._tasks[0].done()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, give queued alerts a bounded chance to go out, close clients."""
        self._stop.set()
        if self._tasks:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._tasks[0]), timeout / 2)
        if self.alerter is not None:
            await self.alerter.flush(timeout / 2)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        self._tasks.clear()
        if self._pool is not None:
            await close_pool(self._pool, timeout=timeout)
            self._pool = None
        try:
            await asyncio.wait_for(self.redis.aclose(), timeout)
        except Exception as exc:
            log.debug("redis close: %s", exc)


def _load_trim() -> Callable[[int], object] | None:
    try:
        trim: Callable[[int], object] = ctypes.CDLL("libc.so.6").malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _load_trim()


def _trim_heap() -> None:
    """Return the round's freed memory to the OS (glibc); a round allocates a few MB."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
