"""One simulated option contract, priced from its underlying by Black-Scholes on demand."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from streamdesk_sim.clock import NY
from streamdesk_sim.pricing import black_scholes, cents

YEAR_SECONDS = 365.0 * 24 * 3600
RISK_FREE = 0.045

# LEVELONE_OPTIONS field numbers.
OPTION_FIELD_COUNT = 56
OPTION_KEYS = [str(i) for i in range(OPTION_FIELD_COUNT)]


@dataclass
class OptionSim:
    """One option contract, priced from its underlying on demand."""

    symbol: str
    underlying: str
    expiration: date
    put_call: str  # "C" | "P"
    strike: float
    base_vol: float
    rng: np.random.Generator
    values: list[Any] = field(default_factory=lambda: [None] * OPTION_FIELD_COUNT)
    volume: int = 0
    open_interest: int = 0

    @property
    def is_call(self) -> bool:
        return self.put_call == "C"

    def expiry_dt(self) -> datetime:
        e = self.expiration
        return datetime(e.year, e.month, e.day, 16, 0, tzinfo=NY)

    def years_left(self, now: float) -> float:
        return max(0.0, (self.expiry_dt().timestamp() - now) / YEAR_SECONDS)

    def implied_vol(self, spot: float) -> float:
        # A mild smile: more vol away from the money.
        m = math.log(self.strike / spot)
        return self.base_vol * (1.0 + 0.8 * m * m + (0.15 * -m if m < 0 else 0.0))

    def quote(self, spot: float, now: float, now_ms: int) -> dict[int, Any]:
        """Reprice against ``spot``; return changed fields (trades occur at random)."""
        vol = self.implied_vol(spot)
        t = self.years_left(now)
        g = black_scholes(spot, self.strike, t, RISK_FREE, vol, self.is_call)
        theo = g.price
        half = max(0.01, min(0.5, theo * 0.02))
        bid = max(0.0, cents(theo - half))
        ask = max(cents(theo + half), cents(bid + 0.01))
        v = self.values
        changes: dict[int, Any] = {}

        def put(k: int, val: Any) -> None:
            if v[k] != val:
                v[k] = val
                changes[k] = val

        u_trade, u_size, u_side = (float(x) for x in self.rng.random(3))
        put(2, bid)
        put(3, ask)
        put(16, 10 + int(u_size * 40))
        put(17, 10 + int((1 - u_size) * 40))
        put(10, round(vol * 100, 3))
        intrinsic = max(0.0, spot - self.strike) if self.is_call else max(0.0, self.strike - spot)
        put(11, cents(intrinsic))
        put(25, cents(max(0.0, theo - intrinsic)))
        put(27, max(0, (self.expiration - datetime.fromtimestamp(now, NY).date()).days))
        # Published deltas stay strictly inside (0, 1) / (-1, 0), as Schwab reports them.
        delta = (
            min(0.9999, max(0.0001, g.delta))
            if self.is_call
            else min(-0.0001, max(-0.9999, g.delta))
        )
        put(28, round(delta, 4))
        put(29, round(g.gamma, 4))
        put(30, round(g.theta, 4))
        put(31, round(g.vega, 4))
        put(32, round(g.rho, 4))
        put(34, round(theo, 4))
        put(35, cents(spot))
        put(37, cents((bid + ask) / 2))
        if changes:
            put(38, now_ms)
        if u_trade < 0.3:
            size = 1 + int(u_size * 10)
            price = bid if u_side < 0.5 else ask
            self.volume += size
            v[4] = changes[4] = price
            v[18] = changes[18] = size
            v[8] = changes[8] = self.volume
            v[39] = changes[39] = now_ms
            if v[5] is None or price > v[5]:
                put(5, price)
            if v[6] is None or price < v[6]:
                put(6, price)
            if v[15] is None:
                put(15, price)
            put(19, cents(price - v[7]))
            put(44, round(100 * (price - v[7]) / v[7], 4) if v[7] else 0.0)
        return changes

    def init_static(self, spot: float, now: float) -> None:
        """Fill the fields that never change."""
        v = self.values
        v[0] = self.symbol
        e = self.expiration
        kind = "C" if self.is_call else "P"
        v[1] = f"{self.underlying} {e:%m/%d/%Y} {self.strike:.2f} {kind}"
        v[12], v[23], v[26] = e.year, e.month, e.day
        v[13], v[14] = 100.0, 2
        # Field 20: the strike price, as Schwab documents and sends it (schwab-py labels it
        # STRIKE_TYPE); the streamer checks it against the strike in the OCC symbol.
        v[20], v[21] = self.strike, kind
        v[22] = self.underlying
        v[24] = f"1 {self.underlying}"
        v[33] = "Normal"
        v[36] = "W"
        v[40], v[41] = "O", "OPR"
        v[42] = int(self.expiry_dt().timestamp() * 1000)
        v[43] = "P"
        v[45], v[46], v[47] = 0.0, 0.0, 0.0
        v[48], v[49] = True, self.underlying
        v[52], v[53], v[54], v[55] = 0.0, 0.0, 0, "A"
        self.open_interest = 100 + int(self.rng.random() * 5000)
        v[9] = self.open_interest
        vol = self.implied_vol(spot)
        g = black_scholes(spot, self.strike, self.years_left(now), RISK_FREE, vol, self.is_call)
        v[7] = cents(g.price)  # previous close
        v[4] = v[5] = v[6] = v[15] = None
        v[8], v[18], v[19], v[44] = 0, 0, 0.0, 0.0
        v[39] = 0
        v[50], v[51] = cents(g.price * 3), 0.01
