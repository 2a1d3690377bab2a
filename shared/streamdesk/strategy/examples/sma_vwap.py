"""SMA9/VWAP cross: long when the close crosses above every chosen indicator, flat when it
crosses back below (is no longer above all of them).

Load it as ``streamdesk.strategy.examples.sma_vwap:SmaVwapCross``. Parameters: ``quantity``
(shares per entry), ``indicators`` (any of ``sma9``, ``vwap``, ``ema9``; default SMA9 and
VWAP), ``tickers`` (default: all it is fed). A cross needs two warm bars: the first bar with
every indicator defined only records which side the close is on. The side per ticker is kept
in ``ctx.state`` so a restarted live runtime does not see a cross that did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamdesk.strategy.api import Bar, Context, Indicators, Strategy, StrategyError

_KNOWN = ("sma9", "vwap", "ema9")


class SmaVwapCross(Strategy):
    """The SMA9/VWAP cross (see the module docstring)."""

    name = "sma_vwap_cross"

    @dataclass(frozen=True)
    class Params:
        """Parameters of :class:`SmaVwapCross`."""

        quantity: int = 100
        indicators: tuple[str, ...] = ("sma9", "vwap")
        tickers: tuple[str, ...] = ()

    def __init__(self, ctx: Context, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(ctx, params)
        p = self.params
        if isinstance(p.quantity, bool) or not isinstance(p.quantity, int) or p.quantity <= 0:
            raise StrategyError(f"quantity must be a positive int, not {p.quantity!r}")
        names = (p.indicators,) if isinstance(p.indicators, str) else tuple(p.indicators)
        if not names or any(n not in _KNOWN for n in names):
            raise StrategyError(f"indicators must be a non-empty subset of {_KNOWN}: {names!r}")
        self._use = tuple(n in names for n in _KNOWN)
        self._above: dict[str, bool] = {}

    def on_start(self) -> None:
        self._above = self.ctx.state.setdefault("above", {})

    def on_bar(self, bar: Bar, ind: Indicators) -> None:
        close = bar.close
        use_sma, use_vwap, use_ema = self._use
        above = True
        for used, value in ((use_sma, ind.sma9), (use_vwap, ind.vwap), (use_ema, ind.ema9)):
            if used:
                if value is None:
                    return  # not warm: no side, no signal
                if not close > value:
                    above = False
        t = bar.ticker
        prev = self._above.get(t)
        self._above[t] = above
        if prev is None or prev == above:
            return
        pos = self.ctx.position(t)
        if above:
            if pos == 0 and not self.ctx.open_orders(t):
                self.buy(t, self.params.quantity, "enter")
        elif pos > 0:
            self.sell(t, pos, "exit")
