"""One simulated equity: a seeded GBM mid price, a quote around it, random trades.

Level-one fields are kept as Schwab's numeric keys (``schwab.streaming``); each step returns
only the fields whose value changed. The path is deterministic per (seed, symbol): see
:mod:`streamdesk_sim.seeds`.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from streamdesk_sim.pricing import cents
from streamdesk_sim.seeds import symbol_seed

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


def cusip_for(symbol: str) -> str:
    """A stable fake 9-character CUSIP."""
    return f"{zlib.crc32(symbol.encode()):09d}"[-9:]


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
        self.trades = 0
        self._buf_i = _BLOCK
        self._normals = np.empty((0, 2))
        self._uniforms = np.empty((0, 5))
        half = self._half_spread(base)
        bid, ask = cents(base - half), cents(base + half)
        prev_close = cents(base * (1 + float(self.rng.normal(0, 0.01))))
        self.values: list[Any] = [None] * EQUITY_FIELD_COUNT
        v = self.values
        v[0] = symbol
        v[BID], v[ASK], v[LAST] = bid, ask, cents(base)
        v[BID_SIZE], v[ASK_SIZE] = 300, 400
        v[ASK_ID] = v[BID_ID] = v[EXCH] = v[LAST_ID] = "Q"
        v[VOLUME], v[LAST_SIZE] = 0, 0
        v[HIGH] = v[LOW] = v[OPEN] = cents(base)
        v[CLOSE] = prev_close
        v[MARGINABLE] = True
        v[DESC] = f"{symbol} SIMULATED COMMON STOCK"
        v[NET_CHANGE] = cents(v[LAST] - prev_close)
        v[19], v[20] = cents(base * 1.35), cents(base * 0.7)
        v[21], v[22], v[23], v[24] = 25.0, 0.0, 0.0, 0.0
        v[25] = "NASDAQ"
        v[26] = ""
        v[27] = v[28] = True
        v[29], v[30], v[31] = v[LAST], 0, v[NET_CHANGE]
        v[32] = "Normal"
        v[MARK] = cents((bid + ask) / 2)
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
            bid = cents(self.mid - half)
            ask = max(cents(self.mid + half), cents(bid + 0.01))
            put(BID, bid)
            put(ASK, ask)
            put(BID_SIZE, 100 * (1 + int(u_bsz * 20)))
            put(ASK_SIZE, 100 * (1 + int(u_asz * 20)))
            if changes:
                put(MARK, cents((bid + ask) / 2))
                put(44, cents(v[MARK] - v[CLOSE]))
                put(45, round(100 * v[44] / v[CLOSE], 4))
                put(QUOTE_TIME, now_ms)
                put(37, now_ms)
                put(38, now_ms)
        if u_trade < trade_prob:
            bid, ask = v[BID], v[ASK]
            price = bid if u_side < 0.45 else ask if u_side < 0.9 else cents((bid + ask) / 2)
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
            put(NET_CHANGE, cents(price - v[CLOSE]))
            put(31, v[NET_CHANGE])
            put(42, round(100 * v[NET_CHANGE] / v[CLOSE], 4))
            put(43, v[42])
        return changes

    def set_price(self, price: float, now_ms: int, trade: bool = False) -> dict[int, Any]:
        """Move the market to ``price`` (admin); returns the changed fields.

        The quote moves around ``price``; with ``trade`` a 100-share trade also prints at
        ``price`` (so the last price, which stops watch by default, moves too).
        """
        self.mid = price
        v = self.values
        half = self._half_spread(price)
        changes: dict[int, Any] = {}
        for k, val in ((BID, cents(price - half)), (ASK, cents(price + half))):
            if v[k] != val:
                v[k] = val
                changes[k] = val
        v[MARK] = changes[MARK] = cents((v[BID] + v[ASK]) / 2)
        v[QUOTE_TIME] = changes[QUOTE_TIME] = now_ms
        if trade:
            last = cents(price)
            self.trades += 1
            v[VOLUME] += 100
            trade_fields = ((LAST, last), (LAST_SIZE, 100), (VOLUME, v[VOLUME]),
                            (TRADE_TIME, now_ms), (29, last), (30, 100), (36, now_ms))  # fmt: skip
            for k, val in trade_fields:
                v[k] = changes[k] = val
            if last > v[HIGH]:
                v[HIGH] = changes[HIGH] = last
            if last < v[LOW]:
                v[LOW] = changes[LOW] = last
            v[NET_CHANGE] = changes[NET_CHANGE] = cents(last - v[CLOSE])
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
