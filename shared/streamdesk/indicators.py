"""Incremental per-symbol indicators and their registry.

The engine aggregates each symbol's ticks per second (last price, sum of price x shares,
shares); indicators are fed one completed second at a time, so they cost O(1) per second
and nothing per tick. That is exact for the documented semantics because every boundary
they care about (bars of whole seconds, the session open/close at whole minutes) falls on a
second boundary.

To add an indicator, subclass :class:`Indicator`, set ``column`` (a double-precision column of
the ``indicators`` table, added by a migration) and decorate it with :func:`register`.
``get_state``/``set_state`` must round-trip exactly (floats are stored as float64 in msgpack)
so that a restarted service continues bit-for-bit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from typing import Any, ClassVar

from streamdesk.sessions import SessionDay


class Indicator(ABC):
    """One indicator of one symbol."""

    column: ClassVar[str]

    def __init__(self, bar_ms: int) -> None:
        self.bar_ms = bar_ms

    @abstractmethod
    def update(self, sec: int, price: float, pv: float, shares: int, day: SessionDay) -> None:
        """Fold in one completed second: start ``sec`` (epoch ms, increasing), its last
        ``price``, the sum of price x shares of its ticks and its ``shares``."""

    @abstractmethod
    def value(self) -> float | None:
        """Value after the last folded second (``None`` while undefined)."""

    def peek(self, sec: int, price: float, pv: float, shares: int, day: SessionDay) -> float | None:
        """Value as if the still-open second (aggregated so far) were folded in; no change.

        The default round-trips the state; subclasses may override with something cheaper.
        """
        saved = self.get_state()
        self.update(sec, price, pv, shares, day)
        try:
            return self.value()
        finally:
            self.set_state(saved)

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

    def update(self, sec: int, price: float, pv: float, shares: int, day: SessionDay) -> None:
        bar = sec // self.bar_ms
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

    def peek(self, sec: int, price: float, pv: float, shares: int, day: SessionDay) -> float | None:
        if sec // self.bar_ms == self.bar:
            if len(self.closes) < self.period - 1:
                return None
            return (self.closed_sum + price) / self.period
        return super().peek(sec, price, pv, shares, day)

    def get_state(self) -> list[Any]:
        return [self.bar, self.cur, list(self.closes)]

    def set_state(self, state: list[Any]) -> None:
        self.bar, self.cur = int(state[0]), float(state[1])
        self.closes = deque((float(x) for x in state[2]), maxlen=self.period - 1)
        self.closed_sum = sum(self.closes)


@register
class VWAP(Indicator):
    """Session VWAP: sum(price x shares) / sum(shares) of the ticks inside the regular session.

    Reset at the first second of each local trading day; ``None`` before the open; after
    the close the value stays at the closing VWAP. Compensated (Neumaier) summation keeps
    the result within a few ulps of an exact sum over a whole session.
    """

    column = "vwap"

    def __init__(self, bar_ms: int) -> None:
        super().__init__(bar_ms)
        self.session = -1
        self.pv = 0.0
        self.comp = 0.0
        self.shares = 0

    def update(self, sec: int, price: float, pv: float, shares: int, day: SessionDay) -> None:
        if day.ordinal != self.session:
            self.session = day.ordinal
            self.pv = self.comp = 0.0
            self.shares = 0
        if shares > 0 and day.open_ms <= sec < day.close_ms:
            t = self.pv + pv
            if abs(self.pv) >= abs(pv):
                self.comp += (self.pv - t) + pv
            else:
                self.comp += (pv - t) + self.pv
            self.pv = t
            self.shares += shares

    def value(self) -> float | None:
        if self.shares <= 0:
            return None
        return (self.pv + self.comp) / self.shares

    def peek(self, sec: int, price: float, pv: float, shares: int, day: SessionDay) -> float | None:
        if day.ordinal != self.session:
            return super().peek(sec, price, pv, shares, day)
        if shares > 0 and day.open_ms <= sec < day.close_ms:
            # exactly the operations of update() + value(): the provisional value written for
            # an open second must be bit-identical to the final one
            t = self.pv + pv
            if abs(self.pv) >= abs(pv):
                comp = self.comp + ((self.pv - t) + pv)
            else:
                comp = self.comp + ((pv - t) + self.pv)
            return (t + comp) / (self.shares + shares)
        return self.value()

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

    def update(self, sec: int, price: float, pv: float, shares: int, day: SessionDay) -> None:
        bar = sec // self.bar_ms
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

    def peek(self, sec: int, price: float, pv: float, shares: int, day: SessionDay) -> float | None:
        if sec // self.bar_ms == self.bar:
            return self._blend(price)
        return super().peek(sec, price, pv, shares, day)

    def get_state(self) -> list[Any]:
        return [self.bar, self.cur, self.ema_closed]

    def set_state(self, state: list[Any]) -> None:
        self.bar, self.cur = int(state[0]), float(state[1])
        self.ema_closed = None if state[2] is None else float(state[2])
