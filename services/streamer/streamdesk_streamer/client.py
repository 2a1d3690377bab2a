"""``FastStreamClient``: schwab-py's StreamClient for login and subscriptions, our own data path.

schwab-py's ``StreamClient.handle_message`` parses every frame with ``json.loads`` and, for each
registered handler, ``copy.deepcopy``-s the whole message to relabel its numeric keys, then
calls the handler (scheduling async handlers with ``asyncio.ensure_future``: fire-and-forget).
Measured in ``bench/bench_streamer.py``, that path costs several times our whole per-tick
budget. This subclass keeps everything schwab-py does for the protocol - ``login`` (user
preferences, websocket, ADMIN LOGIN), ``*_subs`` / ``*_add`` / ``*_unsubs`` with their request
ids and response checks, ``logout`` - and replaces only the data path with :meth:`pump`:

- the frame is parsed with orjson (bytes or str), never copied or relabelled;
- ``data`` items are handed straight to the :class:`~.decode.Decoder`, which reads the numeric
  keys (see ``fields.py``);
- ``notify`` heartbeats are counted; anything unexpected is counted and logged instead of
  raising, except protocol-level failures (see :class:`StreamProtocolError`);
- every receive has a timeout: silence longer than the heartbeat timeout is a dead connection.

It holds schwab-py's own lock while receiving, so a concurrent ``*_add``/``*_unsubs`` (the
option universe re-centring) is serialized with the data path exactly as in schwab-py.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

import orjson

from . import fields as F
from . import wire
from .decode import Decoder, Row

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from schwab.streaming import StreamClient

log = logging.getLogger(__name__)

#: Schwab response codes after which the connection is useless (login denied, closed, ...).
FATAL_RESPONSE_CODES = frozenset({3, 12, 20, 30})


class StreamProtocolError(Exception):
    """The server ended or refused the session (e.g. an ADMIN response with an error code)."""


class StreamTimeoutError(Exception):
    """Nothing (not even a heartbeat) arrived within the heartbeat timeout."""


class FastStreamClient(StreamClient):  # type: ignore[misc]
    """StreamClient whose data messages bypass schwab-py's relabelling (see module doc)."""

    def __init__(
        self,
        client: Any,
        decoder: Decoder,
        sink: Callable[[list[Row]], None],
        *,
        account_id: int | None = None,
        on_chart: Callable[[list[Any]], None] | None = None,
    ) -> None:
        super().__init__(client, account_id=account_id)
        self.decoder = decoder
        self.sink = sink
        self.on_chart = on_chart
        self.frames = 0
        self.heartbeats = 0
        self.unexpected = 0
        self.malformed_frames = 0
        self.last_frame = time.monotonic()
        self._rows: list[Row] = []

    def _unexpected(self, what: str, obj: Any) -> None:
        self.unexpected += 1
        if self.unexpected <= 20 or self.unexpected % 1000 == 0:
            log.warning("unexpected %s from streamer: %.300r", what, obj)

    async def pump(self, timeout: float) -> int:
        """Receive and process one frame (or one deferred message); return ticks emitted.

        Raises :class:`StreamTimeoutError` after ``timeout`` seconds of silence,
        :class:`StreamProtocolError` on a fatal server response, and the websocket's own
        ``ConnectionClosed`` when the socket drops.
        """
        msg: Any = None
        raw: str | bytes = b""
        async with self._lock:
            # Checked under the lock: messages that schwab-py read while it awaited a
            # subscription response are older than anything still on the socket.
            if self._overflow_items:
                msg = self._overflow_items.pop()
            else:
                if self._socket is None:
                    raise StreamProtocolError("not logged in")
                try:
                    # asyncio.timeout, not wait_for: a cancel must never be swallowed here.
                    async with asyncio.timeout(timeout):
                        raw = await self._socket.recv()
                except TimeoutError:
                    raise StreamTimeoutError(
                        f"no message or heartbeat for {timeout:.0f}s"
                    ) from None
        if msg is None:
            self.last_frame = time.monotonic()
            self.frames += 1
            try:
                frame = wire.FRAME.decode(raw)
            except wire.WireError:
                pass  # not the usual shape: the dict path below sorts it out, item by item
            else:
                return self._process(frame.data, frame.notify, frame.response, True, raw)
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self.malformed_frames += 1
                self.decoder.counters.malformed += 1
                if self.malformed_frames <= 20 or self.malformed_frames % 1000 == 0:
                    log.warning("unparsable frame from streamer: %.300r", raw)
                return 0
        if type(msg) is not dict:
            self._unexpected("frame", msg)
            return 0
        return self._process(msg.get("data"), msg.get("notify"), msg.get("response"), False, msg)

    def _process(self, data: Any, notify: Any, response: Any, raw: bool, whole: Any) -> int:
        """Handle one frame's parts; ``raw``: ``data`` holds :class:`wire.DataMessage`."""
        out = self._rows
        if data is not None:
            if type(data) is not list:
                self._unexpected("data", data)
            else:
                for d in data:
                    if raw:
                        self._data(d.service, d.timestamp, d.content, True, out)
                    elif type(d) is dict:
                        self._data(d.get("service"), d.get("timestamp", 0), d.get("content"),
                                   False, out)  # fmt: skip
                    else:
                        self._unexpected("data item", d)
        if notify is not None:
            if type(notify) is list:
                for n in notify:
                    if type(n) is dict and "heartbeat" in n:
                        self.heartbeats += 1
                    elif type(n) is dict and n.get("service") == "ADMIN":
                        # e.g. code 30: another login for this user closed this session.
                        self._response([n])
                    else:
                        self._unexpected("notify", n)
            else:
                self._unexpected("notify", notify)
        if response is not None:
            self._response(response)
        if data is None and notify is None and response is None:
            self._unexpected("message", whole)
        n = len(out)
        if n:
            self._rows = []
            self.sink(out)
        return n

    def _data(self, service: Any, ts: Any, content: Any, raw: bool, out: list[Row]) -> None:
        """One data message; ``raw``: ``content`` is still JSON (already known to be valid)."""
        dec = self.decoder
        if service == F.LEVELONE_EQUITIES:
            if raw:
                try:
                    items = wire.EQUITY_CONTENT.decode(content)
                except wire.WireError:
                    content = orjson.loads(bytes(content))  # some item is malformed: item by item
                else:
                    dec.equity_items(items, out, ts)
                    return
            dec.equities(content, out, ts)
        elif service == F.LEVELONE_OPTIONS:
            dec.options(orjson.loads(bytes(content)) if raw else content, out, ts)
        elif service == F.CHART_EQUITY:
            if self.on_chart is not None:
                if raw:
                    content = orjson.loads(bytes(content))
                if type(content) is list:
                    self.on_chart(content)
        else:
            self._unexpected("data service", service)

    def _response(self, response: Any) -> None:
        if type(response) is not list:
            self._unexpected("response", response)
            return
        for r in response:
            content = r.get("content") if type(r) is dict else None
            code = content.get("code") if type(content) is dict else None
            service = r.get("service") if type(r) is dict else None
            if code in FATAL_RESPONSE_CODES or (service == "ADMIN" and code not in (0, None)):
                raise StreamProtocolError(
                    f"server response {service} code {code}: {content.get('msg', '')!s:.200}"
                    if type(content) is dict
                    else f"server response {service} code {code}"
                )
            self._unexpected("response", r)

    async def close(self, timeout: float = 2.0) -> None:
        """Close the websocket (bounded); never raises."""
        sock: Any = self._socket  # type: ignore[has-type]
        self._socket = None
        if sock is None:
            return
        try:
            await asyncio.wait_for(sock.close(), timeout)
        except Exception as exc:
            log.debug("websocket close: %s", exc)
