"""Session calendar: New York open/close in UTC across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamdesk_indicators.sessions import SessionCalendar

pytestmark = pytest.mark.unit


def _ms(y: int, mo: int, d: int, h: int, mi: int) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("day", "open_utc", "close_utc", "hours"),
    [
        ((2026, 3, 6), (14, 30), (21, 0), 24),  # EST (UTC-5)
        ((2026, 3, 8), (13, 30), (20, 0), 23),  # spring forward: a 23-hour day
        ((2026, 3, 9), (13, 30), (20, 0), 24),  # EDT (UTC-4)
        ((2026, 11, 1), (14, 30), (21, 0), 25),  # fall back: a 25-hour day
    ],
)
def test_session_bounds_follow_new_york_time(
    day: tuple[int, int, int], open_utc: tuple[int, int], close_utc: tuple[int, int], hours: int
) -> None:
    cal = SessionCalendar()
    sd = cal.day_of(_ms(*day, *open_utc))
    assert sd.open_ms == _ms(*day, *open_utc)
    assert sd.close_ms == _ms(*day, *close_utc)
    assert sd.day_end - sd.day_start == hours * 3_600_000
    # the local day's bounds are consistent with the cached lookup
    assert cal.day_of(sd.day_start) == sd
    assert cal.day_of(sd.day_end - 1) == sd
    assert cal.day_of(sd.day_end) != sd


def test_custom_session_and_bad_bounds() -> None:
    cal = SessionCalendar("Europe/London", "08:00", "16:30")
    sd = cal.day_of(_ms(2026, 7, 1, 12, 0))
    assert sd.open_ms == _ms(2026, 7, 1, 7, 0)
    with pytest.raises(ValueError, match="after open"):
        SessionCalendar(open_="16:00", close="09:30")


def test_regular_mode_follows_the_shared_nyse_calendar() -> None:
    from streamdesk.config import MarketHoursMode

    always = SessionCalendar()
    regular = SessionCalendar(mode=MarketHoursMode.REGULAR)
    # Thanksgiving 2026: a session in the 24/7 simulator's calendar, none on the exchange.
    holiday = _ms(2026, 11, 26, 16, 0)
    assert always.day_of(holiday).open_ms < holiday < always.day_of(holiday).close_ms
    sd = regular.day_of(holiday)
    assert sd.open_ms == sd.close_ms == sd.day_start
    # The day after closes at 13:00 New York (18:00 UTC).
    half = regular.day_of(_ms(2026, 11, 27, 15, 0))
    assert half.open_ms == _ms(2026, 11, 27, 14, 30)
    assert half.close_ms == _ms(2026, 11, 27, 18, 0)
    assert always.day_of(_ms(2026, 11, 27, 15, 0)).close_ms == _ms(2026, 11, 27, 21, 0)
