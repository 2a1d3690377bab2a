"""The indicators process: its parts wired together, sessions run, stopped in order, reported.

:class:`IndicatorsService` builds the parts and runs them:

- :class:`~.leases.Leases` - one Redis lease per owned partition, renewed, released at the end;
- :class:`~.consumer.Consumer` - claims and replays pending entries, reads new ones into the
  per-partition :class:`~.engine.Engine`, under back-pressure;
- :class:`~.flusher.Flusher` - commits batches (:class:`~.writer.Writer`, one transaction,
  database retries), XACKs after COMMIT, publishes the committed message
  (:mod:`.committed`, schema in :mod:`streamdesk.messages`);
- :class:`~.compaction.CompactionTask`, the Supabase broadcast (:mod:`.broadcast`, optional)
  and the :class:`~streamdesk.heartbeat.Heartbeat` with :meth:`IndicatorsService.counters`.

A *session* owns a set of partitions (from their checkpoints) and runs the lease, read and
flush tasks until a stop, a re-balance, a lost lease or a fencing error, then everything
processed is flushed. A Redis error or a temporary database error ends only the session: the
next one rebuilds from the checkpoints after a back-off (uncommitted entries stay pending).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streamdesk import constants
from streamdesk.backoff import Backoff
from streamdesk.errors import POSTGRES_TEMPORARY, REDIS_TEMPORARY
from streamdesk.heartbeat import Heartbeat
from streamdesk.redisutil import create_redis
from streamdesk.shutdown import GracefulShutdown

from .committed import CommittedPublisher
from .compaction import CompactionTask
from .config import Settings
from .consumer import Consumer, PartitionWorker
from .flusher import Flusher
from .leases import Leases, Restart
from .sessions import SessionCalendar
from .writer import FencedError, Writer

if TYPE_CHECKING:
    from .broadcast import BroadcastPublisher

log = logging.getLogger(__name__)

SERVICE = "indicators"

#: Errors that end a session but not the process (the session is rebuilt from checkpoints):
#: any Redis error (a refused command too: the next session starts clean) and the temporary
#: database errors that escaped the flusher's retries (e.g. while loading a checkpoint).
SESSION_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    *REDIS_TEMPORARY,
    *POSTGRES_TEMPORARY,
)
#: Back-off between sessions ended by an error: first wait, s (then up to RETRY_MAX_DELAY).
SESSION_RETRY_DELAY = 1.0


class IndicatorsService:
    """Runs until ``shutdown`` is requested; see the module docstring."""

    def __init__(self, settings: Settings, shutdown: GracefulShutdown | None = None) -> None:
        self.settings = settings
        self.shutdown = shutdown or GracefulShutdown(settings.shutdown_timeout)
        self.calendar = SessionCalendar(
            settings.session_timezone,
            settings.session_open,
            settings.session_close,
            settings.market_hours,
        )
        self.redis: aioredis.Redis = create_redis(settings.redis_url)
        self.writer = Writer(settings.database_url, budget_mb=settings.storage_budget_mb)
        self.compaction = CompactionTask(
            settings.database_url,
            settings.storage_compact_interval,
            self.shutdown,
            settings.storage_compact_batch_rows,
        )
        self.heartbeat = Heartbeat(
            self.redis,
            SERVICE,
            interval=settings.heartbeat_interval,
            ttl=settings.heartbeat_ttl,
            counters=self.counters,
            instance=settings.instance_id,
        )
        self.broadcast: BroadcastPublisher | None = None  # Supabase Realtime, off by default
        if settings.broadcast_enabled:
            from .broadcast import publisher_from_settings  # httpx only when used

            self.broadcast = publisher_from_settings(settings, self.redis)
        self.leases = Leases(
            self.redis,
            settings.instance_id,
            partitions=settings.stream_partitions,
            ttl=settings.lease_ttl,
            max_partitions=settings.max_partitions,
        )
        self.consumer = Consumer(settings, self.redis, self.shutdown, self.calendar)
        self.publisher = CommittedPublisher(
            self.redis,
            maxlen=settings.committed_maxlen,
            max_options=settings.committed_max_options,
            broadcast=self.broadcast,
        )
        self.flusher = Flusher(
            settings,
            self.consumer,
            self.writer,
            self.publisher,
            self.heartbeat,
            self.shutdown,
            self.degraded_reason,
        )
        self._session_db_errors = 0
        self._session_redis_errors = 0
        self._rate_t = time.monotonic()
        self._rate_ticks = 0

    # -- what the parts count, under the names tests, bench and the heartbeat use ---------

    @property
    def workers(self) -> dict[str, PartitionWorker]:
        """The owned partitions' workers, by stream."""
        return self.consumer.workers

    @property
    def ticks(self) -> int:
        return self.consumer.ticks

    @property
    def entries(self) -> int:
        return self.consumer.entries

    @property
    def malformed(self) -> int:
        return self.consumer.malformed

    @property
    def bad_ticks(self) -> int:
        return self.consumer.bad_ticks

    @property
    def commits(self) -> int:
        return self.flusher.commits

    @property
    def rows_written(self) -> int:
        return self.flusher.rows_written

    @property
    def latencies(self) -> deque[float]:
        """Redis arrival -> COMMIT of the last 20k entries, ms."""
        return self.flusher.latencies

    @property
    def flush_latencies(self) -> deque[float]:
        return self.flusher.flush_latencies

    @property
    def db_errors(self) -> int:
        return self.flusher.db_errors + self._session_db_errors

    @property
    def redis_errors(self) -> int:
        return self.publisher.redis_errors + self._session_redis_errors

    def buffered_rows(self) -> int:
        """Rows produced but not yet committed (including a batch being committed)."""
        return self.consumer.buffered_rows()

    async def flush_once(self) -> None:
        """Take one batch from the engines and commit it (see :meth:`.Flusher.flush_once`)."""
        await self.flusher.flush_once()

    # -- observability -----------------------------------------------------------------

    @staticmethod
    def _p(values: deque[float], q: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def degraded_reason(self) -> str | None:
        """Why the heartbeat is ``degraded`` although the database answers, or None."""
        reason = self.writer.shedder.reason
        if reason is not None:
            return reason
        if self.broadcast is not None and self.broadcast.state == "auth_failed":
            return (
                f"Supabase broadcast refused ({self.broadcast.last_error}): check "
                "SUPABASE_SERVICE_ROLE_KEY; broadcasting stopped, rows still committed"
            )
        return None

    def counters(self) -> Mapping[str, Any]:
        """Heartbeat counters."""
        now = time.monotonic()
        dt = max(now - self._rate_t, 1e-6)
        rate = (self.ticks - self._rate_ticks) / dt
        self._rate_t, self._rate_ticks = now, self.ticks
        c, f = self.consumer, self.flusher
        return {
            "ticks": c.ticks,
            "ticks_per_s": round(rate, 1),
            "entries": c.entries,
            "rows_written": f.rows_written,
            "commits": f.commits,
            "last_flush_ms": round(f.last_flush_ms, 2),
            "flush_p99_ms": round(self._p(f.flush_latencies, 0.99), 2),
            "commit_latency_p99_ms": round(self._p(f.latencies, 0.99), 1),
            "buffer_rows": c.buffered_rows(),
            "pending_entries": c.pending_entries(),
            "partitions": sorted(c.partitions()),
            "malformed": c.malformed,
            "bad_ticks": c.bad_ticks,
            "lost_entries": c.lost_entries,
            "db_errors": self.db_errors,
            "redis_errors": self.redis_errors,
            "backpressure_waits": c.backpressure_waits,
            "storage_shed_level": self.writer.shedder.level,
            "storage_shed_rows": self.writer.shedder.shed_rows,
            "db_size_mb": round(self.writer.shedder.size_bytes / 2**20, 1),
            **self.compaction.counters(),
            **(self.broadcast.counters() if self.broadcast else {}),
        }

    # -- sessions ----------------------------------------------------------------------

    async def _open_partition(self, partition: int) -> None:
        stream = constants.tick_stream(partition)
        await self.consumer.ensure_group(stream)
        cp = await self.flusher.retry(
            f"loading checkpoint of {stream}",
            lambda: self.writer.load_checkpoint(stream, self.settings.instance_id),
        )
        self.consumer.add(partition, cp)

    async def _keep_leases(self) -> None:
        consumer = self.consumer
        if await self.leases.keep(consumer.partitions, lambda: consumer.done):
            consumer.rebalance = True

    async def _session(self) -> None:
        """Own partitions, process until stop/rebalance, flush what was processed."""
        self.consumer.reset()
        owned: list[int] = []
        while not owned:
            owned = await self.leases.acquire()
            if not owned and await self.shutdown.wait(self.settings.lease_ttl / 3):
                return
        for p in owned:
            await self._open_partition(p)
        try:
            async with asyncio.TaskGroup() as tg:
                lease = tg.create_task(self._keep_leases(), name="indicators-lease")
                tg.create_task(self.consumer.read_loop(), name="indicators-read")
                flusher = tg.create_task(self.flusher.run(), name="indicators-flush")
                await asyncio.wait({flusher})  # never raises; the TaskGroup reports errors
                lease.cancel()
        except* Restart as eg:
            log.warning("restarting partition ownership: %s", eg.exceptions[0])
        except* FencedError as eg:
            log.warning("fenced, rebuilding from the checkpoint: %s", eg.exceptions[0])

    async def run(self) -> int:
        """Run until shutdown; return the process exit code."""
        self.heartbeat.start()
        self.compaction.start()
        if self.broadcast is not None:
            self.broadcast.start()
        backoff = Backoff(
            min(SESSION_RETRY_DELAY, self.settings.retry_max_delay),
            max(SESSION_RETRY_DELAY, self.settings.retry_max_delay),
        )
        try:
            while not self.shutdown.requested:
                commits = self.commits
                try:
                    await self._session()
                except* SESSION_ERRORS as eg:
                    exc = eg.exceptions[0]
                    if isinstance(exc, RedisError):
                        self._session_redis_errors += 1
                    else:
                        self._session_db_errors += 1
                    self.heartbeat.set_status("degraded", f"{type(exc).__name__}: {exc}")
                    log.warning(
                        "session ended by %s: %s; uncommitted entries stay pending",
                        type(exc).__name__,
                        exc,
                    )
                    if self.commits > commits:
                        backoff.reset()  # that session worked for a while: a new outage
                    await backoff.wait(self.shutdown.event)
            return 0
        finally:
            if self.broadcast is not None:
                await self.broadcast.stop()
            await self.compaction.stop()
            await self.leases.release(self.consumer.partitions())
            await self.heartbeat.stop()
            await self.writer.close()
            await self.redis.aclose()
