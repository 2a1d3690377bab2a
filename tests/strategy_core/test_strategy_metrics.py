"""Metrics against values computed by hand on tiny series."""

from __future__ import annotations

import math

import pytest

from streamdesk.sessions import SessionCalendar
from streamdesk.strategy import metrics

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_772_460_000_000  # 2026-03-02 14:00 UTC (09:00 New York)


def test_sharpe_and_sortino_by_hand() -> None:
    r = [0.01, -0.02, 0.03]
    mean = 0.02 / 3
    sd = math.sqrt(((0.01 - mean) ** 2 + (-0.02 - mean) ** 2 + (0.03 - mean) ** 2) / 2)
    assert metrics.sharpe(r) == pytest.approx(mean / sd * math.sqrt(252), rel=1e-12)
    down = math.sqrt((0.02**2) / 3)
    assert metrics.sortino(r) == pytest.approx(mean / down * math.sqrt(252), rel=1e-12)
    assert metrics.sharpe([0.01]) is None
    assert metrics.sharpe([0.01, 0.01]) is None  # zero deviation
    assert metrics.sortino([0.01, 0.02]) is None  # no losing day


def test_max_drawdown_and_duration_by_hand() -> None:
    ts = [T0 + i * 60_000 for i in range(6)]
    eq = [100.0, 110.0, 99.0, 104.5, 121.0, 115.0]
    dd, dur = metrics.max_drawdown(ts, eq, 100.0, T0)
    assert dd == pytest.approx(1 - 99.0 / 110.0)
    assert dur == 2 * 60_000  # under the 110 peak from ts[1] to ts[3]
    assert metrics.max_drawdown(ts, [100.0, 90.0, 95.0, 80.0, 100.0, 101.0], 100.0, T0) == (
        pytest.approx(0.2),
        3 * 60_000,
    )


def test_trade_stats_by_hand() -> None:
    s = metrics.trade_stats([30.0, -10.0, 20.0, -5.0, 0.0])
    assert s["round_trips"] == 5 and s["wins"] == 2 and s["losses"] == 2
    assert s["win_rate"] == pytest.approx(0.4)
    assert s["profit_factor"] == pytest.approx(50.0 / 15.0)
    assert s["avg_trip_pnl"] == pytest.approx(7.0)
    assert metrics.trade_stats([5.0])["profit_factor"] is None
    assert metrics.trade_stats([])["win_rate"] is None


def test_compute_on_a_three_day_curve() -> None:
    # samples: two on day 1, one on day 2, two on day 3 (New York days)
    ts = [T0, T0 + 3_600_000, T0 + DAY, T0 + 2 * DAY, T0 + 2 * DAY + 60_000]
    eq = [1000.0, 1010.0, 990.0, 1000.0, 1030.0]
    out = metrics.compute(
        initial=1000.0,
        ts=ts,
        equity=eq,
        exposed=3,
        first_ts=T0,
        last_ts=ts[-1],
        trip_pnls=[40.0, -10.0],
        calendar=SessionCalendar(),
    )
    r = [1010 / 1000 - 1, 990 / 1010 - 1, 1030 / 990 - 1]
    mean = sum(r) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    years = (ts[-1] - T0) / (365.25 * DAY)
    assert out["days"] == 3
    assert out["total_return"] == pytest.approx(0.03)
    assert out["cagr"] == pytest.approx(1.03 ** (1 / years) - 1)
    assert out["sharpe"] == pytest.approx(mean / sd * math.sqrt(252))
    assert out["sortino"] == pytest.approx(mean / math.sqrt(r[1] ** 2 / 3) * math.sqrt(252))
    assert out["max_drawdown"] == pytest.approx(20 / 1010)
    assert out["exposure"] == pytest.approx(3 / 5)
    assert out["win_rate"] == 0.5 and out["profit_factor"] == 4.0
