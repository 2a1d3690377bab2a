"""The market loops: periodic equity, option, load-mode and heartbeat steps, and their fan-out.

One asyncio loop runs everything. A step is synchronous (no awaits), so a step, the frames it
queues for each subscribed session and the paper fills it triggers are atomic. A loop that
falls far behind does not burst to catch up; a failing step is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from streamdesk_sim.bars import ChartBars
from streamdesk_sim.broker import Broker
from streamdesk_sim.clock import SessionClock
from streamdesk_sim.config import ClockMode, Settings
from streamdesk_sim.connection import Connection
from streamdesk_sim.faults import Faults
from streamdesk_sim.loadgen import LoadBook, load_fields
from streamdesk_sim.market import Market
from streamdesk_sim.protocol import EQUITIES, OPTIONS, equity_entry, option_entry
from streamdesk_sim.streaming import Streamer

log = logging.getLogger(__name__)

TRADING_YEAR_SECONDS = 252 * 6.5 * 3600
#: Load-mode step period, s (50 Hz).
LOAD_PERIOD = 0.02


class Ticker:
    """Steps the simulated market and publishes each step's changes to the streamer."""

    def __init__(
        self,
        settings: Settings,
        clock: SessionClock,
        market: Market,
        streamer: Streamer,
        broker: Broker,
        faults: Faults,
        load_book: LoadBook | None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.market = market
        self.streamer = streamer
        self.broker = broker
        self.faults = faults
        self.load_book = load_book
        self._load_set = frozenset(load_book.symbols if load_book is not None else ())
        self.load_rate = settings.load_rate  # adjustable at run time (POST /admin/load)
        self.bars = ChartBars(settings.chart_interval, streamer)
        self.equity_steps = 0
        self.stats: dict[str, int] = {"equity_updates": 0, "option_updates": 0, "load_updates": 0}

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

    # ------------------------------------------------------------------ equities

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
        self.bars.update(changed, now_ms)
        self.broker.on_market(changed)
        return changed

    def fan_out_equities(self, changed: dict[str, dict[int, Any]]) -> None:
        """Send level-one deltas to every subscribed connection."""
        if not changed:
            return
        for conn, subs in self.streamer.subscribers(EQUITIES):
            content = []
            syms = subs.keys() & changed.keys() if len(subs) < len(changed) else None
            for sym in syms if syms is not None else changed:
                if syms is None and sym not in subs:
                    continue
                entry = equity_entry(self.market.equities[sym], changed[sym], subs[sym])
                if entry is not None:
                    content.append(entry)
            self.stats["equity_updates"] += len(content)
            conn.data(EQUITIES, content)

    # ------------------------------------------------------------------ options

    def option_step(self) -> None:
        """Reprice every subscribed option contract and send the deltas."""
        if not self.clock.is_open():
            return
        wanted: set[str] = set()
        for conn in self.streamer.connections.values():
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
        for conn, subs in self.streamer.subscribers(OPTIONS):
            content = []
            for sym, ch in changed.items():
                if sym in subs:
                    entry = option_entry(sym, ch, subs[sym])
                    if entry is not None:
                        content.append(entry)
            self.stats["option_updates"] += len(content)
            conn.data(OPTIONS, content)
        self.broker.on_market(changed)

    # ------------------------------------------------------------------ load mode

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
            for conn in list(self.streamer.connections.values()):
                if conn.logged_in and conn.subs[EQUITIES]:
                    self._send_load(conn, book, idx, now_ms)
        return (cursor + len(idx)) % len(book)

    def _send_load(
        self, conn: Connection, book: LoadBook, idx: np.ndarray[Any, Any], now_ms: int
    ) -> None:
        """Send ``conn`` the updates of the load symbols ``idx`` it subscribed (pre-encoded)."""
        version, groups = conn.load_view
        if version != conn.subs_version:
            groups = _load_groups(conn, book)
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

    def _load_stepper(self) -> Callable[[], None]:
        """The 50 Hz load step: owed updates follow elapsed time, so loop jitter does not
        lower the rate (capped at one second's worth after a stall)."""
        cursor = 0
        owed = 0.0  # fractional updates carried to the next step
        last = time.monotonic()

        def load() -> None:
            nonlocal cursor, owed, last
            now = time.monotonic()
            owed = min(owed + self.load_rate * (now - last), self.load_rate)
            last = now
            count = int(owed)
            owed -= count
            if count:
                cursor = self.load_step(count, cursor)

        return load

    # ------------------------------------------------------------------ loops

    async def run_loops(self, stop: asyncio.Event) -> None:
        """Run the periodic loops until ``stop`` is set."""
        s = self.settings
        tasks = [
            _every(stop, s.tick_interval, self.equity_step),
            _every(stop, s.option_interval, self.option_step),
            _every(stop, s.heartbeat_interval, self.streamer.heartbeat),
        ]
        if self.load_book is not None:
            tasks.append(_every(stop, LOAD_PERIOD, self._load_stepper()))
        await asyncio.gather(*tasks)


async def _every(stop: asyncio.Event, period: float, fn: Callable[[], Any]) -> None:
    """Call ``fn`` every ``period`` seconds until ``stop`` is set."""
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
