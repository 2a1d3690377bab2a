"""From the websocket to Redis: the hand-off of tick rows to the publisher.

The pump hands every frame's rows to :meth:`Flusher.put`, which only appends them to the
bounded :class:`~.tickqueue.ConflatingQueue`: the websocket loop never waits for Redis.
:meth:`Flusher.run` is the publish task: it takes batches from the queue (lingering briefly to
fill one), writes them with the :class:`~.publisher.Publisher` and, when Redis fails, retries
the same batch with back-off while the queue keeps conflating (at-least-once: a retried
pipeline may duplicate entries; the indicators writer is idempotent). When the queue is idle it
writes the pending latest quotes, so they never wait for the next tick. At shutdown
:meth:`Flusher.drain` publishes the batch in flight and everything still queued.
"""

from __future__ import annotations

import asyncio
import logging

from streamdesk.backoff import Backoff
from streamdesk.clock import Clock
from streamdesk.errors import REDIS_ERRORS

from .decode import Row
from .publisher import Publisher
from .tickqueue import ConflatingQueue

log = logging.getLogger(__name__)

#: Any Redis error (a refused command as well as a lost connection) is retried: the batch
#: stays in flight, so nothing is lost while Redis is away.
PUBLISH_ERRORS = REDIS_ERRORS

#: Largest batch one publish call takes from the queue.
PUBLISH_BATCH = 20_000


class Flusher:
    """The queue between the pump and Redis, and the task that empties it."""

    def __init__(
        self, queue: ConflatingQueue, publisher: Publisher, clock: Clock, *, linger: float
    ) -> None:
        self.queue = queue
        self.publisher = publisher
        self.clock = clock
        self.linger = linger
        self.ticks_in = 0
        self.publish_errors = 0
        #: Epoch seconds no later than the arrival of every tick not yet published (None when
        #: everything is published); in the state key, so a crash's loss can be dated.
        self.unpublished_since: float | None = None
        #: Set first when stopping: the loop ends even if a cancel was swallowed.
        self.stopping = False
        #: The batch the publisher holds while writing it (re-sent by the final drain).
        self._inflight: list[Row] = []

    def put(self, rows: list[Row]) -> None:
        """Queue one frame's rows (never blocks)."""
        self.ticks_in += len(rows)
        if self.unpublished_since is None:
            self.unpublished_since = self.clock.time()
        self.queue.put_many(rows)

    async def run(self) -> None:
        """Publish what is queued until stopping; retry Redis failures with back-off."""
        queue = self.queue
        publisher = self.publisher
        backoff = Backoff(0.2, 5.0)
        while not self.stopping:
            try:
                async with asyncio.timeout(10.0):
                    if not self._inflight:
                        due = publisher.quotes_due_in()
                        if not await queue.wait(1.0 if due is None else min(1.0, due)):
                            # Idle: quotes of the last ticks must not wait for the next tick.
                            await publisher.flush_quotes()
                            backoff.reset()
                            continue
                        if self.linger and len(queue) < PUBLISH_BATCH // 4:
                            await asyncio.sleep(self.linger)
                        self._inflight = queue.drain(PUBLISH_BATCH)
                    await publisher.publish(self._inflight)
            except PUBLISH_ERRORS as exc:
                self.publish_errors += 1
                delay = backoff.next_delay()
                log.warning("publish to Redis failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self._inflight = []
            if not len(queue):
                self.unpublished_since = None

    async def drain(self) -> None:
        """At shutdown, after :meth:`run` ended: publish the batch in flight, then the queue."""
        if self._inflight:
            # Possibly written already when the publisher was stopped: at-least-once.
            await self.publisher.publish(self._inflight)
            self._inflight = []
        while len(self.queue):
            await self.publisher.publish(self.queue.drain(PUBLISH_BATCH))
        await self.publisher.flush_quotes(force=True)
