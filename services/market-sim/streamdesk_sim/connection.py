"""One streamer websocket session: its subscriptions and its bounded, recorded send queue.

Frames go to the socket through a bounded queue and one sender task; a client too slow to
drain its queue (or whose single write blocks for ``SEND_TIMEOUT``) is disconnected, as
Schwab does, instead of growing memory. What was written is recorded in the sent log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.websockets import WebSocket

from streamdesk_sim.protocol import SERVICES

if TYPE_CHECKING:
    from streamdesk_sim.streaming import Streamer

log = logging.getLogger(__name__)

#: A websocket write blocked this long means the client stopped reading: drop it.
SEND_TIMEOUT = 5.0

#: What a queued frame records in the sent log once written: content lists per service, or
#: the load-book indices of a pre-encoded load-mode frame.
Records = list[tuple[str, list[dict[str, Any]]]] | np.ndarray[Any, Any]


class Connection:
    """One streamer websocket session."""

    def __init__(self, streamer: Streamer, ws: WebSocket) -> None:
        self.streamer = streamer
        self.ws = ws
        self.queue: asyncio.Queue[tuple[str, Records] | None] = asyncio.Queue(
            maxsize=streamer.settings.send_queue
        )
        self.logged_in = False
        self.subs: dict[str, dict[str, frozenset[int] | None]] = {s: {} for s in SERVICES}
        #: Bumped on every subscription change (invalidates :attr:`load_view`).
        self.subs_version = 0
        #: (subs_version, [(load-book indices, fields)]): this session's load-mode view.
        self.load_view: tuple[int, list[tuple[np.ndarray[Any, Any], tuple[int, ...]]]] = (-1, [])
        self.closed = asyncio.Event()
        self.close_code = 1000
        self.id = next(streamer.conn_ids)

    def enqueue(
        self, frame: dict[str, Any], records: list[tuple[str, list[dict[str, Any]]]]
    ) -> None:
        """Queue a frame; disconnect the client if it cannot keep up."""
        if not self.closed.is_set():
            self.enqueue_text(orjson.dumps(frame).decode(), records)

    def enqueue_text(self, text: str, records: Records) -> None:
        """Queue an encoded frame; disconnect the client if it cannot keep up."""
        if self.closed.is_set():
            return
        try:
            self.queue.put_nowait((text, records))
        except asyncio.QueueFull:
            log.warning(
                "streamer client too slow (queue full); disconnecting", extra={"conn": self.id}
            )
            self.close(1011)

    def close(self, code: int = 1000) -> None:
        """Ask the session to end (the sender closes the socket)."""
        if not self.closed.is_set():
            self.close_code = code
            self.closed.set()
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)

    def response(self, req: dict[str, Any], code: int, msg: str) -> None:
        """Send the response to one request."""
        frame = {
            "response": [
                {
                    "service": req.get("service"),
                    "command": req.get("command"),
                    "requestid": str(req.get("requestid", "")),
                    "SchwabClientCorrelId": self.streamer.correl_id,
                    "timestamp": self.streamer.clock.now_ms(),
                    "content": {"code": code, "msg": msg},
                }
            ]
        }
        self.enqueue(frame, [])

    def data(self, service: str, content: list[dict[str, Any]], command: str = "SUBS") -> None:
        """Send one data frame of ``service``."""
        if not content:
            return
        frame = {
            "data": [
                {
                    "service": service,
                    "timestamp": self.streamer.clock.now_ms(),
                    "command": command,
                    "content": content,
                }
            ]
        }
        self.enqueue(frame, [(service, content)])

    async def sender(self) -> None:
        """Write queued frames to the socket, recording what was sent."""
        while True:
            item = await self.queue.get()
            if item is None:
                return
            text, records = item
            try:
                await asyncio.wait_for(self.ws.send_text(text), SEND_TIMEOUT)
            except TimeoutError:
                log.warning(
                    "streamer client stopped reading; disconnecting", extra={"conn": self.id}
                )
                self.close_code = 1011
                self.closed.set()
                return
            if isinstance(records, np.ndarray):
                self.streamer.sent.record_load(records)
            elif records:
                now = self.streamer.clock.now_ms()
                for service, content in records:
                    self.streamer.sent.record(service, content, now)
