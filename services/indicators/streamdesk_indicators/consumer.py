"""Stream consumption: owned partitions' entries through the engines, under back-pressure.

For each owned partition a :class:`PartitionWorker` holds the engine and the stream position.
On taking a partition the :class:`Consumer` moves the pending entries of other consumers to
itself (``XAUTOCLAIM``, min idle 0: it holds the lease), replays its pending list in id order
(entries at or below the checkpoint are only acknowledged: they were committed before a crash
between COMMIT and XACK), then reads new entries with ``XREADGROUP``. Processed entry ids wait
in ``acks`` for the next commit (:mod:`.flusher`); malformed entries are counted, logged and
acknowledged with it.

Reading stops while ``MAX_BUFFER_ROWS`` rows (or as many entries) wait for a commit, pauses
while a commit talks to the database, yields the event loop every :data:`YIELD_EVERY_TICKS`
ticks and, after a small read, waits :data:`READ_COALESCE_S` to let entries accumulate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from streamdesk import constants
from streamdesk.codec import CodecError, decode_entry
from streamdesk.shutdown import GracefulShutdown, unless_stopped

from .config import Settings
from .engine import Engine
from .sessions import SessionCalendar
from .writer import Batch, Checkpoint, PartitionOffset

log = logging.getLogger(__name__)

#: The reader yields to the event loop after this many ticks (~10 ms of work).
YIELD_EVERY_TICKS = 2000
#: Reads returning fewer entries than this are followed by a READ_COALESCE_S pause.
SMALL_READ_ENTRIES = 8
READ_COALESCE_S = 0.01


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
        #: event time (epoch ms) of the first tick since the last take (None: no tick yet)
        self.first_event_ms: int | None = None
        self.skipped: list[bytes] = []  # already committed before: ack right away


class Consumer:
    """Reads the owned partitions into their engines; hands batches to the flusher.

    The flusher and the consumer meet here: :meth:`take_batch` (what was consumed),
    ``flush_now`` (a flush is wanted: buffer full or reading ended), ``arrived`` (entries wait
    for a commit: the flusher sleeps on it while nothing is buffered), ``space`` (a commit freed
    the buffer), ``commit_idle`` (cleared while a commit talks to the database) and
    ``inflight_rows`` (rows of the batch being committed, still counted as buffered).
    """

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        shutdown: GracefulShutdown,
        calendar: SessionCalendar,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.shutdown = shutdown
        self.calendar = calendar
        self.name = settings.instance_id  # consumer name in the group
        self.workers: dict[str, PartitionWorker] = {}
        self.inflight_rows = 0
        self.flush_now = asyncio.Event()
        self.arrived = asyncio.Event()  # set by read_loop once entries wait for a commit
        self.commit_idle = asyncio.Event()
        self.commit_idle.set()
        self.space = asyncio.Event()
        self.done = False  # the read loop ended (stop, rebalance or error)
        self.rebalance = False
        self._yield_ticks = 0
        # counters
        self.ticks = 0
        self.entries = 0
        self.malformed = 0
        self.bad_ticks = 0
        self.lost_entries = 0
        self.backpressure_waits = 0

    # -- state -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the partitions of the previous session."""
        self.workers = {}
        self.done = False
        self.rebalance = False

    def partitions(self) -> set[int]:
        """The partitions this session owns."""
        return {w.partition for w in self.workers.values()}

    def buffered_rows(self) -> int:
        """Rows produced but not yet committed (including a batch being committed)."""
        return self.inflight_rows + sum(w.engine.pending_rows() for w in self.workers.values())

    def pending_entries(self) -> int:
        """Entries processed and waiting for a commit."""
        return sum(len(w.acks) for w in self.workers.values())

    def oldest_ms(self) -> int | None:
        """Redis arrival time (epoch ms) of the oldest entry waiting for a commit."""
        return min((w.first_ms for w in self.workers.values() if w.acks), default=None)

    def oldest_event_ms(self) -> int | None:
        """Event time (epoch ms) of the first tick of the oldest batch waiting for a commit:
        the time the bound on tick -> commit latency counts from."""
        return min(
            (w.first_event_ms for w in self.workers.values() if w.first_event_ms is not None),
            default=None,
        )

    async def ensure_group(self, stream: str) -> None:
        """Create the consumer group of ``stream`` (and the stream) if missing."""
        try:
            await self.redis.xgroup_create(
                stream, constants.INDICATORS_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def add(self, partition: int, cp: Checkpoint) -> PartitionWorker:
        """Own ``partition`` from its checkpoint (engine state restored)."""
        engine = Engine(self.calendar, self.settings.indicator_bar_seconds)
        for symbol, kind, blob in cp.states:
            engine.load_state(symbol, kind, blob)
        worker = PartitionWorker(partition, engine, cp.last_id, cp.epoch)
        self.workers[worker.stream] = worker
        log.info(
            "owning %s: %d symbols restored, committed up to %s (epoch %d)",
            worker.stream,
            len(cp.states),
            cp.last_id,
            cp.epoch,
        )
        return worker

    def take_batch(self) -> Batch | None:
        """Everything produced since the last take, with the ids to acknowledge after it."""
        batch = Batch()
        for w in self.workers.values():
            out, states = w.engine.take()
            batch.seconds += out.seconds
            batch.options += out.options
            batch.bars += out.bars
            batch.days |= out.days
            batch.states += [(sym, w.stream, kind, blob) for sym, kind, blob in states]
            w.first_event_ms = None
            if w.acks:
                batch.offsets.append(PartitionOffset(w.stream, w.last_id, w.epoch))
                batch.acks[w.stream] = w.acks
                w.acks = []
        if not batch.rows and not batch.offsets and not batch.states:
            return None
        return batch

    # -- processing --------------------------------------------------------------------

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
        if w.first_event_ms is None:  # the oldest tick waiting for a commit, near enough
            w.first_event_ms = equities[0][1] if equities else options[0].ts if options else None
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
                    await self.wait_for_space()  # bound rows even within one large read
                if not self.commit_idle.is_set():
                    # a commit is talking to the DB: don't starve it of the event loop
                    await asyncio.wait_for(self.commit_idle.wait(), timeout=60.0)
                self._process(w, eid, fields)
                if self.ticks - self._yield_ticks >= YIELD_EVERY_TICKS:
                    self._yield_ticks = self.ticks
                    await asyncio.sleep(0)  # let the flush timer and heartbeats run
            if w.skipped:
                await self.redis.xack(w.stream, constants.INDICATORS_GROUP, *w.skipped)
                w.skipped = []
        if self.buffered_rows() >= self.settings.batch_size:
            self.flush_now.set()

    async def wait_for_space(self) -> None:
        """Back-pressure: wait while the buffer is full (asking for a flush)."""
        limit = self.settings.max_buffer_rows
        while self.buffered_rows() >= limit or self.pending_entries() >= limit:
            self.backpressure_waits += 1
            self.flush_now.set()
            self.space.clear()
            if self.shutdown.requested:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.space.wait(), timeout=0.5)

    # -- reading -----------------------------------------------------------------------

    async def _replay_pending(self, w: PartitionWorker) -> None:
        group = constants.INDICATORS_GROUP
        start: Any = "0-0"
        while True:  # move dead consumers' pending entries to us (we hold the lease)
            # (not JUSTID: redis-py then drops the cursor from the reply)
            res = await self.redis.xautoclaim(
                w.stream, group, self.name, min_idle_time=0, start_id=start, count=200
            )
            start = res[0]
            if parse_id(start) == (0, 0):
                break
        cursor: Any = "0"
        replayed = 0
        while not self.shutdown.requested:
            await self.wait_for_space()
            resp: Any = await self.redis.xreadgroup(
                group, self.name, {w.stream: cursor}, count=self.settings.read_count
            )
            entries = resp[0][1] if resp else []
            if not entries:
                break
            await self._handle(resp)
            replayed += len(entries)
            cursor = entries[-1][0]
        if replayed:
            log.info("replayed %d pending entries of %s", replayed, w.stream)

    async def read_loop(self) -> None:
        """Replay the pending entries, then read new ones until stop or rebalance.

        While entries flow each XREADGROUP blocks at most ``READ_BLOCK_MS``; after an empty
        read (nothing flowing, e.g. the market is closed) it blocks up to
        ``IDLE_READ_BLOCK_MS``, a wait that a stop ends at once (the read is cancelled: its
        connection is dropped and anything Redis delivered to it stays pending, replayed by
        the next owner). An entry ends either block as soon as Redis has it.
        """
        try:
            for w in list(self.workers.values()):
                await self._replay_pending(w)
                if w.acks:
                    self.arrived.set()
            block = self.settings.read_block_ms
            idle_block = max(block, self.settings.idle_read_block_ms)
            group, count = constants.INDICATORS_GROUP, self.settings.read_count
            idle = False
            while not self.shutdown.requested and not self.rebalance:
                await self.wait_for_space()
                if self.shutdown.requested:
                    break
                streams: dict[Any, Any] = {w.stream: ">" for w in self.workers.values()}
                try:
                    if not idle:
                        resp: Any = await asyncio.wait_for(
                            self.redis.xreadgroup(
                                group, self.name, streams, count=count, block=block
                            ),
                            timeout=block / 1000 + 10.0,
                        )
                    else:
                        read, resp = await unless_stopped(
                            self.redis.xreadgroup(
                                group, self.name, streams, count=count, block=idle_block
                            ),
                            self.shutdown.event,
                            idle_block / 1000 + 10.0,
                            "XREADGROUP",
                        )
                        if not read:
                            break
                except ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    for w in self.workers.values():  # stream deleted (e.g. FLUSHALL)
                        await self.ensure_group(w.stream)
                    continue
                await self._handle(resp)
                idle = not resp
                if not self.arrived.is_set() and self.oldest_ms() is not None:
                    self.arrived.set()  # the first entry since a flush: wake the flusher
                if resp and sum(len(e) for _, e in resp) < SMALL_READ_ENTRIES:
                    # a trickle: let entries accumulate a little (fewer round trips and
                    # parses per tick; adds at most READ_COALESCE_S to the latency)
                    await asyncio.sleep(READ_COALESCE_S)
        finally:
            self.done = True
            self.flush_now.set()
