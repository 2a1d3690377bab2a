"""NYSE calendar: sessions, weekends, holidays, half days, extended hours."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from streamdesk.config import MarketHoursMode
from streamdesk.market_calendar import (
    current_session_open,
    is_market_open,
    is_trading_day,
    next_open,
    session_bounds,
)

pytestmark = pytest.mark.unit

NY = ZoneInfo("America/New_York")
REG = MarketHoursMode.REGULAR
EXT = MarketHoursMode.EXTENDED


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def test_regular_session_bounds_on_a_normal_day() -> None:
    # Wednesday 2026-03-11 (after the DST switch): 09:30-16:00 New York = 13:30-20:00 UTC.
    assert not is_market_open(ny(2026, 3, 11, 9, 29, 59), REG)
    assert is_market_open(ny(2026, 3, 11, 9, 30), REG)
    assert is_market_open(ny(2026, 3, 11, 15, 59, 59), REG)
    assert not is_market_open(ny(2026, 3, 11, 16, 0), REG)
    assert is_market_open(datetime(2026, 3, 11, 13, 30, tzinfo=UTC), REG)
    assert not is_market_open(datetime(2026, 3, 11, 13, 29, tzinfo=UTC), REG)


def test_weekend_and_holidays_are_closed() -> None:
    assert not is_trading_day(date(2026, 3, 14))  # Saturday
    assert not is_market_open(ny(2026, 3, 14, 11, 0), REG)
    for holiday in (date(2025, 12, 25), date(2026, 4, 3), date(2026, 7, 3), date(2027, 6, 18)):
        assert not is_trading_day(holiday)
        assert not is_market_open(ny(holiday.year, holiday.month, holiday.day, 11, 0), REG)
    assert session_bounds(date(2026, 11, 26), REG) is None  # Thanksgiving


def test_half_day_closes_at_one() -> None:
    assert is_market_open(ny(2026, 11, 27, 12, 59), REG)
    assert not is_market_open(ny(2026, 11, 27, 13, 0), REG)
    assert is_market_open(ny(2026, 11, 27, 16, 59), EXT)
    assert not is_market_open(ny(2026, 11, 27, 17, 0), EXT)


def test_extended_hours_are_schwabs() -> None:
    # Schwab's market-hours endpoint (and market-sim's) report pre-market from 07:00.
    assert is_market_open(ny(2026, 3, 11, 7, 0), EXT)
    assert is_market_open(ny(2026, 3, 11, 19, 59), EXT)
    assert not is_market_open(ny(2026, 3, 11, 20, 0), EXT)
    assert not is_market_open(ny(2026, 3, 11, 6, 59), EXT)


def test_always_is_always_open() -> None:
    assert is_market_open(ny(2026, 3, 14, 3, 0), MarketHoursMode.ALWAYS)
    assert current_session_open(ny(2026, 3, 14, 3, 0), MarketHoursMode.ALWAYS) is None
    assert next_open(ny(2026, 3, 14, 3, 0), MarketHoursMode.ALWAYS) is None


def test_session_open_and_next_open() -> None:
    assert current_session_open(ny(2026, 3, 11, 10, 0), REG) == ny(2026, 3, 11, 9, 30)
    assert current_session_open(ny(2026, 3, 11, 17, 0), REG) is None
    # Friday evening before a normal Monday -> Monday 09:30.
    assert next_open(ny(2026, 3, 13, 17, 0), REG) == ny(2026, 3, 16, 9, 30)
    # Wednesday before Thanksgiving evening -> Friday (half day) 09:30.
    assert next_open(ny(2026, 11, 25, 17, 0), REG) == ny(2026, 11, 27, 9, 30)
    # Before the open on a trading day -> the same day.
    assert next_open(ny(2026, 3, 11, 8, 0), REG) == ny(2026, 3, 11, 9, 30)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_market_open(datetime(2026, 3, 11, 10, 0), REG)
