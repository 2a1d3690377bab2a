"""The indicators service: partition leases, stream consumption, flushing, fan-out.

One process owns a set of tick-stream partitions (a Redis lease per partition). For each it
loads the committed checkpoint (engine state + last committed entry id), claims the pending
entries of dead consumers (XAUTOCLAIM), replays its pending entries in id order (those at or
below the checkpoint are only acknowledged) and then reads new entries. A flusher commits the
produced rows every ``BATCH_INTERVAL`` seconds or ``BATCH_SIZE`` rows, XACKs after COMMIT, and
publishes one compact message per commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from streamdesk import constants
from streamdesk.codec import CodecError, decode_entry
from streamdesk.heartbeat import Heartbeat
from streamdesk.redisutil import create_redis
from streamdesk.shutdown import GracefulShutdown

from .compaction import CompactionTask
from .config import Settings
from .engine import Engine
from .indicators import columns
from .sessions import SessionCalendar
from .writer import Batch, FencedError, PartitionOffset, Writer

if TYPE_CHECKING:
    from .broadcast import BroadcastPublisher

log = logging.getLogger(__name__)

SERVICE = "indicators"
#: The reader yields to the event loop after this many ticks (~10 ms of work).
YIELD_EVERY_TICKS = 2000
#: Reads returning fewer entries than this are followed by a READ_COALESCE_S pause.
SMALL_READ_ENTRIES = 8
READ_COALESCE_S = 0.01

_TRANSIENT_PG = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,  # admin shutdown, crash shutdown
    asyncpg.InsufficientResourcesError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.InterfaceError,
)
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    *_TRANSIENT_PG,
    OSError,
    TimeoutError,
    ConnectionError,
)

#: Errors that end a session but not the process (the session is rebuilt from checkpoints).
SESSION_ERRORS: tuple[type[Exception], ...] = (RedisError, *_TRANSIENT_PG, OSError, TimeoutError)

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Restart(Exception):
    """Leave the current session and rebuild from the checkpoints (lease lost, rebalance)."""


def parse_id(eid: bytes | str) -> tuple[int, int]:
    """A Redis stream id as a comparable tuple."""
    s = eid.decode() if isinstance(eid, bytes) else eid
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)


class PartitionWorker:
    """Consumption state of one owned partition."""

    def __init__(self, partition: int, engine: Engine, committed_id: str, epoch: int) -> None:
        self.partition = partition
        self.stream = constants.tick_stream(partition)
        self.engine = engine
        self.committed = parse_id(committed_id)
        self.epoch = epoch
        self.last_id = committed_id
        self.acks: list[bytes] = []  # processed, waiting for the next commit
        self.first_ms = 0  # Redis arrival time (id) of acks[0]
        self.skipped: list[bytes] = []  # already committed before: ack right away


class IndicatorsService:
    """Runs until ``shutdown`` is requested; see the module docstring."""

    def __init__(self, settings: Settings, shutdown: GracefulShutdown | None = None) -> None:
        self.settings = settings
        self.shutdown = shutdown or GracefulShutdown(settings.shutdown_timeout)
        self.consumer = settings.instance_id
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
        self.workers: dict[str, PartitionWorker] = {}
        self._inflight_rows = 0
        self._flush_now = asyncio.Event()
        self._commit_idle = asyncio.Event()
        self._commit_idle.set()
        self._yield_ticks = 0
        self._space = asyncio.Event()
        self._reader_done = False
        self._rebalance = False
        self._renew = self.redis.register_script(_RENEW_LUA)
        self._release = self.redis.register_script(_RELEASE_LUA)
        # counters
        self.ticks = 0
        self.entries = 0
        self.rows_written = 0
        self.commits = 0
        self.malformed = 0
        self.bad_ticks = 0
        self.lost_entries = 0
        self.db_errors = 0
        self.redis_errors = 0
        self.backpressure_waits = 0
        self.last_flush_ms = 0.0
        self.latencies: deque[float] = deque(maxlen=20_000)
        self.flush_latencies: deque[float] = deque(maxlen=2_000)
        self._recent_flushes: deque[float] = deque(maxlen=20)
        self._rate_t = time.monotonic()
        self._rate_ticks = 0

    # -- observability -----------------------------------------------------------------

    def buffered_rows(self) -> int:
        """Rows produced but not yet committed (including a batch being committed)."""
        return self._inflight_rows + sum(w.engine.pending_rows() for w in self.workers.values())

    def _pending_entries(self) -> int:
        return sum(len(w.acks) for w in self.workers.values())

    @staticmethod
    def _p(values: deque[float], q: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def counters(self) -> Mapping[str, Any]:
        """Heartbeat counters."""
        now = time.monotonic()
        dt = max(now - self._rate_t, 1e-6)
        rate = (self.ticks - self._rate_ticks) / dt
        self._rate_t, self._rate_ticks = now, self.ticks
        return {
            "ticks": self.ticks,
            "ticks_per_s": round(rate, 1),
            "entries": self.entries,
            "rows_written": self.rows_written,
            "commits": self.commits,
            "last_flush_ms": round(self.last_flush_ms, 2),
            "flush_p99_ms": round(self._p(self.flush_latencies, 0.99), 2),
            "commit_latency_p99_ms": round(self._p(self.latencies, 0.99), 1),
            "buffer_rows": self.buffered_rows(),
            "pending_entries": self._pending_entries(),
            "partitions": sorted(w.partition for w in self.workers.values()),
            "malformed": self.malformed,
            "bad_ticks": self.bad_ticks,
            "lost_entries": self.lost_entries,
            "db_errors": self.db_errors,
            "redis_errors": self.redis_errors,
            "backpressure_waits": self.backpressure_waits,
            "storage_shed_level": self.writer.shedder.level,
            "storage_shed_rows": self.writer.shedder.shed_rows,
            "db_size_mb": round(self.writer.shedder.size_bytes / 2**20, 1),
            **self.compaction.counters(),
            **(self.broadcast.counters() if self.broadcast else {}),
        }

    def _set_ok(self) -> None:
        """Heartbeat ok, or degraded with the reason while storage load is being shed."""
        reason = self.writer.shedder.reason
        if reason is None:
            if self.heartbeat.status != "ok":
                self.heartbeat.set_status("ok")
        else:
            self.heartbeat.set_status("degraded", reason)

    # -- leases ------------------------------------------------------------------------

    async def _try_lease(self, partition: int) -> bool:
        key = constants.indicators_lease_key(partition)
        ttl = int(self.settings.lease_ttl * 1000)
        if await self.redis.set(key, self.consumer, nx=True, px=ttl):
            return True
        return bool(await self._renew(keys=[key], args=[self.consumer, ttl]))

    async def _acquire_partitions(self) -> list[int]:
        owned: list[int] = []
        for p in range(self.settings.stream_partitions):
            if self.settings.max_partitions and len(owned) >= self.settings.max_partitions:
                break
            if await self._try_lease(p):
                owned.append(p)
        return owned

    async def _lease_loop(self) -> None:
        ttl = int(self.settings.lease_ttl * 1000)
        while not self._reader_done:
            await asyncio.sleep(self.settings.lease_ttl / 3)
            for w in list(self.workers.values()):
                key = constants.indicators_lease_key(w.partition)
                ok = await asyncio.wait_for(
                    self._renew(keys=[key], args=[self.consumer, ttl]), timeout=5.0
                )
                if not ok:
                    raise Restart(f"lease of partition {w.partition} lost")
            limit = self.settings.max_partitions
            if not limit or len(self.workers) < limit:
                for p in range(self.settings.stream_partitions):
                    if constants.tick_stream(p) in self.workers:
                        continue
                    if await self.redis.exists(constants.indicators_lease_key(p)) == 0:
                        log.info("partition %d is free: rebalancing", p)
                        self._rebalance = True
                        return

    async def _release_leases(self) -> None:
        for w in self.workers.values():
            key = constants.indicators_lease_key(w.partition)
            try:
                await asyncio.wait_for(self._release(keys=[key], args=[self.consumer]), 2.0)
            except (RedisError, TimeoutError, OSError) as exc:
                log.warning("could not release lease of partition %d: %s", w.partition, exc)

    # -- consumption -------------------------------------------------------------------

    async def _ensure_group(self, stream: str) -> None:
        try:
            await self.redis.xgroup_create(
                stream, constants.INDICATORS_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _with_db_retry(self, what: str, fn: Any) -> Any:
        delay = 0.1
        while True:
            try:
                return await asyncio.wait_for(fn(), timeout=30.0)
            except TRANSIENT_DB_ERRORS as exc:
                self.db_errors += 1
                self.heartbeat.set_status("degraded", f"database unavailable: {type(exc).__name__}")
                log.warning(
                    "%s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, delay
                )
                await self.writer.reset()
                if await self.shutdown.wait(delay):
                    raise
                delay = min(delay * 2, self.settings.retry_max_delay)

    async def _open_partition(self, partition: int) -> PartitionWorker:
        stream = constants.tick_stream(partition)
        await self._ensure_group(stream)
        cp = await self._with_db_retry(
            f"loading checkpoint of {stream}",
            lambda: self.writer.load_checkpoint(stream, self.consumer),
        )
        engine = Engine(self.calendar, self.settings.indicator_bar_seconds)
        for symbol, kind, blob in cp.states:
            engine.load_state(symbol, kind, blob)
        worker = PartitionWorker(partition, engine, cp.last_id, cp.epoch)
        log.info(
            "owning %s: %d symbols restored, committed up to %s (epoch %d)",
            stream,
            len(cp.states),
            cp.last_id,
            cp.epoch,
        )
        return worker

    def _process(
        self, w: PartitionWorker, eid: bytes, fields: Mapping[bytes, bytes] | None
    ) -> None:
        self.entries += 1
        if parse_id(eid) <= w.committed:
            w.skipped.append(eid)
            return
        w.last_id = eid.decode()
        if not w.acks:
            w.first_ms = parse_id(eid)[0]
        w.acks.append(eid)
        if not fields:
            self.lost_entries += 1  # trimmed from the stream before we read it
            return
        payload = fields.get(constants.TICK_FIELD)
        if payload is None:
            self.malformed += 1
            log.warning("entry %s of %s has no tick field; acknowledged as poison", eid, w.stream)
            return
        try:
            equities, options, dropped = decode_entry(payload)
        except CodecError as exc:
            self.malformed += 1
            log.warning("malformed entry %s of %s (%s); acknowledged as poison", eid, w.stream, exc)
            return
        if dropped:
            self.bad_ticks += dropped
            log.warning(
                "dropped %d ticks with a non-finite price, negative volume or absurd time in %s",
                dropped,
                eid,
            )
        engine = w.engine
        engine.process_equities(equities)
        for o in options:
            engine.on_option(o)
        self.ticks += len(equities) + len(options)

    async def _handle(self, resp: Any) -> None:
        for stream, entries in resp or []:
            name = stream.decode() if isinstance(stream, bytes) else stream
            w = self.workers[name]
            for eid, fields in entries:
                if self.buffered_rows() >= self.settings.max_buffer_rows:
                    await self._wait_for_space()  # bound rows even within one large read
                if not self._commit_idle.is_set():
                    # a commit is talking to the DB: don't starve it of the event loop
                    await asyncio.wait_for(self._commit_idle.wait(), timeout=60.0)
                self._process(w, eid, fields)
                if self.ticks - self._yield_ticks >= YIELD_EVERY_TICKS:
                    self._yield_ticks = self.ticks
                    await asyncio.sleep(0)  # let the flush timer and heartbeats run
            if w.skipped:
                await self.redis.xack(w.stream, constants.INDICATORS_GROUP, *w.skipped)
                w.skipped = []
        if self.buffered_rows() >= self.settings.batch_size:
            self._flush_now.set()

    async def _wait_for_space(self) -> None:
        limit = self.settings.max_buffer_rows
        while self.buffered_rows() >= limit or self._pending_entries() >= limit:
            self.backpressure_waits += 1
            self._flush_now.set()
            self._space.clear()
            if self.shutdown.requested:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._space.wait(), timeout=0.5)

    async def _replay_pending(self, w: PartitionWorker) -> None:
        group = constants.INDICATORS_GROUP
        start: Any = "0-0"
        while True:  # move dead consumers' pending entries to us (we hold the lease)
            # (not JUSTID: redis-py then drops the cursor from the reply)
            res = await self.redis.xautoclaim(
                w.stream, group, self.consumer, min_idle_time=0, start_id=start, count=200
            )
            start = res[0]
            if parse_id(start) == (0, 0):
                break
        cursor: Any = "0"
        replayed = 0
        while not self.shutdown.requested:
            await self._wait_for_space()
            resp: Any = await self.redis.xreadgroup(
                group, self.consumer, {w.stream: cursor}, count=self.settings.read_count
            )
            entries = resp[0][1] if resp else []
            if not entries:
                break
            await self._handle(resp)
            replayed += len(entries)
            cursor = entries[-1][0]
        if replayed:
            log.info("replayed %d pending entries of %s", replayed, w.stream)

    async def _read_loop(self) -> None:
        try:
            for w in list(self.workers.values()):
                await self._replay_pending(w)
            block = self.settings.read_block_ms
            while not self.shutdown.requested and not self._rebalance:
                await self._wait_for_space()
                if self.shutdown.requested:
                    break
                streams: dict[Any, Any] = {w.stream: ">" for w in self.workers.values()}
                try:
                    resp: Any = await asyncio.wait_for(
                        self.redis.xreadgroup(
                            constants.INDICATORS_GROUP,
                            self.consumer,
                            streams,
                            count=self.settings.read_count,
                            block=block,
                        ),
                        timeout=block / 1000 + 10.0,
                    )
                except ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    for w in self.workers.values():  # stream deleted (e.g. FLUSHALL)
                        await self._ensure_group(w.stream)
                    continue
                await self._handle(resp)
                if resp and sum(len(e) for _, e in resp) < SMALL_READ_ENTRIES:
                    # a trickle: let entries accumulate a little (fewer round trips and
                    # parses per tick; adds at most READ_COALESCE_S to the latency)
                    await asyncio.sleep(READ_COALESCE_S)
        finally:
            self._reader_done = True
            self._flush_now.set()

    # -- flushing ----------------------------------------------------------------------

    def _take_batch(self) -> Batch | None:
        batch = Batch()
        for w in self.workers.values():
            out, states = w.engine.take()
            batch.seconds += out.seconds
            batch.options += out.options
            batch.bars += out.bars
            batch.days |= out.days
            batch.states += [(sym, w.stream, kind, blob) for sym, kind, blob in states]
            if w.acks:
                batch.offsets.append(PartitionOffset(w.stream, w.last_id, w.epoch))
                batch.acks[w.stream] = w.acks
                w.acks = []
        if not batch.rows and not batch.offsets and not batch.states:
            return None
        return batch

    def _flush_delay(self) -> float:
        """Seconds until the next flush is due.

        Due when the oldest uncommitted entry (by the time Redis accepted it) has waited
        ``BATCH_INTERVAL`` minus the recent commit time, so that ticks are committed within
        about ``BATCH_INTERVAL`` of their arrival. The loop clamps it between half and one
        ``BATCH_INTERVAL`` after the previous flush.
        """
        interval = self.settings.batch_interval
        oldest = min((w.first_ms for w in self.workers.values() if w.acks), default=None)
        if oldest is None:
            return interval
        recent = sorted(self._recent_flushes)
        margin = min(
            interval / 2, (recent[len(recent) * 9 // 10 - 1] if recent else 0) / 1000 + 0.05
        )
        return (oldest + interval * 1000) / 1000 - margin - time.time()

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.batch_interval
        while True:
            last = loop.time()
            while not self._flush_now.is_set() and not self._reader_done:
                now = loop.time()
                # when behind, flushing more often would only slow the catch-up
                delay = max(
                    min(self._flush_delay(), last + interval - now), last + interval / 2 - now
                )
                if delay <= 0:
                    break
                # short waits: the due time moves when the first entry after a flush arrives
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush_now.wait(), min(delay, 0.02))
            self._flush_now.clear()
            done = self._reader_done
            await self.flush_once()
            if done:
                return

    async def flush_once(self) -> None:
        """Take one batch from the engines and commit it (retrying while the DB is down)."""
        batch = self._take_batch()
        if batch is None:
            # nothing to write (market closed?): a cheap probe keeps the reported DB status
            # true while idle
            try:
                await asyncio.wait_for(self.writer.ping(), timeout=5.0)
            except TRANSIENT_DB_ERRORS as exc:
                self.db_errors += 1
                self.heartbeat.set_status("degraded", f"database unavailable: {type(exc).__name__}")
                await self.writer.reset()
            else:
                self._set_ok()
            return
        self._inflight_rows = batch.rows
        try:
            t0 = time.perf_counter()
            await self._with_db_retry("commit", lambda: self._commit(batch))
            self.last_flush_ms = (time.perf_counter() - t0) * 1000
        finally:
            self._inflight_rows = 0
            self._space.set()
        self.flush_latencies.append(self.last_flush_ms)
        self._recent_flushes.append(self.last_flush_ms)
        self._set_ok()
        self.commits += 1
        self.rows_written += batch.rows
        if self.settings.test_crash_after_commit == self.commits:
            log.warning("test hook: crashing between COMMIT and XACK (commit %d)", self.commits)
            os.kill(os.getpid(), signal.SIGKILL)
        now_ms = int(time.time() * 1000)
        self._record_latency(batch, now_ms)
        for stream, ids in batch.acks.items():
            for i in range(0, len(ids), 1000):
                await self.redis.xack(stream, constants.INDICATORS_GROUP, *ids[i : i + 1000])
        await self._publish(batch, now_ms)

    async def _commit(self, batch: Batch) -> None:
        self._commit_idle.clear()
        try:
            await self.writer.commit(batch)
        finally:
            self._commit_idle.set()

    def _record_latency(self, batch: Batch, now_ms: int) -> None:
        for ids in batch.acks.values():
            for eid in ids:
                self.latencies.append(float(now_ms - parse_id(eid)[0]))

    async def _publish(self, batch: Batch, now_ms: int) -> None:
        msg = committed_message(batch, self.commits, now_ms, self.settings.committed_max_options)
        if self.broadcast is not None:
            self.broadcast.offer(msg)  # returns at once (a slot of one, sent by its own task)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(
                    constants.COMMITTED_STREAM,
                    {b"d": msg},
                    maxlen=self.settings.committed_maxlen,
                    approximate=True,
                )
                pipe.publish(constants.COMMITTED_CHANNEL, msg)
                await asyncio.wait_for(pipe.execute(), timeout=5.0)
        except (RedisError, OSError, TimeoutError) as exc:
            self.redis_errors += 1
            log.warning("could not publish committed update: %s", exc)

    # -- lifecycle ---------------------------------------------------------------------

    async def _session(self) -> None:
        """Own partitions, process until stop/rebalance, flush what was processed."""
        self._reader_done = False
        self._rebalance = False
        self.workers = {}
        owned: list[int] = []
        while not owned:
            owned = await self._acquire_partitions()
            if not owned and await self.shutdown.wait(self.settings.lease_ttl / 3):
                return
        for p in owned:
            w = await self._open_partition(p)
            self.workers[w.stream] = w
        try:
            async with asyncio.TaskGroup() as tg:
                lease = tg.create_task(self._lease_loop(), name="indicators-lease")
                tg.create_task(self._read_loop(), name="indicators-read")
                flusher = tg.create_task(self._flush_loop(), name="indicators-flush")
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
        try:
            while not self.shutdown.requested:
                try:
                    await self._session()
                except* SESSION_ERRORS as eg:
                    exc = eg.exceptions[0]
                    if isinstance(exc, RedisError):
                        self.redis_errors += 1
                    else:
                        self.db_errors += 1
                    self.heartbeat.set_status("degraded", f"{type(exc).__name__}: {exc}")
                    log.warning(
                        "session ended by %s: %s; uncommitted entries stay pending",
                        type(exc).__name__,
                        exc,
                    )
                    await self.shutdown.wait(1.0)
            return 0
        finally:
            if self.broadcast is not None:
                await self.broadcast.stop()
            await self.compaction.stop()
            await self._release_leases()
            await self.heartbeat.stop()
            await self.writer.close()
            await self.redis.aclose()


def committed_message(batch: Batch, seq: int, now_ms: int, max_options: int) -> bytes:
    """The compact JSON message published after each commit (format in docs/indicators.md)."""
    ind = columns()
    latest: dict[str, tuple[Any, ...]] = {}
    for row in batch.seconds:
        prev = latest.get(row[0])
        if prev is None or row[1] >= prev[1]:
            latest[row[0]] = row
    equity = []
    for r in latest.values():
        item: dict[str, Any] = {
            "ticker": r[0],
            "ts": r[1],
            "price": r[2],
            "volume": r[3],
            "bid": r[4],
            "ask": r[5],
        }
        for i, col in enumerate(ind):
            item[col] = r[7 + i]
        equity.append(item)
    opt_latest: dict[str, tuple[Any, ...]] = {}
    for o in batch.options:
        p = opt_latest.get(o[0])
        if p is None or o[1] >= p[1]:
            opt_latest[o[0]] = o
    options = [
        {
            "ticker": o[0],
            "ts": o[1],
            "underlying": o[2],
            "last": o[6],
            "bid": o[7],
            "ask": o[8],
            "delta": o[9],
            "iv": o[14],
        }
        for o in list(opt_latest.values())[:max_options]
    ]
    all_ts = [r[1] for r in batch.seconds] + [o[1] for o in batch.options]
    msg = {
        "v": 1,
        "seq": seq,
        "committed_at": now_ms,
        "rows": {
            "equity": len(batch.seconds),
            "options": len(batch.options),
            "bars": len(batch.bars),
        },
        "from_ts": min(all_ts) if all_ts else None,
        "to_ts": max(all_ts) if all_ts else None,
        "equity": equity,
        "options": options,
        "options_truncated": len(opt_latest) > max_options,
    }
    return json.dumps(_json_safe(msg), separators=(",", ":"), allow_nan=False).encode()


def _json_safe(obj: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by ``None``, recursively."""
    if isinstance(obj, float):
        return obj if obj - obj == 0.0 else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj
