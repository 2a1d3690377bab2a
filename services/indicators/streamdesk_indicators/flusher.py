"""Flushing: when to commit, the commit itself (retried while the database is down), then XACK.

A flush is due when the oldest uncommitted entry (by the time Redis accepted it) has waited
``BATCH_INTERVAL`` minus the recent commit time, clamped between half and one interval after
the previous flush, or at once when the consumer asks (``BATCH_SIZE`` rows buffered, buffer
full, reading ended). It takes one batch from the engines (:meth:`.Consumer.take_batch`),
commits it (:class:`.writer.Writer`: one transaction), acknowledges its entries (XACK only
after COMMIT) and publishes the committed message (:mod:`.committed`).

Database errors of the temporary kind (:data:`streamdesk.errors.POSTGRES_TEMPORARY`) are
retried with :class:`streamdesk.backoff.Backoff` (0.1 s doubling up to ``RETRY_MAX_DELAY``,
jittered), the heartbeat says ``degraded`` meanwhile, nothing is acknowledged; others end the
process (the data stays pending in Redis). With nothing to write, ``SELECT 1`` every
``IDLE_PROBE_INTERVAL`` keeps the reported database status true; between flushes the loop
sleeps until a flush is due, asked for, or the first entry after a flush arrives (no polling).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from streamdesk import constants
from streamdesk.backoff import Backoff
from streamdesk.errors import POSTGRES_TEMPORARY
from streamdesk.heartbeat import Heartbeat
from streamdesk.shutdown import GracefulShutdown

from .committed import CommittedPublisher
from .config import Settings
from .consumer import Consumer, parse_id
from .writer import Batch, Writer

log = logging.getLogger(__name__)

T = TypeVar("T")
#: First delay of the database retry back-off, s.
RETRY_INITIAL_DELAY = 0.1


class Flusher:
    """Commits what the consumer produced; owns the database retry policy and its counters.

    ``degraded_reason`` says why the heartbeat must stay ``degraded`` even when the database
    is fine (storage shedding, broadcast refused), or None.
    """

    def __init__(
        self,
        settings: Settings,
        consumer: Consumer,
        writer: Writer,
        publisher: CommittedPublisher,
        heartbeat: Heartbeat,
        shutdown: GracefulShutdown,
        degraded_reason: Callable[[], str | None],
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.writer = writer
        self.publisher = publisher
        self.heartbeat = heartbeat
        self.shutdown = shutdown
        self.degraded_reason = degraded_reason
        # counters
        self.commits = 0
        self.rows_written = 0
        self.db_errors = 0
        self.last_flush_ms = 0.0
        self.latencies: deque[float] = deque(maxlen=20_000)
        self.flush_latencies: deque[float] = deque(maxlen=2_000)
        self._recent_flushes: deque[float] = deque(maxlen=20)
        self.pings = 0  # idle probes (SELECT 1) that succeeded
        self._probe_interval = settings.idle_probe_interval
        #: time.monotonic() of the last database round trip that succeeded (None: none yet,
        #: or the last probe failed)
        self._db_ok_at: float | None = None

    def set_ok(self) -> None:
        """Heartbeat ok, or degraded with the reason :attr:`degraded_reason` gives."""
        reason = self.degraded_reason()
        if reason is None:
            if self.heartbeat.status != "ok":
                self.heartbeat.set_status("ok")
        else:
            self.heartbeat.set_status("degraded", reason)

    def _db_down(self, exc: BaseException) -> None:
        self.db_errors += 1
        self.heartbeat.set_status("degraded", f"database unavailable: {type(exc).__name__}")

    async def retry(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()`` (30 s bound) until it succeeds or raises a non-temporary error.

        Temporary database errors reset the connection and wait the back-off; if a stop is
        requested meanwhile the last error is raised.
        """
        backoff = Backoff(
            min(RETRY_INITIAL_DELAY, self.settings.retry_max_delay),
            self.settings.retry_max_delay,
        )
        while True:
            try:
                return await asyncio.wait_for(fn(), timeout=30.0)
            except POSTGRES_TEMPORARY as exc:
                self._db_down(exc)
                delay = backoff.cap()
                log.warning(
                    "%s failed (%s: %s); retrying within %.1fs",
                    what,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await self.writer.reset()
                if not await backoff.wait(self.shutdown.event):
                    raise

    # -- when ----------------------------------------------------------------------------

    def flush_delay(self) -> float:
        """Seconds until the next flush is due.

        Due when the oldest uncommitted entry has waited ``BATCH_INTERVAL`` minus the recent
        commit time (the longest of the last 20, capped at half an interval), so that ticks are
        committed within about ``BATCH_INTERVAL`` of their event time: its age counts from the
        earlier of the time Redis accepted it and the event time of its first tick (the way
        in, broker -> streamer -> Redis, counts against the bound too). The loop clamps it
        between half and one ``BATCH_INTERVAL`` after the previous flush started and leaves
        the reader a gap after a flush ends, so a clock skew or a backlog only makes flushes
        more frequent within those limits.
        """
        interval = self.settings.batch_interval
        oldest = self.consumer.oldest_ms()
        if oldest is None:
            return interval
        event = self.consumer.oldest_event_ms()
        if event is not None and event < oldest:
            oldest = event
        # the longest of the last 20 commits (+50 ms): one slow commit in 20 must not cost the
        # bound either
        margin = min(interval / 2, max(self._recent_flushes, default=0.0) / 1000 + 0.05)
        return (oldest + interval * 1000) / 1000 - margin - time.time()

    async def run(self) -> None:
        """Flush whenever due until the consumer is done, then flush once more and return."""
        loop = asyncio.get_running_loop()
        interval = self.settings.batch_interval
        consumer = self.consumer
        started = ended = loop.time()
        late = False
        while True:
            # The reader pauses while a commit runs: leave it a quarter interval after each
            # flush, half an interval when behind (the last batch was already older than an
            # interval, or its commit took over half of one): flushing more often would only
            # slow the catch-up.
            gap = interval / 2 if late or ended - started > interval / 2 else interval / 4
            while not consumer.flush_now.is_set() and not consumer.done:
                now = loop.time()
                delay = max(
                    min(self.flush_delay(), started + interval - now),
                    started + interval / 2 - now,
                    ended + gap - now,
                )
                if delay <= 0:
                    break
                # The due time moves only when the first entry after a flush arrives (the
                # consumer sets `arrived`) or when a flush is asked for (`flush_now`): wait for
                # either, or the due time, instead of polling.
                await self._wait_wake(delay)
            consumer.flush_now.clear()
            done = consumer.done
            started = loop.time()
            oldest = consumer.oldest_ms()
            late = oldest is not None and time.time() * 1000 - oldest > interval * 1000
            await self.flush_once()
            ended = loop.time()
            if done:
                return

    async def _wait_wake(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for ``flush_now`` or, while nothing is buffered, ``arrived``."""
        consumer = self.consumer
        waits = [consumer.flush_now.wait()]
        if consumer.oldest_ms() is None:
            # Cleared only here, with nothing buffered: the next entry's arrival sets it.
            consumer.arrived.clear()
            waits.append(consumer.arrived.wait())
        tasks = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()

    # -- one flush -----------------------------------------------------------------------

    async def flush_once(self) -> None:
        """Take one batch from the engines and commit it (retrying while the DB is down)."""
        consumer = self.consumer
        batch = consumer.take_batch()
        if batch is None:
            # Nothing to write (market closed?): a cheap probe every IDLE_PROBE_INTERVAL keeps
            # the reported DB status true while idle (a commit counts as one). After a failed
            # probe the next flush probes again, so a recovery is seen within BATCH_INTERVAL.
            now = time.monotonic()
            if self._db_ok_at is not None and now - self._db_ok_at < self._probe_interval:
                return
            try:
                await asyncio.wait_for(self.writer.ping(), timeout=5.0)
            except POSTGRES_TEMPORARY as exc:
                self._db_ok_at = None
                self._db_down(exc)
                await self.writer.reset()
            else:
                self._db_ok_at = now
                self.pings += 1
                self.set_ok()
            return
        consumer.inflight_rows = batch.rows
        try:
            t0 = time.perf_counter()
            await self.retry("commit", lambda: self._commit(batch))
            self.last_flush_ms = (time.perf_counter() - t0) * 1000
        finally:
            consumer.inflight_rows = 0
            consumer.space.set()
        self.flush_latencies.append(self.last_flush_ms)
        self._recent_flushes.append(self.last_flush_ms)
        self._db_ok_at = time.monotonic()
        self.set_ok()
        self.commits += 1
        self.rows_written += batch.rows
        if self.settings.test_crash_after_commit == self.commits:
            log.warning("test hook: crashing between COMMIT and XACK (commit %d)", self.commits)
            os.kill(os.getpid(), signal.SIGKILL)
        now_ms = int(time.time() * 1000)
        self._record_latency(batch, now_ms)
        for stream, ids in batch.acks.items():
            for i in range(0, len(ids), 1000):
                await consumer.redis.xack(stream, constants.INDICATORS_GROUP, *ids[i : i + 1000])
        await self.publisher.publish(batch, self.commits, now_ms)

    async def _commit(self, batch: Batch) -> None:
        idle = self.consumer.commit_idle
        idle.clear()  # the reader pauses: a commit is talking to the database
        try:
            await self.writer.commit(batch)
        finally:
            idle.set()

    def _record_latency(self, batch: Batch, now_ms: int) -> None:
        for ids in batch.acks.values():
            for eid in ids:
                self.latencies.append(float(now_ms - parse_id(eid)[0]))
