"""The simulated market: every instrument a client asked for, created on first use.

Equities are :class:`~streamdesk_sim.equity.EquitySim` (one seeded path each), options
:class:`~streamdesk_sim.option.OptionSim` (priced from their underlying). The option chain a
symbol serves has a strike grid fixed at first use, so option symbols stay stable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import numpy as np

from streamdesk.models import format_occ, parse_occ
from streamdesk_sim.clock import NY
from streamdesk_sim.equity import EquitySim
from streamdesk_sim.option import OptionSim
from streamdesk_sim.seeds import symbol_seed


def strike_step(price: float) -> float:
    """Strike spacing for an underlying price."""
    if price < 25:
        return 0.5
    if price < 100:
        return 1.0
    if price < 250:
        return 2.5
    if price < 1000:
        return 5.0
    return 10.0


def weekly_expirations(today: date, n: int) -> list[date]:
    """The next ``n`` Fridays after ``today``."""
    d = today + timedelta(days=1)
    d += timedelta(days=(4 - d.weekday()) % 7)
    return [d + timedelta(weeks=i) for i in range(n)]


class Market:
    """All simulated instruments."""

    def __init__(self, seed: int, vol: float, max_symbols: int = 100_000) -> None:
        self.seed = seed
        self.vol = vol
        self.max_symbols = max_symbols
        self.equities: dict[str, EquitySim] = {}
        self.options: dict[str, OptionSim] = {}
        # Strike grid per underlying, fixed at first use so option symbols stay stable.
        self.chain_strikes: dict[str, list[float]] = {}
        #: Called with an existing simulation before it is handed out (load mode keeps
        #: its symbols' current values elsewhere and copies them in here).
        self.on_read: Callable[[EquitySim], None] | None = None

    def equity(self, symbol: str) -> EquitySim:
        """The simulation of ``symbol``, created on first use."""
        sim = self.equities.get(symbol)
        if sim is None:
            if len(self.equities) >= self.max_symbols:
                raise OverflowError("simulated symbol limit reached")
            sim = EquitySim(symbol, self.seed, self.vol)
            self.equities[symbol] = sim
        elif self.on_read is not None:
            self.on_read(sim)
        return sim

    def option(self, symbol: str, now: float) -> OptionSim:
        """The simulation of an OCC option symbol (``ValueError`` if malformed or expired)."""
        sim = self.options.get(symbol)
        if sim is not None:
            return sim
        occ = parse_occ(symbol)
        if occ.expiration < datetime.fromtimestamp(now, NY).date():
            raise ValueError(f"option {symbol!r} has expired")
        und = self.equity(occ.root)
        rng = np.random.default_rng(symbol_seed(self.seed, symbol))
        sim = OptionSim(
            symbol=symbol,
            underlying=occ.root,
            expiration=occ.expiration,
            put_call=occ.put_call,
            strike=float(occ.strike),
            base_vol=self.vol * 0.8,
            rng=rng,
        )
        sim.init_static(und.mark, now)
        sim.quote(und.mark, now, int(now * 1000))
        self.options[symbol] = sim
        return sim

    def strikes(self, underlying: str, count: int) -> list[float]:
        """The strike grid of ``underlying`` (``count`` each side of the first-seen spot)."""
        grid = self.chain_strikes.get(underlying)
        if grid is None or len(grid) < 2 * count + 1:
            spot = self.equity(underlying).mark
            step = strike_step(spot)
            atm = round(spot / step) * step
            grid = [
                round(atm + i * step, 2) for i in range(-count, count + 1) if atm + i * step > 0
            ]
            self.chain_strikes[underlying] = grid
        return grid

    def chain_symbols(
        self, underlying: str, today: date, count: int, expirations: int
    ) -> list[str]:
        """OCC symbols of the chain served for ``underlying``."""
        out = []
        for exp in weekly_expirations(today, expirations):
            for strike in self.strikes(underlying, count):
                for pc in ("C", "P"):
                    out.append(format_occ(underlying, exp, pc, strike))
        return out
