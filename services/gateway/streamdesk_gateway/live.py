"""Live fan-out: one Redis subscription to committed updates, many websocket clients.

Each client has a bounded queue; a slow client loses its oldest messages (counted) instead
of slowing the others or growing memory. The messages are the indicators writer's committed
flushes (schema: ``streamdesk.messages.CommittedMessage``), forwarded as the text they were
published as: never decoded or re-encoded here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from streamdesk.backoff import Backoff
from streamdesk.constants import COMMITTED_CHANNEL

log = logging.getLogger(__name__)

#: While messages flow each read waits at most 1 s; after an empty one (market closed) it
#: waits this long, a wait that :meth:`Fanout.stop` ends at once.
IDLE_READ_TIMEOUT = 30.0


class Client:
    """One websocket subscriber's bounded queue."""

    def __init__(self, bound: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(bound)
        self.dropped = 0

    def offer(self, message: str) -> None:
        """Enqueue ``message``, dropping the oldest one when full."""
        while True:
            try:
                self.queue.put_nowait(message)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
                    self.dropped += 1


class Fanout:
    """Reads ``COMMITTED_CHANNEL`` and broadcasts each message to every client."""

    def __init__(self, redis: aioredis.Redis, bound: int) -> None:
        self.redis = redis
        self.bound = bound
        self.clients: set[Client] = set()
        self.messages = 0
        self.errors = 0
        self.idle_reads = 0
        self._stopped = False
        self._stop_event = asyncio.Event()

    def add(self) -> Client:
        """Register a new client."""
        client = Client(self.bound)
        self.clients.add(client)
        return client

    def remove(self, client: Client) -> None:
        """Forget ``client``."""
        self.clients.discard(client)

    def stop(self) -> None:
        """Make :meth:`run` return within about a second.

        Cancelling alone is not enough: redis-py's ``PubSub.get_message`` can swallow a
        cancellation that lands inside its read timeout, and the loop then runs on (seen as a
        shutdown that never ended)."""
        self._stopped = True
        self._stop_event.set()

    async def _idle_read(self, pubsub: PubSub) -> dict[str, Any] | None:
        """The next message, waiting up to ``IDLE_READ_TIMEOUT``, or None (also on stop)."""
        self.idle_reads += 1
        read = asyncio.ensure_future(pubsub.get_message(timeout=IDLE_READ_TIMEOUT))
        stop = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait(
                {read, stop}, timeout=IDLE_READ_TIMEOUT + 5.0, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
            if not read.done():
                read.cancel()
                # bounded: get_message may swallow the cancel (see stop); the pubsub is
                # closed next anyway
                await asyncio.wait({read}, timeout=2.0)
        if read.done() and not read.cancelled():
            msg: dict[str, Any] | None = read.result()
            return msg
        return None

    async def run(self) -> None:
        """Subscribe and broadcast until stopped or cancelled; reconnect with backoff on
        errors."""
        backoff = Backoff(0.5, 10.0)
        while not self._stopped:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(COMMITTED_CHANNEL)
                backoff.reset()
                idle = False
                while not self._stopped:
                    if idle:
                        msg = await self._idle_read(pubsub)
                    else:
                        msg = await pubsub.get_message(timeout=1.0)
                    idle = msg is None
                    if msg is None:
                        continue
                    data = msg["data"]
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    self.messages += 1
                    for client in list(self.clients):
                        client.offer(text)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                delay = backoff.next_delay()
                log.warning("live feed subscription failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(0.0 if self._stopped else delay)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 2.0)  # type: ignore[no-untyped-call]
