"""Performance metrics of a backtest, from its equity samples and round trips.

Definitions (docs/strategies.md, "Metrics"); ``E0`` is the initial cash, ``E[i]`` the equity
(cash + positions marked at the last price) at sample ``i`` (one sample per equity interval
with events, at its last event), ``E_end`` the last sample:

* ``total_return`` = ``E_end / E0 - 1``.
* ``cagr`` = ``(E_end / E0) ** (1 / years) - 1``, ``years`` = (last event time - first event
  time) / 365.25 days; ``None`` for a span under one day or ``E_end <= 0``.
* daily returns ``r[d] = C[d] / C[d-1] - 1``: ``C[d]`` the last sample of session day ``d``
  (local trading day of the session calendar), ``C[-1] = E0``.
* ``sharpe`` = ``mean(r) / stdev(r) * sqrt(252)`` (sample stdev, risk-free rate 0; ``None``
  with fewer than 2 days or zero stdev).
* ``sortino`` = ``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(252)`` (downside deviation over
  all days; ``None`` with fewer than 2 days or no negative day).
* ``max_drawdown`` = ``max_i (1 - E[i] / max_{j<=i} E[j])`` with ``E0`` as the first peak
  (a fraction, >= 0); ``max_drawdown_duration_ms``: the longest time below a previous peak.
* ``win_rate`` = winning round trips / closed round trips (``pnl > 0`` wins; ``None``: none).
* ``profit_factor`` = sum of winning pnl / -sum of losing pnl (``None`` without a loss).
* ``exposure`` = share of equity samples at which a position was held.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from streamdesk.sessions import SessionCalendar

TRADING_DAYS = 252
YEAR_MS = 365.25 * 86_400_000


def daily_closes(
    ts: Sequence[int], equity: Sequence[float], calendar: SessionCalendar
) -> list[tuple[int, float]]:
    """``(day ordinal, last equity of that day)`` per session day, in order."""
    out: list[tuple[int, float]] = []
    for t, e in zip(ts, equity, strict=True):
        # a sample at the very end of a day (a bar closing at midnight) belongs to that day
        d = calendar.day_of(t - 1).ordinal
        if out and out[-1][0] == d:
            out[-1] = (d, e)
        else:
            out.append((d, e))
    return out


def returns(closes: Sequence[float], initial: float) -> list[float]:
    """Simple returns of ``closes`` with ``initial`` before the first."""
    prev = initial
    out: list[float] = []
    for c in closes:
        out.append(c / prev - 1.0 if prev else 0.0)
        prev = c
    return out


def sharpe(r: Sequence[float], periods: int = TRADING_DAYS) -> float | None:
    """Annualised Sharpe ratio of per-period returns ``r`` (risk-free 0)."""
    n = len(r)
    if n < 2:
        return None
    mean = math.fsum(r) / n
    var = math.fsum((x - mean) ** 2 for x in r) / (n - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(periods)


def sortino(r: Sequence[float], periods: int = TRADING_DAYS) -> float | None:
    """Annualised Sortino ratio of per-period returns ``r`` (target 0)."""
    n = len(r)
    if n < 2:
        return None
    down = math.fsum(min(x, 0.0) ** 2 for x in r) / n
    if down <= 0:
        return None
    return math.fsum(r) / n / math.sqrt(down) * math.sqrt(periods)


def max_drawdown(
    ts: Sequence[int], equity: Sequence[float], initial: float, start_ts: int | None = None
) -> tuple[float, int]:
    """``(max drawdown fraction, longest time under water in ms)``; ``initial`` is the first
    peak, at ``start_ts`` (default: the first sample's time)."""
    peak = initial
    peak_ts = start_ts if start_ts is not None else (ts[0] if ts else 0)
    worst = 0.0
    longest = 0
    for t, e in zip(ts, equity, strict=True):
        if e >= peak:
            peak, peak_ts = e, t
        else:
            if peak > 0:
                worst = max(worst, 1.0 - e / peak)
            longest = max(longest, t - peak_ts)
    return worst, longest


def trade_stats(pnls: Sequence[float]) -> dict[str, Any]:
    """Win rate, profit factor and counts of closed round trips' ``pnls``."""
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_win = math.fsum(wins)
    gross_loss = -math.fsum(losses)
    return {
        "round_trips": len(pnls),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate": len(wins) / len(pnls) if pnls else None,
        "profit_factor": gross_win / gross_loss if gross_loss > 0 else None,
        "gross_profit": gross_win,
        "gross_loss": gross_loss,
        "avg_trip_pnl": math.fsum(pnls) / len(pnls) if pnls else None,
    }


def compute(
    *,
    initial: float,
    ts: Sequence[int],
    equity: Sequence[float],
    exposed: int,
    first_ts: int | None,
    last_ts: int | None,
    trip_pnls: Sequence[float],
    calendar: SessionCalendar,
) -> dict[str, Any]:
    """Every metric of the module docstring, as a JSON-ready dict."""
    final = equity[-1] if len(equity) else initial
    out: dict[str, Any] = {
        "initial_equity": initial,
        "final_equity": final,
        "total_return": final / initial - 1.0,
        "samples": len(equity),
        "exposure": exposed / len(equity) if len(equity) else 0.0,
    }
    span = (last_ts - first_ts) if first_ts is not None and last_ts is not None else 0
    years = span / YEAR_MS
    out["years"] = years
    out["cagr"] = (
        (final / initial) ** (1.0 / years) - 1.0 if span >= 86_400_000 and final > 0 else None
    )
    closes = daily_closes(ts, equity, calendar)
    r = returns([c for _, c in closes], initial)
    out["days"] = len(r)
    out["sharpe"] = sharpe(r)
    out["sortino"] = sortino(r)
    dd, dd_ms = max_drawdown(ts, equity, initial, first_ts)
    out["max_drawdown"] = dd
    out["max_drawdown_duration_ms"] = dd_ms
    out.update(trade_stats(trip_pnls))
    return out
