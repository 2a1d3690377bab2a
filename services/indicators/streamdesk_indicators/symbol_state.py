"""Per-symbol state of the engine and its checkpoint form (``get_state``/``set_state``).

An :class:`EquityState` holds a ticker's open second (last price, sum of price x shares,
shares), its volume baseline, its open 1-minute bar and one instance of every registered
indicator; an :class:`OptionState` a contract's open second and last values. ``get_state``
returns the msgpack-able list the writer stores in ``indicator_state`` with the rows of the
same flush, ``set_state`` restores it exactly (restart equivalence, docs/indicators.md).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .indicators import REGISTRY, Indicator


class EquityState:
    """Everything the engine knows about one equity symbol."""

    __slots__ = (
        "ask",
        "bar_c",
        "bar_dirty",
        "bar_h",
        "bar_l",
        "bar_min",
        "bar_o",
        "bar_pv",
        "bar_v",
        "bid",
        "cum",
        "dirty",
        "inds",
        "last_ts",
        "price",
        "pv",
        "sec",
        "symbol",
        "touched",
        "vol",
        "written",
    )

    def __init__(self, symbol: str, bar_ms: int) -> None:
        self.symbol = symbol
        self.sec = -1  # start of the open second (ms); -1 = none
        self.last_ts = -1
        self.price = self.bid = self.ask = 0.0
        self.cum = -1  # last cumulative volume; -1 = no baseline yet
        self.vol = 0  # shares traded in the open second
        self.pv = 0.0  # sum of price x shares in the open second
        self.written = False  # the open second was written provisionally
        self.dirty = False  # the open second changed since it was last written
        self.touched = False  # changed since the last snapshot
        self.inds: list[Indicator] = [cls(bar_ms) for cls in REGISTRY]
        self.bar_min = -1  # open 1-minute bar (ms)
        self.bar_o = self.bar_h = self.bar_l = self.bar_c = 0.0
        self.bar_v = 0
        self.bar_pv = 0.0
        self.bar_dirty = False

    def get_state(self) -> list[Any]:
        return [
            self.sec,
            self.last_ts,
            self.price,
            self.bid,
            self.ask,
            self.cum,
            self.vol,
            self.pv,
            self.written,
            self.bar_min,
            self.bar_o,
            self.bar_h,
            self.bar_l,
            self.bar_c,
            self.bar_v,
            self.bar_pv,
            {i.column: i.get_state() for i in self.inds},
        ]

    def set_state(self, s: list[Any]) -> None:
        (
            self.sec,
            self.last_ts,
            self.price,
            self.bid,
            self.ask,
            self.cum,
            self.vol,
            self.pv,
            self.written,
            self.bar_min,
            self.bar_o,
            self.bar_h,
            self.bar_l,
            self.bar_c,
            self.bar_v,
            self.bar_pv,
        ) = s[:16]
        for ind in self.inds:
            if ind.column in s[16]:
                ind.set_state(s[16][ind.column])
        self.dirty = self.bar_dirty = self.touched = False


class OptionState:
    """Everything the engine knows about one option contract."""

    __slots__ = (
        "changed",
        "dirty",
        "exp",
        "last_ts",
        "meta",
        "sec",
        "symbol",
        "vals",
        "written",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.sec = -1
        self.last_ts = -1
        self.vals: tuple[Any, ...] | None = None
        self.meta: tuple[str, str, float, str] = ("", "CALL", 0.0, "1970-01-01")
        self.exp = date(1970, 1, 1)
        self.changed = False  # some tick of the open second changed a field
        self.written = False
        self.dirty = False

    def get_state(self) -> list[Any]:
        return [
            self.sec,
            self.last_ts,
            list(self.vals) if self.vals else None,
            list(self.meta),
            self.changed,
            self.written,
        ]

    def set_state(self, s: list[Any]) -> None:
        self.sec, self.last_ts = s[0], s[1]
        self.vals = tuple(s[2]) if s[2] is not None else None
        self.meta = (s[3][0], s[3][1], float(s[3][2]), s[3][3])
        self.exp = date.fromisoformat(self.meta[3])
        self.changed, self.written = s[4], s[5]
        self.dirty = False
