"""Incremental per-symbol indicators, O(1) per tick, and their registry.

To add an indicator, subclass :class:`Indicator`, set ``column`` (a double-precision column of
the ``indicators`` table, added by a migration) and decorate it with :func:`register`. The
engine feeds every trade to every registered indicator and writes ``value()`` at the end of
each second. ``get_state``/``set_state`` must round-trip exactly (floats are stored as
float64 in msgpack) so a restarted service continues bit-for-bit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from typing import Any, ClassVar

from .sessions import SessionDay


class Indicator(ABC):
    """One indicator of one symbol."""

    column: ClassVar[str]

    def __init__(self, bar_ms: int) -> None:
        self.bar_ms = bar_ms

    @abstractmethod
    def update(self, ts: int, price: float, shares: int, day: SessionDay) -> None:
        """Account for one tick (``ts`` epoch ms, non-decreasing; ``shares`` traded with it)."""

    @abstractmethod
    def value(self) -> float | None:
        """Current value (``None`` while undefined)."""

    @abstractmethod
    def get_state(self) -> list[Any]:
        """Exact state as a msgpack-able list."""

    @abstractmethod
    def set_state(self, state: list[Any]) -> None:
        """Restore a state produced by :meth:`get_state`."""


REGISTRY: list[type[Indicator]] = []


def register(cls: type[Indicator]) -> type[Indicator]:
    """Class decorator: make ``cls`` part of every symbol's indicator set."""
    if any(c.column == cls.column for c in REGISTRY):
        raise ValueError(f"indicator column {cls.column!r} registered twice")
    REGISTRY.append(cls)
    return cls


def columns() -> list[str]:
    """Columns of the registered indicators, in registry order."""
    return [cls.column for cls in REGISTRY]


@register
class SMA9(Indicator):
    """Mean of the closes of the last 9 bars; the forming bar's latest price is its close.

    Bars are ``bar_ms`` long and aligned to the epoch; only bars with at least one tick
    count. Undefined (``None``) until 9 bars exist.
    """

    column = "sma9"
    period = 9

    def __init__(self, bar_ms: int) -> None:
        super().__init__(bar_ms)
        self.bar = -1
        self.cur = 0.0
        self.closes: deque[float] = deque(maxlen=self.period - 1)
        self.closed_sum = 0.0

    def update(self, ts: int, price: float, shares: int, day: SessionDay) -> None:
        bar = ts // self.bar_ms
        if bar != self.bar:
            if self.bar >= 0:
                self.closes.append(self.cur)
                # re-summing 8 values once per bar avoids running-sum drift
                self.closed_sum = sum(self.closes)
            self.bar = bar
        self.cur = price

    def value(self) -> float | None:
        if self.bar < 0 or len(self.closes) < self.period - 1:
            return None
        return (self.closed_sum + self.cur) / self.period

    def get_state(self) -> list[Any]:
        return [self.bar, self.cur, list(self.closes)]

    def set_state(self, state: list[Any]) -> None:
        self.bar, self.cur = int(state[0]), float(state[1])
        self.closes = deque((float(x) for x in state[2]), maxlen=self.period - 1)
        self.closed_sum = sum(self.closes)


@register
class VWAP(Indicator):
    """Session VWAP: sum(price x shares) / sum(shares) of ticks inside the regular session.

    Reset at the first tick of each local trading day; ``None`` before the open; after the
    close the value stays at the closing VWAP. Compensated (Neumaier) summation keeps the
    result within ~1 ulp of an exact sum over a whole session.
    """

    column = "vwap"

    def __init__(self, bar_ms: int) -> None:
        super().__init__(bar_ms)
        self.session = -1
        self.pv = 0.0
        self.comp = 0.0
        self.shares = 0

    def update(self, ts: int, price: float, shares: int, day: SessionDay) -> None:
        if day.ordinal != self.session:
            self.session = day.ordinal
            self.pv = self.comp = 0.0
            self.shares = 0
        if shares > 0 and day.open_ms <= ts < day.close_ms:
            x = price * shares
            t = self.pv + x
            if abs(self.pv) >= abs(x):
                self.comp += (self.pv - t) + x
            else:
                self.comp += (x - t) + self.pv
            self.pv = t
            self.shares += shares

    def value(self) -> float | None:
        if self.shares <= 0:
            return None
        return (self.pv + self.comp) / self.shares

    def get_state(self) -> list[Any]:
        return [self.session, self.pv, self.comp, self.shares]

    def set_state(self, state: list[Any]) -> None:
        self.session = int(state[0])
        self.pv, self.comp = float(state[1]), float(state[2])
        self.shares = int(state[3])


@register
class EMA9(Indicator):
    """Exponential moving average (alpha = 2/(9+1)) of bar closes, forming bar included.

    Seeded with the first bar's close; the value is ``alpha*latest + (1-alpha)*ema_closed``
    where ``ema_closed`` covers the completed bars.
    """

    column = "ema9"
    alpha = 2.0 / (9 + 1)

    def __init__(self, bar_ms: int) -> None:
        super().__init__(bar_ms)
        self.bar = -1
        self.cur = 0.0
        self.ema_closed: float | None = None

    def update(self, ts: int, price: float, shares: int, day: SessionDay) -> None:
        bar = ts // self.bar_ms
        if bar != self.bar:
            if self.bar >= 0:
                self.ema_closed = self._blend(self.cur)
            self.bar = bar
        self.cur = price

    def _blend(self, price: float) -> float:
        if self.ema_closed is None:
            return price
        return self.alpha * price + (1.0 - self.alpha) * self.ema_closed

    def value(self) -> float | None:
        if self.bar < 0:
            return None
        return self._blend(self.cur)

    def get_state(self) -> list[Any]:
        return [self.bar, self.cur, self.ema_closed]

    def set_state(self, state: list[Any]) -> None:
        self.bar, self.cur = int(state[0]), float(state[1])
        self.ema_closed = None if state[2] is None else float(state[2])
