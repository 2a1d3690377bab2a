"""Load mode: thousands of symbols stepped and encoded to JSON in vectorized batches.

Load mode exists to drive a streamer client as hard as a real account's busiest day (and
harder): ``SIM_LOAD_SYMBOLS`` symbols ``LD00000``... updated round-robin at ``SIM_LOAD_RATE``
level-one updates per second. At 100k+ updates/s a per-update Python path (draw, dict of
changes, content dict, ``orjson.dumps``) costs the simulator more CPU than the client it is
meant to load, on the same cores. So this module keeps the book in NumPy arrays and writes the
``content`` JSON of a whole step from pre-encoded pieces:

- every update is one trade and one quote: the fields bid, ask, last, bid/ask size, cumulative
  volume, last size, mark, quote time and trade time (1, 2, 3, 4, 5, 8, 9, 33, 34, 35) are all
  sent on every update, restricted to the fields the connection subscribed. (Schwab sends only
  changed fields; a complete update is the heavier case for a client's decoder.)
- a content item is the symbol's constant head (``key``, ``delayed``, ``assetMainType``,
  ``assetSubType``, ``cusip``), encoded once per field set, then ``,"<field>":<value>`` pairs.
  Each numeric column is serialized for the whole step in one ``orjson`` call and split; the
  time fields, equal within a step, are folded into the constant separators; the pieces are
  interleaved by list-slice assignment and joined once.

Per-symbol :class:`~streamdesk_sim.equity.EquitySim` objects remain the source of truth for
snapshots, REST quotes and paper fills: :meth:`LoadBook.sync` copies a symbol's array values
into it whenever it is read through :meth:`Market.equity`. What was sent is counted per symbol
(:attr:`LoadBook.sent`), not logged entry by entry (see ``SentLog``). Deterministic for a given
seed and step schedule (one generator for the whole book).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson

from streamdesk_sim.equity import (
    ASK,
    ASK_SIZE,
    BID,
    BID_SIZE,
    LAST,
    LAST_SIZE,
    MARK,
    QUOTE_TIME,
    TRADE_TIME,
    VOLUME,
    EquitySim,
)
from streamdesk_sim.market import Market

#: The fields a load update carries, in the order they are written.
LOAD_FIELDS: tuple[int, ...] = (
    BID,
    ASK,
    LAST,
    BID_SIZE,
    ASK_SIZE,
    VOLUME,
    LAST_SIZE,
    MARK,
    QUOTE_TIME,
    TRADE_TIME,
)
_TIME_FIELDS = frozenset({QUOTE_TIME, TRADE_TIME})
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def load_fields(wanted: frozenset[int] | None) -> tuple[int, ...]:
    """The load fields a subscription with field set ``wanted`` (None = all) receives."""
    if wanted is None:
        return LOAD_FIELDS
    return tuple(f for f in LOAD_FIELDS if f in wanted)


class LoadBook:
    """Load-mode symbols as NumPy arrays; steps and JSON encoding are vectorized."""

    def __init__(self, market: Market, symbols: list[str], seed: int, vol: float) -> None:
        self.symbols = symbols
        self.index = {s: i for i, s in enumerate(symbols)}
        self.sims: list[EquitySim] = [market.equity(s) for s in symbols]
        self.vol = vol
        self.rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x10AD])
        n = len(symbols)

        def col(k: int, dtype: Any) -> np.ndarray[Any, Any]:
            return np.array([s.values[k] for s in self.sims], dtype=dtype)

        self.mid = np.array([s.mid for s in self.sims], dtype=np.float64)
        self.bid = col(BID, np.float64)
        self.ask = col(ASK, np.float64)
        self.last = col(LAST, np.float64)
        self.mark = col(MARK, np.float64)
        self.bid_size = col(BID_SIZE, np.int64)
        self.ask_size = col(ASK_SIZE, np.int64)
        self.last_size = col(LAST_SIZE, np.int64)
        self.volume = col(VOLUME, np.int64)
        self.time_ms = np.zeros(n, dtype=np.int64)
        self.trades = np.zeros(n, dtype=np.int64)
        #: Updates of each symbol written to websockets (over all connections).
        self.sent = np.zeros(n, dtype=np.int64)
        self._columns = {
            BID: self.bid,
            ASK: self.ask,
            LAST: self.last,
            BID_SIZE: self.bid_size,
            ASK_SIZE: self.ask_size,
            VOLUME: self.volume,
            LAST_SIZE: self.last_size,
            MARK: self.mark,
        }
        self._heads: list[bytes] = [
            orjson.dumps(
                {
                    "key": s.symbol,
                    "delayed": False,
                    "assetMainType": "EQUITY",
                    "assetSubType": "COE",
                    "cusip": s.cusip,
                }
            )[:-1]
            for s in self.sims
        ]

    def __len__(self) -> int:
        return len(self.symbols)

    def step(self, start: int, count: int, now_ms: int, dt_years: float) -> np.ndarray[Any, Any]:
        """Update ``count`` symbols from index ``start`` (wrapping); return their indices."""
        n = len(self.symbols)
        count = min(count, n)  # at most one update per symbol per step
        idx = np.arange(start, start + count) % n
        z = self.rng.standard_normal(count)
        u = self.rng.random((count, 4))
        mid = self.mid[idx] * np.exp(
            -0.5 * self.vol**2 * dt_years + self.vol * math.sqrt(dt_years) * z
        )
        mid = np.maximum(mid, 0.05)
        self.mid[idx] = mid
        half = np.maximum(0.005, mid * 0.0001)
        bid = np.round(mid - half, 2)
        ask = np.round(np.maximum(mid + half, bid + 0.01), 2)
        size = 100 * (1 + (u[:, 2] * 5).astype(np.int64))
        self.bid[idx] = bid
        self.ask[idx] = ask
        self.bid_size[idx] = 100 * (1 + (u[:, 0] * 20).astype(np.int64))
        self.ask_size[idx] = 100 * (1 + (u[:, 1] * 20).astype(np.int64))
        self.last[idx] = np.where(u[:, 3] < 0.5, bid, ask)
        self.last_size[idx] = size
        self.volume[idx] += size
        self.mark[idx] = np.round((bid + ask) / 2, 2)
        self.time_ms[idx] = now_ms
        self.trades[idx] += 1
        return idx

    def sync(self, sim: EquitySim) -> None:
        """Copy the array values of ``sim``'s symbol into it (no-op for other symbols)."""
        i = self.index.get(sim.symbol)
        if i is None or sim is not self.sims[i]:
            return
        v = sim.values
        sim.mid = float(self.mid[i])
        for k, column in self._columns.items():
            v[k] = column[i].item()
        if self.time_ms[i]:
            v[QUOTE_TIME] = v[TRADE_TIME] = int(self.time_ms[i])
        sim.trades = int(self.trades[i])

    def encode(self, sel: np.ndarray[Any, Any], fields: tuple[int, ...], now_ms: int) -> bytes:
        """The ``content`` items (comma-separated JSON objects) of symbols ``sel``.

        ``sel`` are indices updated in the current step (their time fields are ``now_ms``);
        ``fields`` comes from :func:`load_fields` and must not be empty.
        """
        # Row layout: head, then alternating constant text and one column value, then "},".
        # Constant-valued fields (the times) are folded into the constant text.
        m = len(sel)
        if not m or not fields:
            return b""
        template: list[bytes | None] = [None]
        columns: list[np.ndarray[Any, Any]] = []
        const = b""
        for f in fields:
            if f in _TIME_FIELDS:
                const += b',"%d":%d' % (f, now_ms)
            else:
                template.append(const + b',"%d":' % f)
                template.append(None)
                columns.append(self._columns[f][sel])
                const = b""
        template.append(const + b"},")
        width = len(template)
        pieces = template * m
        heads = self._heads
        pieces[0::width] = [heads[i] for i in sel.tolist()]
        for j, values in enumerate(columns):
            pieces[2 + 2 * j :: width] = orjson.dumps(values, option=_NUMPY)[1:-1].split(b",")
        return b"".join(pieces)[:-1]  # type: ignore[arg-type]
