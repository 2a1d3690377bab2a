"""The simulator's core: market loops, streamer websocket sessions, fan-out.

One asyncio loop runs everything. Market steps are synchronous (no awaits), so a step, the
frames it produces and the paper-broker fills it triggers are atomic. Frames go to each
websocket through a bounded queue and a sender task; a client too slow to drain its queue is
disconnected (as Schwab does) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from typing import Any

import numpy as np
import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from streamdesk_sim.broker import Broker
from streamdesk_sim.clock import SessionClock
from streamdesk_sim.config import ClockMode, Settings
from streamdesk_sim.equity import EQUITY_KEYS, EquitySim
from streamdesk_sim.faults import Faults
from streamdesk_sim.loadgen import LoadBook, load_fields
from streamdesk_sim.market import Market
from streamdesk_sim.option import OPTION_KEYS
from streamdesk_sim.sentlog import SentLog
from streamdesk_sim.tokens import TokenIssuer

log = logging.getLogger(__name__)

TRADING_YEAR_SECONDS = 252 * 6.5 * 3600
#: A websocket write blocked this long means the client stopped reading: drop it.
SEND_TIMEOUT = 5.0

# Schwab streamer response codes.
CODE_SUCCESS = 0
CODE_LOGIN_DENIED = 3
CODE_UNKNOWN_FAILURE = 9
CODE_SERVICE_NOT_AVAILABLE = 11
CODE_CLOSE_CONNECTION = 12
CODE_REACHED_SYMBOL_LIMIT = 19
CODE_STREAM_CONN_NOT_FOUND = 20
CODE_BAD_COMMAND_FORMAT = 21
CODE_STOP_STREAMING = 30

EQUITIES = "LEVELONE_EQUITIES"
OPTIONS = "LEVELONE_OPTIONS"
CHART = "CHART_EQUITY"
ACTIVITY = "ACCT_ACTIVITY"
SERVICES = (EQUITIES, OPTIONS, CHART, ACTIVITY)
COMMANDS = ("SUBS", "ADD", "UNSUBS", "VIEW")

#: What a queued frame records in the sent log once written: content lists per service, or
#: the load-book indices of a pre-encoded load-mode frame.
Records = list[tuple[str, list[dict[str, Any]]]] | np.ndarray[Any, Any]


def _parse_fields(raw: Any) -> frozenset[int] | None:
    if raw is None or raw == "":
        return None
    return frozenset(int(f) for f in str(raw).split(",") if f.strip() != "")


class Connection:
    """One streamer websocket session."""

    def __init__(self, sim: Sim, ws: WebSocket) -> None:
        self.sim = sim
        self.ws = ws
        self.queue: asyncio.Queue[tuple[str, Records] | None] = asyncio.Queue(
            maxsize=sim.settings.send_queue
        )
        self.logged_in = False
        self.subs: dict[str, dict[str, frozenset[int] | None]] = {s: {} for s in SERVICES}
        #: Bumped on every subscription change (invalidates :attr:`load_view`).
        self.subs_version = 0
        #: (subs_version, [(load-book indices, fields)]): this session's load-mode view.
        self.load_view: tuple[int, list[tuple[np.ndarray[Any, Any], tuple[int, ...]]]] = (-1, [])
        self.closed = asyncio.Event()
        self.close_code = 1000
        self.id = next(sim.conn_ids)

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
                    "SchwabClientCorrelId": self.sim.correl_id,
                    "timestamp": self.sim.clock.now_ms(),
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
                    "timestamp": self.sim.clock.now_ms(),
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
                self.sim.sent.record_load(records)
            elif records:
                now = self.sim.clock.now_ms()
                for service, content in records:
                    self.sim.sent.record(service, content, now)


class Sim:
    """Simulator state and behaviour shared by REST routes and the websocket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        from datetime import datetime

        start = datetime.fromisoformat(settings.clock_start) if settings.clock_start else None
        self.clock = SessionClock(settings.clock, settings.clock_speed, start)
        self.market = Market(
            settings.seed,
            settings.volatility,
            max_symbols=settings.max_simulated + settings.load_symbols,
        )
        self.tokens = TokenIssuer(
            settings.token_secret, settings.access_token_ttl, settings.refresh_token_ttl
        )
        self.faults = Faults()
        self.sent = SentLog(settings.sent_log_size, settings.sent_log_total)
        self.account_hash = (
            hashlib.sha256(f"streamdesk-sim:{settings.account_number}".encode()).hexdigest().upper()
        )
        self.correl_id = hashlib.md5(  # noqa: S324 - an identifier, not security
            f"correl:{settings.seed}".encode()
        ).hexdigest()
        self.customer_id = hashlib.sha256(b"customer").hexdigest()
        self.broker = Broker(settings, self.market, self.clock, self.send_activity)
        self.connections: dict[int, Connection] = {}
        self.conn_ids = iter(range(1, 1 << 62))
        self.load_symbols: list[str] = [f"LD{i:05d}" for i in range(settings.load_symbols)]
        self._load_set = frozenset(self.load_symbols)
        self.load_rate = settings.load_rate  # adjustable at run time (POST /admin/load)
        self.load_book = (
            LoadBook(self.market, self.load_symbols, settings.seed, settings.volatility)
            if self.load_symbols
            else None
        )
        if self.load_book is not None:
            self.market.on_read = self.load_book.sync
            self.sent.attach_load(self.load_book.index, self.load_book.sent)
        self.equity_steps = 0
        self.stats: dict[str, int] = {"equity_updates": 0, "option_updates": 0, "load_updates": 0}
        # Chart bars being formed: symbol -> [bar_start_ms, o, h, l, c, volume, last_total_volume]
        self._bars: dict[str, list[float]] = {}
        self._chart_seq: dict[str, int] = {}
        self.activity_seq = 0
        for sym in settings.option_underlyings:
            self.market.equity(sym)

    # ------------------------------------------------------------------ market loops

    def _dt_years(self) -> float:
        speed = self.settings.clock_speed if self.settings.clock is ClockMode.ACCELERATED else 1.0
        return self.settings.tick_interval * speed / TRADING_YEAR_SECONDS

    def _activity(self) -> float:
        # Intraday U-shaped volume profile (busier near open and close) when a session clock
        # is followed; always-open mode stays flat so runs are reproducible at any hour.
        frac = self.clock.session_fraction()
        if frac is None:
            return 1.0
        return min(1.0, 0.55 + 1.8 * (frac - 0.5) ** 2)

    def equity_step(self) -> dict[str, dict[int, Any]]:
        """One market step of every simulated (non-load) equity; fans out the changes."""
        if not self.clock.is_open():
            return {}
        s = self.settings
        now_ms = self.clock.now_ms()
        dt = self._dt_years()
        trade_p = s.trade_prob * self._activity()
        changed: dict[str, dict[int, Any]] = {}
        for sym, eq in list(self.market.equities.items()):
            if sym in self._load_set:
                continue
            ch = eq.step(now_ms, dt, trade_p, s.quote_prob)
            if ch:
                changed[sym] = ch
        self.equity_steps += 1
        self.fan_out_equities(changed)
        self._update_bars(changed, now_ms)
        self.broker.on_market(changed)
        return changed

    def fan_out_equities(self, changed: dict[str, dict[int, Any]]) -> None:
        """Send level-one deltas to every subscribed connection."""
        if not changed:
            return
        for conn in list(self.connections.values()):
            subs = conn.subs[EQUITIES]
            if not subs or not conn.logged_in or self.faults.ws_paused():
                continue
            content = []
            syms = subs.keys() & changed.keys() if len(subs) < len(changed) else None
            for sym in syms if syms is not None else changed:
                if syms is None and sym not in subs:
                    continue
                entry = self._equity_entry(self.market.equities[sym], changed[sym], subs[sym])
                if entry is not None:
                    content.append(entry)
            self.stats["equity_updates"] += len(content)
            conn.data(EQUITIES, content)

    @staticmethod
    def _equity_entry(
        eq: EquitySim, fields: dict[int, Any], wanted: frozenset[int] | None
    ) -> dict[str, Any] | None:
        entry: dict[str, Any] = {
            "key": eq.symbol,
            "delayed": False,
            "assetMainType": "EQUITY",
            "assetSubType": "COE",
            "cusip": eq.cusip,
        }
        keys = EQUITY_KEYS
        if wanted is None:
            for k, v in fields.items():
                entry[keys[k]] = v
            entry.pop("0", None)
        else:
            for k, v in fields.items():
                if k in wanted and k:
                    entry[keys[k]] = v
        return entry if len(entry) > 5 else None

    def _update_bars(self, changed: dict[str, dict[int, Any]], now_ms: int) -> None:
        interval_ms = int(self.settings.chart_interval * 1000)
        bar_start = now_ms - now_ms % interval_ms
        # Bars of earlier intervals are complete, whether or not the symbol trades now.
        done = [(sym, bar) for sym, bar in self._bars.items() if bar[0] < bar_start]
        for sym, _ in done:
            del self._bars[sym]
        for sym, ch in changed.items():
            if 3 not in ch or 9 not in ch:
                continue
            price, size = float(ch[3]), float(ch[9])
            bar = self._bars.get(sym)
            if bar is None:
                self._bars[sym] = [bar_start, price, price, price, price, size]
            else:
                bar[2] = max(bar[2], price)
                bar[3] = min(bar[3], price)
                bar[4] = price
                bar[5] += size
        if done:
            self._emit_bars(done)

    def _emit_bars(self, done: list[tuple[str, list[float]]]) -> None:
        for conn in list(self.connections.values()):
            subs = conn.subs[CHART]
            if not subs or not conn.logged_in or self.faults.ws_paused():
                continue
            content = []
            for sym, bar in done:
                if sym not in subs:
                    continue
                seq = self._chart_seq.get(sym, 0) + 1
                self._chart_seq[sym] = seq
                start = int(bar[0])
                entry = {
                    "seq": seq,
                    "key": sym,
                    "0": sym,
                    "1": seq,
                    "2": bar[1],
                    "3": bar[2],
                    "4": bar[3],
                    "5": bar[4],
                    "6": bar[5],
                    "7": start,
                    "8": start // 86_400_000,
                }
                content.append(entry)
            conn.data(CHART, content)

    def option_step(self) -> None:
        """Reprice every subscribed option contract and send the deltas."""
        if not self.clock.is_open():
            return
        wanted: set[str] = set()
        for conn in self.connections.values():
            if conn.logged_in:
                wanted.update(conn.subs[OPTIONS])
        wanted.update(self.broker.working_option_symbols())
        if not wanted:
            return
        now = self.clock.now()
        now_ms = int(now * 1000)
        changed: dict[str, dict[int, Any]] = {}
        for sym in wanted:
            opt = self.market.options.get(sym)
            if opt is None:
                continue
            ch = opt.quote(self.market.equity(opt.underlying).mark, now, now_ms)
            if ch:
                changed[sym] = ch
        for conn in list(self.connections.values()):
            subs = conn.subs[OPTIONS]
            if not subs or not conn.logged_in or self.faults.ws_paused():
                continue
            content = []
            for sym, ch in changed.items():
                if sym in subs:
                    entry = self._option_entry(sym, ch, subs[sym])
                    if entry is not None:
                        content.append(entry)
            self.stats["option_updates"] += len(content)
            conn.data(OPTIONS, content)
        self.broker.on_market(changed)

    @staticmethod
    def _option_entry(
        sym: str, fields: dict[int, Any], wanted: frozenset[int] | None
    ) -> dict[str, Any] | None:
        entry: dict[str, Any] = {
            "key": sym,
            "delayed": False,
            "assetMainType": "OPTION",
            "cusip": "",
        }
        n = 0
        for k, v in fields.items():
            if k and (wanted is None or k in wanted):
                entry[OPTION_KEYS[k]] = v
                n += 1
        return entry if n else None

    def load_step(self, count: int, cursor: int) -> int:
        """Update ``count`` load-mode symbols starting at ``cursor``; return the new cursor.

        At most one update per symbol per step, so the rate is bounded by 50 x the number of
        load symbols (the step runs at 50 Hz).
        """
        book = self.load_book
        if book is None or not len(book):
            return cursor
        now_ms = self.clock.now_ms()
        idx = book.step(cursor, count, now_ms, self._dt_years())
        self.stats["load_updates"] += len(idx)
        if not self.faults.ws_paused():
            for conn in list(self.connections.values()):
                if conn.logged_in and conn.subs[EQUITIES]:
                    self._send_load(conn, book, idx, now_ms)
        return (cursor + len(idx)) % len(book)

    def _send_load(
        self, conn: Connection, book: LoadBook, idx: np.ndarray[Any, Any], now_ms: int
    ) -> None:
        """Send ``conn`` the updates of the load symbols ``idx`` it subscribed (pre-encoded)."""
        version, groups = conn.load_view
        if version != conn.subs_version:
            groups = self._load_groups(conn, book)
            conn.load_view = (conn.subs_version, groups)
        if not groups:
            return
        parts: list[bytes] = []
        sent: list[np.ndarray[Any, Any]] = []
        for mask, fields in groups:
            sel = idx[mask[idx]]
            if len(sel):
                parts.append(book.encode(sel, fields, now_ms))
                sent.append(sel)
        if not parts:
            return
        records = sent[0] if len(sent) == 1 else np.concatenate(sent)
        self.stats["equity_updates"] += len(records)
        head = f'{{"data":[{{"service":"{EQUITIES}","timestamp":{now_ms},'
        head += '"command":"SUBS","content":['
        conn.enqueue_text(head + b",".join(parts).decode() + "]}]}", records)

    @staticmethod
    def _load_groups(
        conn: Connection, book: LoadBook
    ) -> list[tuple[np.ndarray[Any, Any], tuple[int, ...]]]:
        """The load symbols ``conn`` subscribed, as one boolean mask per field set."""
        by_fields: dict[tuple[int, ...], np.ndarray[Any, Any]] = {}
        index = book.index
        for sym, wanted in conn.subs[EQUITIES].items():
            i = index.get(sym)
            if i is None:
                continue
            fields = load_fields(wanted)
            if not fields:
                continue
            mask = by_fields.get(fields)
            if mask is None:
                mask = by_fields[fields] = np.zeros(len(book), dtype=bool)
            mask[i] = True
        return [(mask, fields) for fields, mask in by_fields.items()]

    def heartbeat(self) -> None:
        """Send a heartbeat notify to every logged-in, unpaused session."""
        if self.faults.ws_paused():
            return
        frame = {"notify": [{"heartbeat": str(self.clock.now_ms())}]}
        for conn in list(self.connections.values()):
            if conn.logged_in:
                conn.enqueue(frame, [])

    async def run_loops(self, stop: asyncio.Event) -> None:
        """Run the periodic loops until ``stop`` is set."""
        s = self.settings

        async def every(period: float, fn: Any) -> None:
            next_at = time.monotonic()
            while not stop.is_set():
                next_at += period
                delay = next_at - time.monotonic()
                if delay < -period:  # fell far behind: do not burst to catch up
                    next_at = time.monotonic()
                    delay = 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, delay))
                if stop.is_set():
                    return
                try:
                    fn()
                except Exception:
                    log.exception("market loop step failed")

        tasks = [
            every(s.tick_interval, self.equity_step),
            every(s.option_interval, self.option_step),
            every(s.heartbeat_interval, self.heartbeat),
        ]
        if self.load_symbols:
            period = 0.02
            cursor = [0]
            owed = [0.0]  # fractional updates carried to the next step
            last = [time.monotonic()]

            def load() -> None:
                # Owed updates follow elapsed time, so loop jitter does not lower the rate
                # (capped at one second's worth after a stall).
                now = time.monotonic()
                owed[0] = min(owed[0] + self.load_rate * (now - last[0]), self.load_rate)
                last[0] = now
                count = int(owed[0])
                owed[0] -= count
                if count:
                    cursor[0] = self.load_step(count, cursor[0])

            tasks.append(every(period, load))
        await asyncio.gather(*tasks)

    # ------------------------------------------------------------------ websocket

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
                    self._handle(conn, req)
                else:
                    conn.response({}, CODE_BAD_COMMAND_FORMAT, "Bad command formatting")

    def _handle(self, conn: Connection, req: dict[str, Any]) -> None:
        service = str(req.get("service", "")).upper()
        command = str(req.get("command", "")).upper()
        params = req.get("parameters") or {}
        if not isinstance(params, dict):
            conn.response(req, CODE_BAD_COMMAND_FORMAT, "Bad command formatting: parameters")
            return
        if service == "ADMIN":
            if command == "LOGIN":
                self._login(conn, req, params)
            elif command == "LOGOUT":
                conn.response(req, CODE_SUCCESS, "Logout successful")
                conn.logged_in = False
                conn.close(1000)
            else:
                conn.response(req, CODE_BAD_COMMAND_FORMAT, f"Unknown ADMIN command {command}")
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
            fields = _parse_fields(params.get("fields"))
        except ValueError:
            conn.response(req, CODE_BAD_COMMAND_FORMAT, "Bad command formatting: fields")
            return
        keys = [k.strip() for k in str(params.get("keys", "")).split(",") if k.strip()]
        if command != "VIEW" and not keys:
            conn.response(req, CODE_BAD_COMMAND_FORMAT, "Bad command formatting: no keys")
            return
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
                elif service == ACTIVITY and k != self.correl_id:
                    pass  # Schwab accepts any key here; activity is per account anyway
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
                entry = self._equity_entry(eq, full, fields)
                if entry is not None:
                    content.append(entry)
        elif service == OPTIONS:
            for k in keys:
                opt = self.market.options[k]
                full = {i: v for i, v in enumerate(opt.values) if v is not None}
                entry = self._option_entry(k, full, fields)
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

    def send_activity(self, message_type: str, data: dict[str, Any]) -> None:
        """Send one ACCT_ACTIVITY event to every subscribed session."""
        self.activity_seq += 1
        for conn in list(self.connections.values()):
            subs = conn.subs[ACTIVITY]
            if not subs or not conn.logged_in or self.faults.ws_paused():
                continue
            entry = {
                "seq": self.activity_seq,
                "key": next(iter(subs)),
                "1": self.settings.account_number,
                "2": message_type,
                "3": json.dumps(data),
            }
            conn.data(ACTIVITY, [entry])

    def drop_websockets(self, code: int = 1011) -> int:
        """Close every streamer session at once (fault); returns how many."""
        conns = list(self.connections.values())
        for conn in conns:
            conn.close(code)
        return len(conns)


def is_finite(x: float) -> bool:
    """True for a finite float."""
    return math.isfinite(x)
