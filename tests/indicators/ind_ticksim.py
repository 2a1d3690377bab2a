"""Deterministic realistic ticks and independent NumPy references for the indicators tests.

The references re-implement the documented rules (docs/indicators.md) vectorised with NumPy,
without sharing code with the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np

from streamdesk.models import EquityTick, OptionTick

ET = ZoneInfo("America/New_York")


def et_ms(day: date, hh: int, mm: int, ss: int = 0) -> int:
    """Epoch ms of a New York wall-clock time."""
    return int(datetime.combine(day, time(hh, mm, ss), ET).timestamp() * 1000)


def session_ticks(
    symbols: list[str],
    start_ms: int,
    end_ms: int,
    *,
    seed: int = 7,
    rate: float = 2.0,
    late_fraction: float = 0.01,
    start_cum: dict[str, int] | None = None,
    start_price: dict[str, float] | None = None,
) -> list[EquityTick]:
    """Poisson arrivals (``rate``/s per symbol), cent-rounded random-walk prices, lot-sized
    trades, quote-only updates, a few slightly out-of-order timestamps; merged by time."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, int, EquityTick]] = []
    for k, sym in enumerate(symbols):
        n = int((end_ms - start_ms) / 1000 * rate)
        gaps = rng.exponential(1000 / rate, n)
        ts = (start_ms + np.cumsum(gaps)).astype(np.int64)
        ts = ts[ts < end_ms]
        n = len(ts)
        base = (start_price or {}).get(sym, 50.0 + 90.0 * k)
        steps = rng.choice([-2, -1, 0, 0, 1, 2], size=n) * 0.01
        prices = np.round(base + np.cumsum(steps), 2)
        prices = np.maximum(prices, 1.0)
        sizes = rng.choice([0, 1, 5, 100, 100, 200, 300, 500, 1000], size=n)
        cum = (start_cum or {}).get(sym, 0) + np.cumsum(sizes)
        late = rng.random(n) < late_fraction
        ts_out = np.where(late, ts - rng.integers(1, 1500, n), ts)
        spread = rng.choice([1, 2, 3], size=n) * 0.01
        for i in range(n):
            p = float(prices[i])
            out.append(
                (
                    int(ts[i]),
                    k,
                    EquityTick(
                        sym,
                        int(ts_out[i]),
                        p,
                        round(p - float(spread[i]), 2),
                        round(p + float(spread[i]), 2),
                        int(cum[i]),
                        int(sizes[i]),
                    ),
                )
            )
    out.sort(key=lambda x: (x[0], x[1]))
    return [t for _, _, t in out]


def option_ticks(
    underlying: str,
    start_ms: int,
    end_ms: int,
    *,
    seed: int = 11,
    contracts: int = 4,
    rate: float = 1.5,
) -> list[OptionTick]:
    """Option updates for a few contracts; many repeat the previous values (no change)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, OptionTick]] = []
    for c in range(contracts):
        strike = 100.0 + 5 * c
        pc = "C" if c % 2 == 0 else "P"
        sym = f"{underlying:<6}261218{pc}{int(strike * 1000):08d}"
        n = int((end_ms - start_ms) / 1000 * rate)
        ts = (start_ms + np.cumsum(rng.exponential(1000 / rate, n))).astype(np.int64)
        ts = ts[ts < end_ms]
        last, vol = 3.0 + c, 0
        for t in ts:
            if rng.random() < 0.5:
                last = round(max(0.05, last + float(rng.choice([-0.05, 0.05]))), 2)
                vol += int(rng.integers(1, 20))
            out.append(
                (
                    int(t),
                    OptionTick(
                        sym,
                        int(t),
                        last,
                        round(last - 0.05, 2),
                        round(last + 0.05, 2),
                        vol,
                        1,
                        underlying,
                        pc,
                        strike,
                        "2026-12-18",
                        0.5,
                        0.01,
                        -0.02,
                        0.1,
                        0.01,
                        0.3,
                        1000,
                        100.0,
                    ),
                )
            )
    out.sort(key=lambda x: x[0])
    return [t for _, t in out]


@dataclass
class RefRows:
    """Reference per-second rows of one symbol."""

    sec: np.ndarray
    price: np.ndarray
    volume: np.ndarray
    sma9: np.ndarray  # nan where undefined
    vwap: np.ndarray  # nan where undefined


def reference(
    ticks: list[EquityTick],
    symbol: str,
    bar_seconds: int = 60,
    open_hm: tuple[int, int] = (9, 30),
    close_hm: tuple[int, int] = (16, 0),
) -> RefRows:
    """Per-second price/volume, SMA9 and session VWAP of ``symbol`` from raw ticks."""
    tk = [t for t in ticks if t.symbol == symbol]
    raw_ts = np.array([t.ts for t in tk], dtype=np.int64)
    ts = np.maximum.accumulate(raw_ts)  # late ticks fold into the current second
    price = np.array([t.last for t in tk], dtype=np.float64)
    cum = np.array([t.volume for t in tk], dtype=np.int64)
    prev = np.r_[-1, cum[:-1]]
    shares = np.where(prev < 0, 0, np.where(cum >= prev, cum - prev, cum))
    sec = ts - ts % 1000
    last_idx = np.flatnonzero(np.r_[sec[1:] != sec[:-1], True])
    first_idx = np.r_[0, last_idx[:-1] + 1]
    volume = np.add.reduceat(shares, first_idx)

    # session VWAP (sessions = New York calendar days, regular hours only)
    days = np.array(
        [datetime.fromtimestamp(x / 1000, UTC).astimezone(ET).date().toordinal() for x in ts]
    )
    opens = {d: et_ms(date.fromordinal(d), *open_hm) for d in set(days.tolist())}
    closes = {d: et_ms(date.fromordinal(d), *close_hm) for d in set(days.tolist())}
    o = np.array([opens[d] for d in days])
    c = np.array([closes[d] for d in days])
    inside = (ts >= o) & (ts < c)
    pv = np.where(inside, price.astype(np.longdouble) * shares, 0)
    vv = np.where(inside, shares, 0).astype(np.longdouble)
    cpv, cv = np.cumsum(pv), np.cumsum(vv)
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(ts)]))
    base_pv = np.r_[0, cpv][starts][seg]
    base_v = np.r_[0, cv][starts][seg]
    spv, sv = cpv - base_pv, cv - base_v
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap_t = np.where(sv > 0, spv / sv, np.nan).astype(np.float64)

    # SMA9 over bars; the forming bar's latest price is its close
    bar = ts // (bar_seconds * 1000)
    bar_last = np.flatnonzero(np.r_[bar[1:] != bar[:-1], True])
    closes_arr = price[bar_last]
    bar_pos = np.cumsum(np.r_[0, (bar[1:] != bar[:-1]).astype(np.int64)])  # index of tick's bar
    sma = np.full(len(last_idx), np.nan)
    for j, i in enumerate(last_idx):
        k = bar_pos[i]
        if k >= 8:
            sma[j] = np.mean(np.r_[closes_arr[k - 8 : k], price[i]])
    return RefRows(sec[last_idx], price[last_idx], volume, sma, vwap_t[last_idx])
