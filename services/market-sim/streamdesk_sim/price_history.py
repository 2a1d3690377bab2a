"""Price history: deterministic candles that end at the symbol's current price.

Schwab's ``GET /marketdata/v1/pricehistory``: minute bars inside the regular session of
trading days (of every day with the always-open clock); daily, weekly (Mondays) and monthly
(first Monday) bars at the start of the day. The closes are walked backwards from the last
price with a generator seeded from (seed, symbol, frequency, number of bars), so the same
request at the same price gives the same candles.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from streamdesk_sim.clock import NY, is_trading_day, session_bounds
from streamdesk_sim.config import ClockMode
from streamdesk_sim.seeds import symbol_seed

if TYPE_CHECKING:
    from streamdesk_sim.sim import Sim

MAX_CANDLES = 20_000

_FREQ_MINUTES = {"minute": 1, "daily": 390, "weekly": 390 * 5, "monthly": 390 * 21}


def price_history(sim: Sim, q: dict[str, str]) -> dict[str, Any]:
    """Deterministic candles ending at the current price (minute bars only in sessions)."""
    symbol = q.get("symbol", "").upper()
    if not symbol:
        raise ValueError("symbol is required")
    freq_type = q.get("frequencyType", "minute").lower()
    freq = int(q.get("frequency", "1"))
    if freq_type not in _FREQ_MINUTES:
        raise ValueError(f"frequencyType {freq_type!r} not supported")
    now = sim.clock.now()
    end = float(q["endDate"]) / 1000 if q.get("endDate") else now
    if q.get("startDate"):
        start = float(q["startDate"]) / 1000
    else:
        period_type = q.get("periodType", "day").lower()
        period = int(q.get("period", "1" if period_type != "day" else "10"))
        days = {"day": 1, "month": 31, "year": 365, "ytd": 365}.get(period_type, 1) * period
        start = end - days * 86400
    if start > end:
        raise ValueError("startDate after endDate")
    times: list[float] = []
    d = datetime.fromtimestamp(start, NY).date()
    last_day = datetime.fromtimestamp(end, NY).date()
    always = sim.settings.clock is ClockMode.ALWAYS
    while d <= last_day and len(times) < MAX_CANDLES:
        if is_trading_day(d) or always:
            open_dt, close_dt = session_bounds(d)
            if freq_type == "minute":
                step = 60 * freq
                t = open_dt.timestamp()
                while t < close_dt.timestamp() and len(times) < MAX_CANDLES:
                    if start <= t <= end:
                        times.append(t)
                    t += step
            elif (
                freq_type == "daily"
                or (freq_type == "weekly" and d.weekday() == 0)
                or (freq_type == "monthly" and d.day <= 7 and d.weekday() == 0)
            ):
                day_start = datetime(d.year, d.month, d.day, tzinfo=NY).timestamp()
                if start - 86400 < day_start <= end:
                    times.append(day_start)
        d += timedelta(days=1)
    eq = sim.market.equity(symbol)
    rng = np.random.default_rng([*symbol_seed(sim.settings.seed, symbol), freq, len(times)])
    n = len(times)
    per_bar = sim.settings.volatility * math.sqrt(_FREQ_MINUTES[freq_type] * freq / (252 * 390))
    rets = rng.normal(0.0, per_bar, n)
    closes = np.empty(n)
    price = eq.last
    for i in range(n - 1, -1, -1):  # walk backwards from the current price
        closes[i] = price
        price = price / math.exp(float(rets[i]))
    candles = []
    prev = price
    for i in range(n):
        c = float(closes[i])
        o = float(prev)
        wig = abs(float(rng.normal(0, per_bar / 2))) * c
        candles.append(
            {
                "open": round(o, 2),
                "high": round(max(o, c) + wig, 2),
                "low": round(max(0.01, min(o, c) - wig), 2),
                "close": round(c, 2),
                "volume": int(abs(rng.normal(1, 0.3)) * 20_000 * freq),
                "datetime": int(times[i] * 1000),
            }
        )
        prev = c
    return {
        "symbol": symbol,
        "empty": not candles,
        "candles": candles,
        "previousClose": eq.values[12],
        "previousCloseDate": int((now - 86400) * 1000),
    }
