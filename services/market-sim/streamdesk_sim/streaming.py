"""The streamer websocket server: Schwab's streamer protocol on ``/ws``.

A session logs in with an access token (one session per user: a new login closes the older
one with code 12), then subscribes with ``SUBS``/``ADD``/``UNSUBS``/``VIEW``; a ``SUBS`` or
``ADD`` is answered with a snapshot of the new keys. The market loops
(:mod:`~streamdesk_sim.ticker`) publish to :meth:`Streamer.subscribers`; account activity and
heartbeats are sent from here. Requests are handled synchronously on the one event loop, so a
request, its response and its snapshot are queued before any market step runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from streamdesk_sim.clock import SessionClock
from streamdesk_sim.config import Settings
from streamdesk_sim.connection import Connection
from streamdesk_sim.faults import Faults
from streamdesk_sim.market import Market
from streamdesk_sim.protocol import (
    ACTIVITY,
    CHART,
    CODE_BAD_COMMAND_FORMAT,
    CODE_CLOSE_CONNECTION,
    CODE_LOGIN_DENIED,
    CODE_REACHED_SYMBOL_LIMIT,
    CODE_SERVICE_NOT_AVAILABLE,
    CODE_SUCCESS,
    COMMANDS,
    EQUITIES,
    OPTIONS,
    SERVICES,
    equity_entry,
    option_entry,
    parse_fields,
)
from streamdesk_sim.sentlog import SentLog
from streamdesk_sim.tokens import TokenIssuer

log = logging.getLogger(__name__)

#: A session's subscriptions of one service: key -> field numbers (None: all).
Subscriptions = dict[str, frozenset[int] | None]


class Streamer:
    """Every streamer session, and what the protocol sends outside market data."""

    def __init__(
        self,
        settings: Settings,
        clock: SessionClock,
        market: Market,
        tokens: TokenIssuer,
        faults: Faults,
        sent: SentLog,
        correl_id: str,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.market = market
        self.tokens = tokens
        self.faults = faults
        self.sent = sent
        self.correl_id = correl_id
        self.connections: dict[int, Connection] = {}
        self.conn_ids = iter(range(1, 1 << 62))
        self.activity_seq = 0

    def subscribers(self, service: str) -> Iterator[tuple[Connection, Subscriptions]]:
        """Logged-in sessions subscribed to ``service``, with their subscriptions of it
        (none while the stream is paused by a fault)."""
        for conn in list(self.connections.values()):
            subs = conn.subs[service]
            if not subs or not conn.logged_in or self.faults.ws_paused():
                continue
            yield conn, subs

    # ------------------------------------------------------------------ sessions

    async def serve_ws(self, ws: WebSocket) -> None:
        """Run one streamer session until the client leaves or it is closed."""
        await ws.accept()
        conn = Connection(self, ws)
        self.connections[conn.id] = conn
        sender = asyncio.create_task(conn.sender(), name=f"ws-sender-{conn.id}")
        receiver = asyncio.create_task(self._receive(conn), name=f"ws-recv-{conn.id}")
        closer = asyncio.create_task(conn.closed.wait(), name=f"ws-closed-{conn.id}")
        try:
            await asyncio.wait({sender, receiver, closer}, return_when=asyncio.FIRST_COMPLETED)
            if conn.closed.is_set() and not sender.done():
                # Let the sender flush what was queued before the close (bounded).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sender), 2.0)
        finally:
            self.connections.pop(conn.id, None)
            for task in (sender, receiver, closer):
                task.cancel()
            results = await asyncio.gather(sender, receiver, closer, return_exceptions=True)
            for res in results:
                if isinstance(res, Exception) and not isinstance(
                    res, WebSocketDisconnect | asyncio.CancelledError | RuntimeError
                ):
                    log.warning("streamer session error: %r", res, extra={"conn": conn.id})
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(conn.close_code), 1.0)

    def drop_websockets(self, code: int = 1011) -> int:
        """Close every streamer session at once (fault, shutdown); returns how many."""
        conns = list(self.connections.values())
        for conn in conns:
            conn.close(code)
        return len(conns)

    async def _receive(self, conn: Connection) -> None:
        while True:
            text = await conn.ws.receive_text()
            try:
                msg = json.loads(text)
            except ValueError:
                conn.response(
                    {"service": "ADMIN", "command": "UNKNOWN"},
                    CODE_BAD_COMMAND_FORMAT,
                    "Bad command formatting: not JSON",
                )
                continue
            reqs = msg.get("requests", msg) if isinstance(msg, dict) else msg
            if isinstance(reqs, dict):
                reqs = [reqs]
            if not isinstance(reqs, list):
                conn.response({}, CODE_BAD_COMMAND_FORMAT, "Bad command formatting")
                continue
            for req in reqs:
                if isinstance(req, dict):
                    self.handle(conn, req)
                else:
                    conn.response({}, CODE_BAD_COMMAND_FORMAT, "Bad command formatting")

    # ------------------------------------------------------------------ requests

    def handle(self, conn: Connection, req: dict[str, Any]) -> None:
        """Answer one request of ``conn`` (and send its snapshot)."""
        service = str(req.get("service", "")).upper()
        command = str(req.get("command", "")).upper()
        params = req.get("parameters") or {}
        if not isinstance(params, dict):
            conn.response(req, CODE_BAD_COMMAND_FORMAT, "Bad command formatting: parameters")
            return
        if service == "ADMIN":
            self._admin(conn, req, command, params)
            return
        if not conn.logged_in:
            conn.response(req, CODE_LOGIN_DENIED, "Not logged in: send ADMIN LOGIN first")
            return
        if service not in SERVICES:
            conn.response(req, CODE_SERVICE_NOT_AVAILABLE, f"Service {service} not available")
            return
        if command not in COMMANDS:
            conn.response(req, CODE_BAD_COMMAND_FORMAT, f"Bad command {command!r}")
            return
        try:
            fields = parse_fields(params.get("fields"))
        except ValueError:
            conn.response(req, CODE_BAD_COMMAND_FORMAT, "Bad command formatting: fields")
            return
        keys = [k.strip() for k in str(params.get("keys", "")).split(",") if k.strip()]
        if command != "VIEW" and not keys:
            conn.response(req, CODE_BAD_COMMAND_FORMAT, "Bad command formatting: no keys")
            return
        self._subscription(conn, req, service, command, keys, fields)

    def _admin(
        self, conn: Connection, req: dict[str, Any], command: str, params: dict[str, Any]
    ) -> None:
        if command == "LOGIN":
            self._login(conn, req, params)
        elif command == "LOGOUT":
            conn.response(req, CODE_SUCCESS, "Logout successful")
            conn.logged_in = False
            conn.close(1000)
        else:
            conn.response(req, CODE_BAD_COMMAND_FORMAT, f"Unknown ADMIN command {command}")

    def _subscription(
        self,
        conn: Connection,
        req: dict[str, Any],
        service: str,
        command: str,
        keys: list[str],
        fields: frozenset[int] | None,
    ) -> None:
        subs = conn.subs[service]
        conn.subs_version += 1
        if command == "UNSUBS":
            for k in keys:
                subs.pop(k.upper() if service != OPTIONS else k, None)
            conn.response(req, CODE_SUCCESS, "UNSUBS command succeeded")
            return
        if command == "VIEW":
            for k in subs:
                subs[k] = fields
            conn.response(req, CODE_SUCCESS, "VIEW command succeeded")
            return
        valid = self._valid_keys(service, keys)
        new_total = len(valid) if command == "SUBS" else len(subs.keys() | set(valid))
        if new_total > self.settings.max_symbols:
            conn.response(
                req,
                CODE_REACHED_SYMBOL_LIMIT,
                f"Reached symbol limit: {new_total} > {self.settings.max_symbols}",
            )
            return
        if command == "SUBS":
            subs.clear()
        for k in valid:
            subs[k] = fields
        conn.response(req, CODE_SUCCESS, f"{command} command succeeded")
        self._snapshot(conn, service, valid, fields)

    def _valid_keys(self, service: str, keys: list[str]) -> list[str]:
        out = []
        for k in keys:
            try:
                if service == OPTIONS:
                    self.market.option(k, self.clock.now())
                elif service in (EQUITIES, CHART):
                    k = k.upper()
                    self.market.equity(k)
                # ACCT_ACTIVITY: Schwab accepts any key; activity is per account anyway.
            except (ValueError, OverflowError):
                log.info("ignoring unknown %s key %r", service, k)
                continue
            out.append(k)
        return out

    def _snapshot(
        self, conn: Connection, service: str, keys: list[str], fields: frozenset[int] | None
    ) -> None:
        content = []
        if service == EQUITIES:
            for k in keys:
                eq = self.market.equity(k)
                full = {i: v for i, v in enumerate(eq.values) if v is not None}
                entry = equity_entry(eq, full, fields)
                if entry is not None:
                    content.append(entry)
        elif service == OPTIONS:
            for k in keys:
                opt = self.market.options[k]
                full = {i: v for i, v in enumerate(opt.values) if v is not None}
                entry = option_entry(k, full, fields)
                if entry is not None:
                    content.append(entry)
        conn.data(service, content)

    def _login(self, conn: Connection, req: dict[str, Any], params: dict[str, Any]) -> None:
        token = str(params.get("Authorization", ""))
        if token.lower().startswith("bearer "):
            token = token[7:]
        if self.tokens.check(token, "a") is None:
            conn.response(req, CODE_LOGIN_DENIED, "Login denied: invalid or expired token")
            conn.close(1000)
            return
        # One streamer connection per user: a new login closes the older one.
        for other in list(self.connections.values()):
            if other is not conn and other.logged_in:
                other.enqueue(
                    {
                        "notify": [
                            {
                                "service": "ADMIN",
                                "timestamp": self.clock.now_ms(),
                                "content": {
                                    "code": CODE_CLOSE_CONNECTION,
                                    "msg": "Connection closed: another login for this user",
                                },
                            }
                        ]
                    },
                    [],
                )
                other.logged_in = False
                other.close(1000)
        conn.logged_in = True
        conn.response(req, CODE_SUCCESS, "server=market-sim;status=PN")

    # ------------------------------------------------------------------ non-market sends

    def heartbeat(self) -> None:
        """Send a heartbeat notify to every logged-in session (unless paused)."""
        if self.faults.ws_paused():
            return
        frame = {"notify": [{"heartbeat": str(self.clock.now_ms())}]}
        for conn in list(self.connections.values()):
            if conn.logged_in:
                conn.enqueue(frame, [])

    def send_activity(self, message_type: str, data: dict[str, Any]) -> None:
        """Send one ACCT_ACTIVITY event to every subscribed session."""
        self.activity_seq += 1
        for conn, subs in self.subscribers(ACTIVITY):
            entry = {
                "seq": self.activity_seq,
                "key": next(iter(subs)),
                "1": self.settings.account_number,
                "2": message_type,
                "3": json.dumps(data),
            }
            conn.data(ACTIVITY, [entry])
