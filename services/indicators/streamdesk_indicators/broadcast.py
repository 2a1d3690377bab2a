"""Supabase Realtime Broadcast of the committed messages: one REST call per writer flush.

Request (supabase-js ``RealtimeChannel.httpSend``; supabase/realtime ``BroadcastController``):
``POST <SUPABASE_URL>/realtime/v1/api/broadcast`` with ``apikey: <key>``, ``Authorization:
Bearer <key>``, ``Content-Type: application/json`` and the body ``{"messages": [{"topic":
"streamdesk:market", "event": "flush", "payload": {...}, "private": true}]}``; Supabase
answers ``202 Accepted`` with an empty body (403/401 bad key, 422 bad body, 429 rate limit).

The writer never waits for it: :meth:`BroadcastPublisher.offer` puts the message in a slot of
one (a newer message replaces a waiting one: conflation, counted) and returns. A task of its
own takes the slot, shapes the payload (:mod:`.broadcast_payload`, degrade level from
:mod:`.degrade`), checks the 256 KB payload limit (trims option rows, counted) and POSTs it
over one reused connection. Temporary errors (``streamdesk.errors``: timeouts, transport
errors, ``TEMPORARY_HTTP_STATUS``) are retried with ``streamdesk.backoff.Backoff`` (or the
server's ``Retry-After``); the rows of a failed payload are merged back under newer
ones, so nothing queues beyond one message per ticker and contract. 401/403 is operational:
logged once at ERROR, counted, broadcasting stops and the writer runs on. After each accepted
broadcast the month's usage is added to Redis (``sd:realtime:usage:YYYY-MM``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr

from streamdesk import constants
from streamdesk.backoff import Backoff
from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.errors import HTTP_ERRORS, REDIS_ERRORS, TEMPORARY_HTTP_STATUS
from streamdesk.messages import decode_committed
from streamdesk.realtime_budget import (
    EVENT,
    FREE_PLAN,
    TOPIC,
    Usage,
    level,
    month_key,
    streamed_seconds_per_month,
)

from .broadcast_payload import Shaper, fit
from .config import Settings
from .degrade import DegradeController

log = logging.getLogger(__name__)

PATH = "/realtime/v1/api/broadcast"
#: Refused credentials: operational (a person must fix the key), never retried.
AUTH_STATUS = frozenset({401, 403})
#: Keep a month's usage hash a little longer than the month.
USAGE_TTL_S = 40 * 86_400


class BroadcastPublisher:
    """See the module docstring. ``start`` once, ``offer`` per commit, ``stop`` at the end."""

    def __init__(
        self,
        *,
        url: str,
        key: SecretStr,
        redis: aioredis.Redis,
        controller: DegradeController,
        max_options: int = 500,
        timeout: float = 5.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        check_interval: float = 60.0,
        payload_limit: int = FREE_PLAN.payload_bytes,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.endpoint = url.rstrip("/") + PATH
        self._key = key
        self.redis = redis
        self.controller = controller
        self.shaper = Shaper(max_options)
        self.timeout = timeout
        self.retry_max = retry_max
        self.check_interval = check_interval
        self.payload_limit = payload_limit
        self.clock = clock
        self._slot: bytes | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._next_check = 0.0
        self._retry_at = 0.0
        self._backoff = Backoff(retry_initial, retry_max)
        self._usage_pending = [0, 0]  # broadcasts, bytes not yet added to Redis
        self.state = "starting"
        self.last_error = ""
        self.last_status = 0
        self.month_broadcasts = 0
        self.sent = self.failed = self.retries = self.dropped = 0
        self.conflated = self.bytes = self.trimmed = self.auth_failures = 0
        self.redis_errors = 0

    # -- the writer's side -------------------------------------------------------------

    def offer(self, msg: bytes) -> None:
        """Hand over one committed message; never blocks (a waiting one is replaced)."""
        if self.state == "auth_failed":
            return
        if self._slot is not None:
            self.conflated += 1
        self._slot = msg
        self._wake.set()

    def counters(self) -> dict[str, Any]:
        """Heartbeat counters (``broadcast_*``)."""
        return {
            "broadcast_state": self.state,
            "broadcast_degrade": self.controller.level,
            "broadcast_degrade_reason": self.controller.reason,
            "broadcast_sent": self.sent,
            "broadcast_failed": self.failed,
            "broadcast_retries": self.retries,
            "broadcast_dropped": self.dropped,
            "broadcast_conflated": self.conflated,
            "broadcast_bytes": self.bytes,
            "broadcast_trimmed": self.trimmed,
            "broadcast_auth_failures": self.auth_failures,
            "broadcast_last_status": self.last_status,
            "broadcast_last_error": self.last_error,
            "broadcast_month_sent": self.month_broadcasts,
        }

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the sending task (its failure is logged; the writer is never affected)."""
        lvl = self.controller.level
        log.log(
            logging.WARNING if lvl else logging.INFO,
            "broadcasting committed updates to %s (topic %s), degrade level %d: %s",
            self.endpoint,
            TOPIC,
            lvl,
            self.controller.reason,
        )
        self._task = asyncio.create_task(self._run(), name="indicators-broadcast")
        self._task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.state = "crashed"
            log.error("broadcast task failed; broadcasting stopped", exc_info=task.exception())

    async def stop(self, timeout: float = 2.0) -> None:
        """Send what is due (bounded by ``timeout``), then end the task."""
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        if not done:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=1.0)

    # -- the sending task --------------------------------------------------------------

    async def _run(self) -> None:
        headers = {
            "apikey": self._key.get_secret_value(),
            "Authorization": f"Bearer {self._key.get_secret_value()}",
            "Content-Type": "application/json",
        }
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            headers=headers, timeout=self.timeout, limits=limits, follow_redirects=False
        ) as client:
            self.state = "ok"
            while True:
                stopping = self._stopping
                if not stopping:
                    timeout = self.check_interval
                    if self._retry_at:  # a failed payload waits for the end of its back-off
                        timeout = min(timeout, max(0.0, self._retry_at - time.monotonic()))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                self._wake.clear()
                self._take_slot()  # during a back-off: merged into what will be retried
                await self._maybe_check_budget()
                if not stopping and time.monotonic() < self._retry_at:
                    continue
                step = level(self.controller.level)
                if self.shaper.due(step):
                    await self._send(client, self.shaper.take(step))
                if stopping or self.state == "auth_failed":
                    self._slot = None
                    return

    def _take_slot(self) -> None:
        raw, self._slot = self._slot, None
        if raw is None:
            return
        try:
            msg = decode_committed(raw)
        except ValueError as exc:  # never happens with committed_message; keep going
            self.dropped += 1
            log.warning("committed message is not of the v1 schema (%s); not broadcast", exc)
            return
        self.shaper.add(msg)

    async def _send(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
        try:
            data, trimmed = fit(payload, self.payload_limit)
        except ValueError as exc:
            self.dropped += 1
            self.last_error = str(exc)
            log.warning("broadcast payload dropped: %s", exc)
            return
        if trimmed:
            self.trimmed += trimmed
            log.warning(
                "broadcast payload over %d bytes: %d rows trimmed", self.payload_limit, trimmed
            )
        body = (
            b'{"messages":[{"topic":"'
            + TOPIC.encode()
            + b'","event":"'
            + EVENT.encode()
            + b'","payload":'
            + data
            + b',"private":true}]}'
        )
        retry_after: float | None = None
        try:
            resp = await client.post(self.endpoint, content=body)
        except HTTP_ERRORS as exc:  # transport errors and timeouts: temporary
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            self.last_status = resp.status_code
            if 200 <= resp.status_code < 300:
                self._accepted(payload, len(data))
                await self._record_usage()
                return
            if resp.status_code in AUTH_STATUS:
                self._auth_failed(resp)
                return
            if resp.status_code not in TEMPORARY_HTTP_STATUS:
                self.dropped += 1
                self.last_error = f"HTTP {resp.status_code}: {resp.text[:200]}"
                log.warning("Supabase refused a broadcast (%s); payload dropped", self.last_error)
                return
            error = f"HTTP {resp.status_code}"
            retry_after = _retry_after(resp.headers.get("retry-after"))
        self._temporary(payload, error, retry_after)

    def _accepted(self, payload: dict[str, Any], size: int) -> None:
        if self.state == "retrying":
            log.info("broadcast recovered after %d failed attempt(s)", self.failed)
        self.state = "ok"
        self.sent += 1
        self.bytes += size
        self._backoff.reset()
        self._retry_at = 0.0
        self._usage_pending[0] += 1
        self._usage_pending[1] += size
        self.controller.observe(payload["degrade"], payload["options_included"], size)

    def _auth_failed(self, resp: httpx.Response) -> None:
        self.auth_failures += 1
        self.state = "auth_failed"
        self.last_error = f"HTTP {resp.status_code} {resp.reason_phrase}"
        log.error(
            "Supabase answered %s to the Realtime broadcast: SUPABASE_SERVICE_ROLE_KEY is wrong "
            "or lacks the service role (use the project's service_role / secret key). "
            "Broadcasting is stopped until a restart; the writer keeps committing.",
            self.last_error,
        )

    def _temporary(self, payload: dict[str, Any], error: str, retry_after: float | None) -> None:
        self.failed += 1
        self.last_error = error
        if self.state != "retrying":
            log.warning("broadcast failed (%s); retrying with back-off", error)
        self.state = "retrying"
        self.shaper.restore(payload)
        delay = self._backoff.next_delay()  # counted even when the server says how long
        if retry_after is not None:
            delay = min(self.retry_max, retry_after)
        self._retry_at = time.monotonic() + delay
        self.retries += 1

    # -- usage and budget ---------------------------------------------------------------

    async def _record_usage(self) -> None:
        """Add the accepted broadcasts to this month's usage (kept for later if Redis fails)."""
        n, size = self._usage_pending
        if not n:
            return
        self._usage_pending = [0, 0]
        key = constants.realtime_usage_key(month_key(self.clock.now()))
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(key, "broadcasts", n)
                pipe.hincrby(key, "bytes", size)
                pipe.expire(key, USAGE_TTL_S)
                res = await asyncio.wait_for(pipe.execute(), timeout=2.0)
            self.month_broadcasts = int(res[0])
        except REDIS_ERRORS as exc:
            self.redis_errors += 1
            self._usage_pending[0] += n  # added with the next one
            self._usage_pending[1] += size
            log.debug("could not record Realtime usage: %s", exc)

    async def _maybe_check_budget(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.check_interval
        usage = await read_usage(self.redis, self.clock)
        if usage is None:
            self.redis_errors += 1
        else:
            self.month_broadcasts = usage.broadcasts
        self.controller.evaluate(usage, self.clock.now())


def publisher_from_settings(
    settings: Settings, redis: aioredis.Redis, clock: Clock = SYSTEM_CLOCK
) -> BroadcastPublisher | None:
    """The publisher the settings ask for, or None (``SUPABASE_BROADCAST``, URL and key)."""
    if not settings.broadcast_enabled:
        return None
    from .reference_universe import reference_sizes  # imports the committed-message builder

    assert settings.supabase_url and settings.supabase_service_role_key  # broadcast_enabled
    controller = DegradeController(
        reference_sizes(max_options=settings.committed_max_options),
        receivers=settings.supabase_dashboards,
        seconds_per_month=streamed_seconds_per_month(settings.market_hours),
        flush_interval=settings.batch_interval,
        pinned=settings.pinned_degrade,
        hours_label=f"MARKET_HOURS={settings.market_hours.value}",
    )
    return BroadcastPublisher(
        url=settings.supabase_url,
        key=settings.supabase_service_role_key,
        redis=redis,
        controller=controller,
        max_options=settings.committed_max_options,
        timeout=settings.supabase_broadcast_timeout,
        clock=clock,
    )


async def read_usage(redis: aioredis.Redis, clock: Clock = SYSTEM_CLOCK) -> Usage | None:
    """This month's usage from Redis, or None if Redis does not answer within 2 s."""
    key = constants.realtime_usage_key(month_key(clock.now()))
    try:
        raw = await asyncio.wait_for(redis.hmget(key, ["broadcasts", "bytes"]), timeout=2.0)
    except REDIS_ERRORS as exc:
        log.warning("could not read Realtime usage from Redis: %s", exc)
        return None
    return Usage(int(raw[0] or 0), int(raw[1] or 0))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
