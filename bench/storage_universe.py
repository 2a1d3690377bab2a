"""The reference universe, seeded: 5 tickers and 200 option contracts, every second.

Shared by ``bench/bench_storage.py`` and ``tests/storage``. Each second every ticker trades
once (2-decimal random walk, ~20% annual volatility) and every contract is repriced from its
underlying with market-sim's Black-Scholes and market-sim's rounding (prices 2 decimals,
greeks 4, IV in percent to 3 decimals, a trade in 30% of the seconds), so every instrument
changes every second, as in the reference workload.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from streamdesk.models import EquityTick, OptionTick
from streamdesk_sim.pricing import black_scholes

TICKERS = {"SPY": 500.0, "QQQ": 430.0, "AAPL": 190.0, "MSFT": 410.0, "NVDA": 120.0}
SESSION_SECONDS = 23_400  # 09:30-16:00
_YEAR = 365.0 * 86400
_SIGMA_S = 0.2 / math.sqrt(252 * SESSION_SECONDS)


def session_open_utc(day: date) -> datetime:
    """09:30 New York of ``day`` in UTC (no zoneinfo needed: DST from the US rule)."""
    from zoneinfo import ZoneInfo

    local = datetime(day.year, day.month, day.day, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    return local.astimezone(UTC)


def occ(root: str, expiry: date, put_call: str, strike: float) -> str:
    """OCC symbol as Schwab spells it (root padded to 6)."""
    return f"{root:<6}{expiry:%y%m%d}{put_call}{round(strike * 1000):08d}"


@dataclass
class Contract:
    symbol: str
    underlying: str
    put_call: str
    strike: float
    expiry: date
    base_vol: float
    volume: int = 0
    open_interest: int = 0
    last: float = float("nan")


def contracts(
    day: date, per_underlying: int = 40, tickers: tuple[str, ...] = tuple(TICKERS)
) -> list[Contract]:
    """``per_underlying`` contracts per ticker: strikes around the money, 2 Fridays, C and P."""
    fridays = []
    d = day + timedelta(days=1)
    while len(fridays) < 2:
        if d.weekday() == 4:
            fridays.append(d)
        d += timedelta(days=1)
    out = []
    rng = random.Random(11)
    n_strikes = per_underlying // 4
    for root in tickers:
        spot = TICKERS[root]
        step = 5.0 if spot >= 200 else 2.5
        atm = round(spot / step) * step
        for expiry in fridays:
            for i in range(-(n_strikes // 2), n_strikes - n_strikes // 2):
                k = atm + i * step
                for pc in ("C", "P"):
                    out.append(
                        Contract(
                            occ(root, expiry, pc, k),
                            root,
                            pc,
                            k,
                            expiry,
                            0.16,
                            open_interest=rng.randint(100, 20_000),
                        )
                    )
    return out


def session(
    day: date,
    seconds: int = SESSION_SECONDS,
    seed: int = 42,
    per_underlying: int = 40,
    tickers: tuple[str, ...] = tuple(TICKERS),
) -> Iterator[tuple[int, list[EquityTick], list[OptionTick]]]:
    """Yield (second_ms, equity ticks, option ticks) for each second of the session."""
    rng = random.Random(seed)
    spots = {t: TICKERS[t] for t in tickers}
    cum = dict.fromkeys(tickers, 0)
    chain = contracts(day, per_underlying, tickers)
    t_open = int(session_open_utc(day).timestamp() * 1000)
    for s in range(seconds):
        sec_ms = t_open + s * 1000
        eq = []
        for sym in tickers:
            spot = max(0.01, round(spots[sym] * math.exp(rng.gauss(0.0, _SIGMA_S)), 2))
            spots[sym] = spot
            size = 100 * rng.randint(1, 20)
            cum[sym] += size
            eq.append(
                EquityTick(
                    sym,
                    sec_ms + rng.randint(0, 999),
                    spot,
                    round(spot - 0.01, 2),
                    round(spot + 0.01, 2),
                    cum[sym],
                    size,
                )
            )
        opts = []
        now = sec_ms / 1000
        for c in chain:
            spot = spots[c.underlying]
            m = math.log(c.strike / spot)
            vol = c.base_vol * (1.0 + 0.8 * m * m + (0.15 * -m if m < 0 else 0.0))
            expiry_s = datetime(c.expiry.year, c.expiry.month, c.expiry.day, 20, tzinfo=UTC)
            t = max(0.0, (expiry_s.timestamp() - now) / _YEAR)
            g = black_scholes(spot, c.strike, t, 0.04, vol, c.put_call == "C")
            half = max(0.01, min(0.5, g.price * 0.02))
            bid = max(0.0, round(g.price - half, 2))
            ask = max(round(g.price + half, 2), round(bid + 0.01, 2))
            size = 0
            if rng.random() < 0.3:
                size = 1 + int(rng.random() * 10)
                c.volume += size
                c.last = bid if rng.random() < 0.5 else ask
            delta = (
                min(0.9999, max(0.0001, g.delta))
                if c.put_call == "C"
                else min(-0.0001, max(-0.9999, g.delta))
            )
            opts.append(
                OptionTick(
                    c.symbol,
                    sec_ms + rng.randint(0, 999),
                    c.last,
                    bid,
                    ask,
                    c.volume,
                    size,
                    c.underlying,
                    c.put_call,
                    c.strike,
                    c.expiry.isoformat(),
                    round(delta, 4),
                    round(g.gamma, 4),
                    round(g.theta, 4),
                    round(g.vega, 4),
                    round(g.rho, 4),
                    round(vol * 100, 3),
                    c.open_interest,
                    spot,
                )
            )
        yield sec_ms, eq, opts


def session_rows(
    day: date, seconds: int = SESSION_SECONDS, seed: int = 42, per_underlying: int = 40
) -> Iterator[tuple[list[EquityTick], list[tuple[Any, ...]]]]:
    """Like :func:`session`, vectorised (numpy, bench only): per second the equity ticks and
    the option rows as the indicators engine emits them (``OptRow``; a contract that did not
    change in a second has no row). ``np.round`` gives the same doubles as parsing the
    rounded decimals, as a feed's JSON would."""
    import numpy as np

    def ndtr(x: Any) -> Any:
        # normal CDF via Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7; values are rounded to 4)
        z = np.abs(x) / math.sqrt(2.0)
        t = 1.0 / (1.0 + 0.3275911 * z)
        poly = t * (
            0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
        )
        erf = 1.0 - poly * np.exp(-z * z)
        return 0.5 * (1.0 + np.sign(x) * erf)

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    spots = dict(TICKERS)
    cum = dict.fromkeys(TICKERS, 0)
    chain = contracts(day, per_underlying)
    und = np.array([list(TICKERS).index(c.underlying) for c in chain])
    strike = np.array([c.strike for c in chain])
    call = np.array([c.put_call == "C" for c in chain])
    expiry = np.array(
        [
            datetime(c.expiry.year, c.expiry.month, c.expiry.day, 20, tzinfo=UTC).timestamp()
            for c in chain
        ]
    )
    oi = [c.open_interest for c in chain]
    static = [
        (c.symbol, c.underlying, "CALL" if c.put_call == "C" else "PUT", c.strike, c.expiry)
        for c in chain
    ]
    volume = np.zeros(len(chain), dtype=np.int64)
    last = np.full(len(chain), np.nan)
    prev: list[tuple[Any, ...] | None] = [None] * len(chain)
    t_open = int(session_open_utc(day).timestamp() * 1000)
    for s in range(seconds):
        sec_ms = t_open + s * 1000
        eq = []
        for sym in TICKERS:
            spot = max(0.01, round(spots[sym] * math.exp(rng.gauss(0.0, _SIGMA_S)), 2))
            spots[sym] = spot
            size = 100 * rng.randint(1, 20)
            cum[sym] += size
            eq.append(
                EquityTick(
                    sym,
                    sec_ms + rng.randint(0, 999),
                    spot,
                    round(spot - 0.01, 2),
                    round(spot + 0.01, 2),
                    cum[sym],
                    size,
                )
            )
        spot = np.array(list(spots.values()))[und]
        m = np.log(strike / spot)
        vol = 0.16 * (1.0 + 0.8 * m * m + np.where(m < 0, 0.15 * -m, 0.0))
        t = np.maximum((expiry - sec_ms / 1000) / _YEAR, 1.0 / (365.0 * 24 * 60))
        sq = np.sqrt(t)
        d1 = (np.log(spot / strike) + (0.04 + 0.5 * vol * vol) * t) / (vol * sq)
        d2 = d1 - vol * sq
        disc = np.exp(-0.04 * t)
        pdf = np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
        gamma = pdf / (spot * vol * sq)
        vega = spot * pdf * sq / 100.0
        price = np.where(
            call,
            spot * ndtr(d1) - strike * disc * ndtr(d2),
            strike * disc * ndtr(-d2) - spot * ndtr(-d1),
        )
        delta = np.where(
            call, np.clip(ndtr(d1), 0.0001, 0.9999), np.clip(ndtr(d1) - 1.0, -0.9999, -0.0001)
        )
        theta = np.where(
            call,
            (-spot * pdf * vol / (2 * sq) - 0.04 * strike * disc * ndtr(d2)) / 365.0,
            (-spot * pdf * vol / (2 * sq) + 0.04 * strike * disc * ndtr(-d2)) / 365.0,
        )
        rho = np.where(
            call, strike * t * disc * ndtr(d2) / 100.0, -strike * t * disc * ndtr(-d2) / 100.0
        )
        price = np.maximum(price, 0.0)
        half = np.clip(price * 0.02, 0.01, 0.5)
        bid = np.maximum(0.0, np.round(price - half, 2))
        ask = np.maximum(np.round(price + half, 2), np.round(bid + 0.01, 2))
        trade = nrng.random(len(chain)) < 0.3
        sizes = 1 + (nrng.random(len(chain)) * 10).astype(np.int64)
        side = nrng.random(len(chain)) < 0.5
        volume += np.where(trade, sizes, 0)
        last = np.where(trade, np.where(side, bid, ask), last)
        cols = [np.round(x, 4).tolist() for x in (delta, gamma, theta, vega, rho)]
        ivs = np.round(vol * 100, 3).tolist()
        rows = []
        for i, (sym, u, typ, k, exp) in enumerate(static):
            lp = float(last[i])
            vals = (
                None if lp != lp else lp,
                float(bid[i]),
                float(ask[i]),
                cols[0][i],
                cols[1][i],
                cols[2][i],
                cols[3][i],
                cols[4][i],
                ivs[i],
                int(volume[i]),
                oi[i],
                float(spot[i]),
            )
            if vals != prev[i]:
                prev[i] = vals
                rows.append((sym, sec_ms, u, typ, k, exp, *vals, False))
        yield eq, rows
