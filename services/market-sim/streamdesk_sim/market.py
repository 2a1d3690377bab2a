"""The simulated market: one seeded random path per equity, Black-Scholes options.

Determinism: every symbol owns a ``numpy`` generator seeded from ``(seed, symbol)`` and draws a
fixed number of variates per step, so step ``k`` of a symbol depends only on the seed, the
symbol and ``k`` (never on wall time, subscriptions or other symbols). Level-one fields are kept
as Schwab's numeric keys; each step returns only the fields whose value changed.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from streamdesk.models import format_occ, parse_occ
from streamdesk_sim.clock import NY
from streamdesk_sim.pricing import Greeks, black_scholes

YEAR_SECONDS = 365.0 * 24 * 3600
RISK_FREE = 0.045
_BLOCK = 256

# Reference prices so demos look familiar; any other symbol gets a seeded price.
BASE_PRICES = {
    "SPY": 520.0,
    "QQQ": 445.0,
    "IWM": 205.0,
    "DIA": 390.0,
    "AAPL": 190.0,
    "MSFT": 420.0,
    "NVDA": 120.0,
    "AMZN": 180.0,
    "GOOGL": 165.0,
    "META": 490.0,
    "TSLA": 180.0,
    "AMD": 160.0,
}


def symbol_seed(seed: int, symbol: str) -> list[int]:
    """Seed material of one symbol's generator."""
    digest = hashlib.sha256(symbol.encode()).digest()
    return [seed & 0xFFFFFFFF, int.from_bytes(digest[:8], "little")]


def cusip_for(symbol: str) -> str:
    """A stable fake 9-character CUSIP."""
    return f"{zlib.crc32(symbol.encode()):09d}"[-9:]


def _r2(x: float) -> float:
    return round(x + 0.0, 2)


# LEVELONE_EQUITIES field numbers used by the model (see schwab.streaming).
BID, ASK, LAST, BID_SIZE, ASK_SIZE, ASK_ID, BID_ID, VOLUME, LAST_SIZE = 1, 2, 3, 4, 5, 6, 7, 8, 9
HIGH, LOW, CLOSE, EXCH, MARGINABLE, DESC, LAST_ID, OPEN, NET_CHANGE = (
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
)
MARK, QUOTE_TIME, TRADE_TIME = 33, 34, 35
EQUITY_FIELD_COUNT = 52
EQUITY_KEYS = [str(i) for i in range(EQUITY_FIELD_COUNT)]


