"""The per-partition engine: ticks in, conflated per-second rows and indicator values out.

Deterministic by construction: the rows it produces depend only on the order of the ticks in
the partition's stream, never on when flushes happen. That is what makes the transactional
checkpoint (rows + engine state + stream offset in one COMMIT) sufficient for exactly-once
output and for restart equivalence. See docs/indicators.md.

Rules, per symbol:

* Event time is made monotonic: a tick older than the symbol's latest tick is folded into the
  symbol's current second (``ts = max(ts, last_ts)``). An equity tick that is not newer than
  the latest one *and* has a lower cumulative volume is a stale copy of a tick already
  processed (a retried publish duplicates entries) and is ignored.
* A second is *closed* when a tick of a later second arrives for the same symbol; its final
  row is emitted then. At each flush the still-open second is emitted *provisionally* (and
  overwritten in place later if more ticks arrive in it), so every tick reaches the database
  within one ``BATCH_INTERVAL``.
* ``volume`` of a second = sum over its ticks of the increase of the cumulative volume:
  ``cum - prev`` when ``cum >= prev``; ``cum`` when it went down (the feed's counter was reset,
  e.g. a new trading day); ``0`` for the very first tick of a symbol (no baseline).
* Option contracts get a row for a second only if some tick in that second changed any field.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import msgpack

from streamdesk.codec import EqRow
from streamdesk.models import EquityTick, OptionTick

from .sessions import SessionCalendar
from .symbol_state import EquityState, OptionState

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
MINUTE_MS = 60_000

#: (ticker, second_ms, price, volume, bid, ask, cum_volume, *indicator values, update)
SecRow = tuple[Any, ...]
#: (ticker, second_ms, underlying, option_type, strike, expiration, last, bid, ask, delta,
#:  gamma, theta, vega, rho, iv, volume, open_interest, underlying_price, update)
OptRow = tuple[Any, ...]
#: (ticker, bucket_ms, open, high, low, close, volume, vwap)
BarRow = tuple[str, int, float, float, float, float, int, float | None]


def _finite(x: float) -> float | None:
    """``x``, or ``None`` for NaN/inf."""
    return x if x - x == 0.0 else None


@dataclass
class Output:
    """Rows produced since the last batch was taken."""

    seconds: list[SecRow] = field(default_factory=list)
    options: list[OptRow] = field(default_factory=list)
    bars: list[BarRow] = field(default_factory=list)
    days: set[int] = field(default_factory=set)  # UTC day numbers (ms // DAY_MS)

    def __len__(self) -> int:
        return len(self.seconds) + len(self.options) + len(self.bars)


class Engine:
    """Conflation and indicators for the symbols of one stream partition."""

    def __init__(self, calendar: SessionCalendar, bar_seconds: int = 60) -> None:
        self.calendar = calendar
        self.bar_ms = bar_seconds * 1000
        self.equities: dict[str, EquityState] = {}
        self.options: dict[str, OptionState] = {}
        self.out = Output()
        self._touched_eq: list[EquityState] = []
        self._touched_opt: set[OptionState] = set()
        self.ticks = 0
        self.stale = 0  # equity ticks ignored as stale copies (see process_equities)

    # -- restore -----------------------------------------------------------------------

    def load_state(self, symbol: str, kind: str, blob: bytes) -> None:
        """Restore one symbol from its committed checkpoint."""
        state = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        if kind == "equity":
            st = EquityState(symbol, self.bar_ms)
            st.set_state(state)
            self.equities[symbol] = st
        else:
            ost = OptionState(symbol)
            ost.set_state(state)
            self.options[symbol] = ost

    # -- ticks -------------------------------------------------------------------------

    def on_equity(self, t: EquityTick) -> None:
        """Process one equity tick (convenience; the service uses :meth:`process_equities`)."""
        self.process_equities([(t.symbol, t.ts, t.last, t.bid, t.ask, t.volume, t.last_size)])

    def process_equities(self, rows: Iterable[EqRow]) -> None:
        """Process equity ticks (the hot loop: keep it flat)."""
        eqs = self.equities
        touched = self._touched_eq
        bar_ms = self.bar_ms
        n = 0
        for sym, ts, price, bid, ask, cum, _size in rows:
            n += 1
            st = eqs.get(sym)
            if st is None:
                st = eqs[sym] = EquityState(sym, bar_ms)
            if ts <= st.last_ts:
                if cum < st.cum:
                    # Not newer than what we have and behind on volume: a stale copy of a
                    # tick already processed (the streamer re-sends a whole batch when a
                    # publish fails midway). Counting it as a counter reset would add its
                    # whole cumulative volume to this second.
                    self.stale += 1
                    continue
                ts = st.last_ts  # late tick: folded into the current second
            sec = ts - ts % 1000
            if sec != st.sec:
                if st.sec >= 0:
                    self._close_second(st)
                st.sec = sec
                st.vol = 0
                st.pv = 0.0
                st.written = False
            prev = st.cum
            st.cum = cum
            st.price = price
            st.bid = bid
            st.ask = ask
            st.last_ts = ts
            minute = ts - ts % MINUTE_MS
            if minute != st.bar_min:
                if st.bar_dirty:
                    self._emit_bar(st)
                st.bar_min = minute
                st.bar_o = st.bar_h = st.bar_l = price
                st.bar_v = 0
                st.bar_pv = 0.0
            elif price > st.bar_h:
                st.bar_h = price
            elif price < st.bar_l:
                st.bar_l = price
            st.bar_c = price
            if prev >= 0:
                shares = cum - prev if cum >= prev else cum
                if shares:
                    x = price * shares
                    st.vol += shares
                    st.pv += x
                    st.bar_v += shares
                    st.bar_pv += x
            st.dirty = st.bar_dirty = True
            if not st.touched:
                st.touched = True
                touched.append(st)
        self.ticks += n

    def on_option(self, t: OptionTick) -> None:
        """Process one option tick."""
        st = self.options.get(t.symbol)
        if st is None:
            st = self.options[t.symbol] = OptionState(t.symbol)
        ts = t.ts if t.ts > st.last_ts else st.last_ts
        sec = ts - ts % 1000
        if sec != st.sec:
            if st.sec >= 0:
                self._close_option(st)
            st.sec, st.changed, st.written = sec, False, False
        st.last_ts = ts
        # NaN (an option that has not traded, greeks not received yet) is stored as NULL:
        # it compares equal to itself for change detection and is valid JSON
        vals = (
            _finite(t.last),
            _finite(t.bid),
            _finite(t.ask),
            _finite(t.delta),
            _finite(t.gamma),
            _finite(t.theta),
            _finite(t.vega),
            _finite(t.rho),
            _finite(t.iv),
            t.volume,
            t.open_interest,
            _finite(t.underlying_price),
        )
        if vals != st.vals:
            st.vals = vals
            st.changed = st.dirty = True
            meta = (t.underlying, "CALL" if t.put_call == "C" else "PUT", t.strike, t.expiration)
            if meta != st.meta:
                st.meta = meta
                st.exp = date.fromisoformat(t.expiration)
        self._touched_opt.add(st)
        self.ticks += 1

    # -- output ------------------------------------------------------------------------

    def _sec_row(self, st: EquityState, values: list[float | None]) -> SecRow:
        self.out.days.add(st.sec // DAY_MS)
        return (st.symbol, st.sec, st.price, st.vol, st.bid, st.ask, st.cum, *values, st.written)

    def _close_second(self, st: EquityState) -> None:
        day = self.calendar.day_of(st.sec)
        for ind in st.inds:
            ind.update(st.sec, st.price, st.pv, st.vol, day)
        if st.dirty:  # else the provisional row already holds the final values
            self.out.seconds.append(self._sec_row(st, [i.value() for i in st.inds]))
            st.dirty = False

    def _opt_row(self, st: OptionState) -> OptRow:
        assert st.vals is not None
        self.out.days.add(st.sec // DAY_MS)
        u, typ, strike, _ = st.meta
        return (st.symbol, st.sec, u, typ, strike, st.exp, *st.vals, st.written)

    def _close_option(self, st: OptionState) -> None:
        if st.changed and st.dirty:
            self.out.options.append(self._opt_row(st))
            st.dirty = False

    def _emit_bar(self, st: EquityState) -> None:
        vwap = st.bar_pv / st.bar_v if st.bar_v > 0 else None
        self.out.bars.append(
            (st.symbol, st.bar_min, st.bar_o, st.bar_h, st.bar_l, st.bar_c, st.bar_v, vwap)
        )
        st.bar_dirty = False

    def pending_rows(self) -> int:
        """Rows waiting for the next batch."""
        return len(self.out)

    def take(self) -> tuple[Output, list[tuple[str, str, bytes]]]:
        """Emit provisional rows for open seconds/bars; return the rows and touched states.

        Must run without awaiting in between, so the rows and states form one consistent
        snapshot with the stream offset the caller records.
        """
        for st in self._touched_eq:
            if st.dirty:
                day = self.calendar.day_of(st.sec)
                values = [i.peek(st.sec, st.price, st.pv, st.vol, day) for i in st.inds]
                self.out.seconds.append(self._sec_row(st, values))
                st.written, st.dirty = True, False
            if st.bar_dirty:
                self._emit_bar(st)
            st.touched = False
        for ost in self._touched_opt:
            if ost.changed and ost.dirty:
                self.out.options.append(self._opt_row(ost))
                ost.written, ost.dirty = True, False
        states = [
            (st.symbol, "equity", msgpack.packb(st.get_state(), use_bin_type=True))
            for st in self._touched_eq
        ]
        states += [
            (ost.symbol, "option", msgpack.packb(ost.get_state(), use_bin_type=True))
            for ost in self._touched_opt
        ]
        self._touched_eq.clear()
        self._touched_opt.clear()
        out, self.out = self.out, Output()
        return out, states
