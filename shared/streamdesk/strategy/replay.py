"""Inputs of a strategy: the indicator replay, per-second rows made into bars, recordings.

* :class:`IndicatorReplay` runs the indicators service's own engine
  (:mod:`streamdesk.indicators`, its registry) over bars or seconds, so a backtest's
  ``Indicators`` are computed by the same code as live ones.
* :class:`TickBars` turns a stream of committed per-second rows into finished 1-minute bars
  and drops what is not new; the live runtime and the backtester use it alike, so both call
  ``on_bar`` at the same moment (when the first row of a later bar arrives).
* :func:`read_recording` reads a recorded tick file: JSON lines, one committed message
  (``streamdesk.messages.CommittedMessage``, the wire bytes of ``sd:committed``) per line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from streamdesk.indicators import REGISTRY, Indicator
from streamdesk.messages import COMMITTED_VERSION, EQUITY_INDICATORS, CommittedMessage
from streamdesk.sessions import SessionCalendar
from streamdesk.strategy.api import Bar, Indicators, Tick

log = logging.getLogger(__name__)

_FIELDS = tuple(Indicators.__dataclass_fields__)
if _FIELDS != EQUITY_INDICATORS:  # pragma: no cover - a new indicator must be added to both
    raise RuntimeError(f"Indicators fields {_FIELDS} != committed columns {EQUITY_INDICATORS}")

NO_INDICATORS = Indicators()


class IndicatorReplay:
    """The registered indicators of every ticker, fed bar by bar or second by second."""

    def __init__(self, calendar: SessionCalendar, bar_seconds: int = 60) -> None:
        if tuple(c.column for c in REGISTRY) != EQUITY_INDICATORS:
            raise RuntimeError(
                f"indicator registry {[c.column for c in REGISTRY]} != {EQUITY_INDICATORS}"
            )
        self.calendar = calendar
        self.bar_ms = bar_seconds * 1000
        self._sets: dict[str, list[Indicator]] = {}

    def _set(self, ticker: str) -> list[Indicator]:
        s = self._sets.get(ticker)
        if s is None:
            s = self._sets[ticker] = [cls(self.bar_ms) for cls in REGISTRY]
        return s

    def second(self, ticker: str, sec: int, price: float, pv: float, shares: int) -> Indicators:
        """Fold one second (start ``sec``, last ``price``, sum price x shares ``pv``, ``shares``)
        and return the values after it, as the service writes them for that second."""
        day = self.calendar.day_of(sec)
        s = self._sets.get(ticker) or self._set(ticker)
        if len(s) == 3:  # the registry of today, unrolled: this runs once per bar
            a, b, c = s
            a.update(sec, price, pv, shares, day)
            b.update(sec, price, pv, shares, day)
            c.update(sec, price, pv, shares, day)
            return Indicators(a.value(), b.value(), c.value())
        for ind in s:
            ind.update(sec, price, pv, shares, day)
        return Indicators(*[ind.value() for ind in s])

    def peek(self, ticker: str, sec: int, price: float, pv: float, shares: int) -> Indicators:
        """The values as if this still-open second were folded (nothing changes)."""
        day = self.calendar.day_of(sec)
        return Indicators(*[ind.peek(sec, price, pv, shares, day) for ind in self._set(ticker)])

    def values(self, ticker: str) -> Indicators:
        """The values after the last folded second of ``ticker``."""
        return Indicators(*[ind.value() for ind in self._set(ticker)])

    def bar(self, bar: Bar) -> Indicators:
        """Fold a whole bar as one second at its start: its close, ``vwap x volume`` (the
        close when the bar has no vwap) and volume. For bars of ``bar_seconds`` this gives
        the service's values at the bar's last second (SMA9/EMA9 see the same closes; VWAP
        the same sum of price x shares)."""
        ref = bar.close if bar.vwap is None else bar.vwap
        return self.second(bar.ticker, bar.ts, bar.close, ref * bar.volume, bar.volume)


@dataclass(slots=True)
class _Forming:
    ts: int  # bar start
    open: float
    high: float
    low: float
    close: float
    volume: int
    pv: float


@dataclass(slots=True)
class _Last:
    tick: Tick
    ind: Indicators


@dataclass
class TickBars:
    """Per-second rows in, finished bars out (per ticker), with the dedup rule of committed
    rows: ``(ticker, ts)`` is a key; an older row is dropped, the same row again is dropped,
    a changed row of the latest second replaces it (a still-open second committed again).

    :meth:`push` returns ``(bar, deliver)``: the bar that the row finished (or ``None``) and
    whether the row is new (to be given to ``on_tick``). A bar is made of the final row of
    each of its seconds; rows without a price count for no bar. ``vwap`` of a bar is
    sum(price x volume) / sum(volume) of those rows (``None`` without volume).
    """

    bar_seconds: int = 60
    _last: dict[str, _Last] = field(default_factory=dict)
    _bars: dict[str, _Forming] = field(default_factory=dict)
    dropped: int = 0

    def push(self, tick: Tick, ind: Indicators) -> tuple[tuple[Bar, Indicators] | None, bool]:
        """Take one row; see the class docstring."""
        last = self._last.get(tick.ticker)
        finished: tuple[Bar, Indicators] | None = None
        if last is not None:
            if tick.ts < last.tick.ts or (tick == last.tick and ind == last.ind):
                self.dropped += 1
                return None, False
            if tick.ts > last.tick.ts:
                finished = self._fold(last, tick.ts)
        self._last[tick.ticker] = _Last(tick, ind)
        return finished, True

    def _fold(self, last: _Last, next_ts: int | None) -> tuple[Bar, Indicators] | None:
        """Add the final row ``last`` to its bar; return the bar if ``next_ts`` is in a later
        bar (``None``: the stream ended)."""
        t = last.tick
        bar_ms = self.bar_seconds * 1000
        start = t.ts - t.ts % bar_ms
        forming = self._bars.get(t.ticker)
        if t.price is not None:
            if forming is None or forming.ts != start:
                forming = self._bars[t.ticker] = _Forming(
                    start, t.price, t.price, t.price, t.price, t.volume, t.price * t.volume
                )
            else:
                forming.high = max(forming.high, t.price)
                forming.low = min(forming.low, t.price)
                forming.close = t.price
                forming.volume += t.volume
                forming.pv += t.price * t.volume
        if forming is None or forming.ts != start:
            return None
        if next_ts is not None and next_ts - next_ts % bar_ms == start:
            return None
        del self._bars[t.ticker]
        bar = Bar(
            t.ticker,
            forming.ts,
            forming.open,
            forming.high,
            forming.low,
            forming.close,
            forming.volume,
            forming.pv / forming.volume if forming.volume > 0 else None,
        )
        return bar, last.ind

    def flush(self) -> list[tuple[Bar, Indicators]]:
        """The bars still forming when the stream ends (sorted by ticker)."""
        out: list[tuple[Bar, Indicators]] = []
        for ticker in sorted(self._last):
            done = self._fold(self._last[ticker], None)
            if done is not None:
                out.append(done)
        self._last.clear()
        return out


class RecordingError(ValueError):
    """A recorded tick file that cannot be read at all (missing, empty of messages)."""


@dataclass
class RecordingStats:
    """What :func:`read_recording` found."""

    lines: int = 0
    messages: int = 0
    bad_lines: int = 0
    first_bad: str | None = None


_DECODER = msgspec.json.Decoder(CommittedMessage)


def read_recording(
    path: str | Path, stats: RecordingStats | None = None
) -> Iterator[tuple[Tick, Indicators]]:
    """The equity rows of a recorded tick file, in file order, with their indicators.

    One committed message per line (blank lines ignored). A line that is not a valid
    committed message of this version is skipped, counted in ``stats`` and logged (the
    first one with its line number); the rest of the file is still read.
    """
    stats = stats if stats is not None else RecordingStats()
    p = Path(path)
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise RecordingError(f"recording {str(p)!r} cannot be opened: {exc}") from exc
    with fh:
        for n, line in enumerate(fh, 1):
            stats.lines += 1
            if not line.strip():
                continue
            try:
                msg = _DECODER.decode(line)
                if msg["v"] != COMMITTED_VERSION:
                    raise msgspec.ValidationError(
                        f"version {msg['v']}, expected {COMMITTED_VERSION}"
                    )
            except msgspec.DecodeError as exc:
                stats.bad_lines += 1
                if stats.first_bad is None:
                    stats.first_bad = f"line {n}: {exc}"
                    log.warning("recording %s: skipping bad line %d: %s", p, n, exc)
                continue
            stats.messages += 1
            for e in msg["equity"]:
                yield (
                    Tick(e["ticker"], e["ts"], e["price"], e["bid"], e["ask"], e["volume"]),
                    Indicators(e["sma9"], e["vwap"], e["ema9"]),
                )