class EquitySim:
    """One equity's price path, quote and cumulative volume."""

    def __init__(self, symbol: str, seed: int, vol: float) -> None:
        self.symbol = symbol
        self.cusip = cusip_for(symbol)
        self.vol = vol
        self.rng = np.random.default_rng(symbol_seed(seed, symbol))
        base = BASE_PRICES.get(symbol)
        if base is None:
            base = float(math.exp(self.rng.uniform(math.log(15.0), math.log(400.0))))
        self.mid = base
        self.steps = 0
        self.trades = 0
        self._buf_i = _BLOCK
        self._normals = np.empty((0, 2))
        self._uniforms = np.empty((0, 5))
        half = self._half_spread(base)
        bid, ask = _r2(base - half), _r2(base + half)
        prev_close = _r2(base * (1 + float(self.rng.normal(0, 0.01))))
        self.values: list[Any] = [None] * EQUITY_FIELD_COUNT
        v = self.values
        v[0] = symbol
        v[BID], v[ASK], v[LAST] = bid, ask, _r2(base)
        v[BID_SIZE], v[ASK_SIZE] = 300, 400
        v[ASK_ID] = v[BID_ID] = v[EXCH] = v[LAST_ID] = "Q"
        v[VOLUME], v[LAST_SIZE] = 0, 0
        v[HIGH] = v[LOW] = v[OPEN] = _r2(base)
        v[CLOSE] = prev_close
        v[MARGINABLE] = True
        v[DESC] = f"{symbol} SIMULATED COMMON STOCK"
        v[NET_CHANGE] = _r2(v[LAST] - prev_close)
        v[19], v[20] = _r2(base * 1.35), _r2(base * 0.7)
        v[21], v[22], v[23], v[24] = 25.0, 0.0, 0.0, 0.0
        v[25] = "NASDAQ"
        v[26] = ""
        v[27] = v[28] = True
        v[29], v[30], v[31] = v[LAST], 0, v[NET_CHANGE]
        v[32] = "Normal"
        v[MARK] = _r2((bid + ask) / 2)
        v[QUOTE_TIME] = v[TRADE_TIME] = v[36] = v[37] = v[38] = 0
        v[39] = v[40] = v[41] = "XNAS"
        v[42] = v[43] = round(100 * v[NET_CHANGE] / prev_close, 4)
        v[44], v[45] = 0.0, 0.0
        v[46], v[47], v[48], v[49] = 0, 0.0, False, True
        v[50], v[51] = 0.0, 0.0

    @staticmethod
    def _half_spread(price: float) -> float:
        return max(0.005, price * 0.0001)

    def _draw(self) -> tuple[float, float, float, float, float, float, float]:
        if self._buf_i >= _BLOCK:
            self._normals = self.rng.standard_normal((_BLOCK, 2))
            self._uniforms = self.rng.random((_BLOCK, 5))
            self._buf_i = 0
        n = self._normals[self._buf_i]
        u = self._uniforms[self._buf_i]
        self._buf_i += 1
        return (
            float(n[0]),
            float(n[1]),
            float(u[0]),
            float(u[1]),
            float(u[2]),
            float(u[3]),
            float(u[4]),
        )

    def step(
        self, now_ms: int, dt_years: float, trade_prob: float, quote_prob: float
    ) -> dict[int, Any]:
        """Advance one step; return the fields that changed (empty if nothing did)."""
        z, z_size, u_trade, u_quote, u_side, u_bsz, u_asz = self._draw()
        self.steps += 1
        v = self.values
        changes: dict[int, Any] = {}

        def put(k: int, val: Any) -> None:
            if v[k] != val:
                v[k] = val
                changes[k] = val

        self.mid *= math.exp(-0.5 * self.vol**2 * dt_years + self.vol * math.sqrt(dt_years) * z)
        self.mid = max(self.mid, 0.05)
        if u_quote < quote_prob:
            half = self._half_spread(self.mid)
            bid = _r2(self.mid - half)
            ask = max(_r2(self.mid + half), _r2(bid + 0.01))
            put(BID, bid)
            put(ASK, ask)
            put(BID_SIZE, 100 * (1 + int(u_bsz * 20)))
            put(ASK_SIZE, 100 * (1 + int(u_asz * 20)))
            if changes:
                put(MARK, _r2((bid + ask) / 2))
                put(44, _r2(v[MARK] - v[CLOSE]))
                put(45, round(100 * v[44] / v[CLOSE], 4))
                put(QUOTE_TIME, now_ms)
                put(37, now_ms)
                put(38, now_ms)
        if u_trade < trade_prob:
            bid, ask = v[BID], v[ASK]
            price = bid if u_side < 0.45 else ask if u_side < 0.9 else _r2((bid + ask) / 2)
            size = max(1, round(math.exp(4.0 + 1.2 * z_size)))
            if size > 100:
                size = int(round(size, -2))
            self.trades += 1
            v[LAST] = price  # always resent on a trade, even at an unchanged price
            changes[LAST] = price
            v[LAST_SIZE] = size
            changes[LAST_SIZE] = size
            v[VOLUME] += size
            changes[VOLUME] = v[VOLUME]
            v[TRADE_TIME] = now_ms
            changes[TRADE_TIME] = now_ms
            put(29, price)
            put(30, size)
            put(36, now_ms)
            if self.trades == 1:
                put(OPEN, price)
            if price > v[HIGH]:
                put(HIGH, price)
            if price < v[LOW]:
                put(LOW, price)
            put(NET_CHANGE, _r2(price - v[CLOSE]))
            put(31, v[NET_CHANGE])
            put(42, round(100 * v[NET_CHANGE] / v[CLOSE], 4))
            put(43, v[42])
        return changes

    def set_price(self, price: float, now_ms: int) -> dict[int, Any]:
        """Move the market to ``price`` (admin); returns the changed quote fields."""
        self.mid = price
        v = self.values
        half = self._half_spread(price)
        changes: dict[int, Any] = {}
        for k, val in ((BID, _r2(price - half)), (ASK, _r2(price + half))):
            if v[k] != val:
                v[k] = val
                changes[k] = val
        v[MARK] = changes[MARK] = _r2((v[BID] + v[ASK]) / 2)
        v[QUOTE_TIME] = changes[QUOTE_TIME] = now_ms
        return changes

    @property
    def bid(self) -> float:
        return float(self.values[BID])

    @property
    def ask(self) -> float:
        return float(self.values[ASK])

    @property
    def last(self) -> float:
        return float(self.values[LAST])

    @property
    def mark(self) -> float:
        return float(self.values[MARK])


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
    greeks: Greeks | None = None

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
        self.greeks = g
        theo = g.price
        half = max(0.01, min(0.5, theo * 0.02))
        bid = max(0.0, _r2(theo - half))
        ask = max(_r2(theo + half), _r2(bid + 0.01))
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
        put(11, _r2(intrinsic))
        put(25, _r2(max(0.0, theo - intrinsic)))
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
        put(35, _r2(spot))
        put(37, _r2((bid + ask) / 2))
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
            put(19, _r2(price - v[7]))
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
        v[7] = _r2(g.price)  # previous close
        v[4] = v[5] = v[6] = v[15] = None
        v[8], v[18], v[19], v[44] = 0, 0, 0.0, 0.0
        v[39] = 0
        v[50], v[51] = _r2(g.price * 3), 0.01


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
