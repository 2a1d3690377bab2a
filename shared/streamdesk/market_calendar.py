"""NYSE trading calendar: regular session, extended hours, holidays and half days.

Regular session 09:30-16:00 America/New_York on weekdays that are not exchange holidays;
13:00 close on half days. Extended hours are 04:00-20:00 (pre-market and after-hours; 17:00
on half days). Holidays and half days are listed for 2025-2027 (as published by NYSE);
outside that range only weekends are closed, so extend :data:`HOLIDAYS` and
:data:`HALF_DAYS` each year.

Every function takes the time as an argument: callers inject "now" (tests freeze it).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .config import MarketHoursMode

NEW_YORK = ZoneInfo("America/New_York")

REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
HALF_DAY_CLOSE = time(13, 0)
EXTENDED_OPEN = time(4, 0)
EXTENDED_CLOSE = time(20, 0)
HALF_DAY_EXTENDED_CLOSE = time(17, 0)

#: Full-day NYSE closures (weekdays only; weekends are closed anyway).
HOLIDAYS: frozenset[date] = frozenset(
    {
        # 2025
        date(2025, 1, 1),  # New Year's Day
        date(2025, 1, 9),  # National Day of Mourning (President Carter)
        date(2025, 1, 20),  # Martin Luther King Jr. Day
        date(2025, 2, 17),  # Washington's Birthday
        date(2025, 4, 18),  # Good Friday
        date(2025, 5, 26),  # Memorial Day
        date(2025, 6, 19),  # Juneteenth
        date(2025, 7, 4),  # Independence Day
        date(2025, 9, 1),  # Labor Day
        date(2025, 11, 27),  # Thanksgiving Day
        date(2025, 12, 25),  # Christmas Day
        # 2026
        date(2026, 1, 1),
        date(2026, 1, 19),
        date(2026, 2, 16),
        date(2026, 4, 3),  # Good Friday
        date(2026, 5, 25),
        date(2026, 6, 19),
        date(2026, 7, 3),  # Independence Day observed (July 4 is a Saturday)
        date(2026, 9, 7),
        date(2026, 11, 26),
        date(2026, 12, 25),
        # 2027
        date(2027, 1, 1),
        date(2027, 1, 18),
        date(2027, 2, 15),
        date(2027, 3, 26),  # Good Friday
        date(2027, 5, 31),
        date(2027, 6, 18),  # Juneteenth observed (June 19 is a Saturday)
        date(2027, 7, 5),  # Independence Day observed (July 4 is a Sunday)
        date(2027, 9, 6),
        date(2027, 11, 25),
        date(2027, 12, 24),  # Christmas observed (December 25 is a Saturday)
    }
)

#: Early closes (13:00 New York).
HALF_DAYS: frozenset[date] = frozenset(
    {
        date(2025, 7, 3),
        date(2025, 11, 28),
        date(2025, 12, 24),
        date(2026, 11, 27),
        date(2026, 12, 24),
        date(2027, 11, 26),
    }
)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("market calendar needs a timezone-aware datetime")
    return now


def is_trading_day(day: date) -> bool:
    """True if NYSE holds a session on ``day`` (a New York calendar date)."""
    return day.weekday() < 5 and day not in HOLIDAYS


def session_bounds(
    day: date, mode: MarketHoursMode = MarketHoursMode.REGULAR
) -> tuple[datetime, datetime] | None:
    """Open and close (aware, New York time) of ``day``'s session, or None if closed all day.

    ``mode`` selects regular or extended hours; ``ALWAYS`` returns the whole calendar day.
    """
    if mode is MarketHoursMode.ALWAYS:
        start = datetime.combine(day, time(0, 0), NEW_YORK)
        return start, start + timedelta(days=1)
    if not is_trading_day(day):
        return None
    half = day in HALF_DAYS
    if mode is MarketHoursMode.EXTENDED:
        opens, closes = EXTENDED_OPEN, HALF_DAY_EXTENDED_CLOSE if half else EXTENDED_CLOSE
    else:
        opens, closes = REGULAR_OPEN, HALF_DAY_CLOSE if half else REGULAR_CLOSE
    return datetime.combine(day, opens, NEW_YORK), datetime.combine(day, closes, NEW_YORK)


def is_market_open(now: datetime, mode: MarketHoursMode = MarketHoursMode.REGULAR) -> bool:
    """True if the market is open at ``now`` (aware) under ``mode``."""
    if mode is MarketHoursMode.ALWAYS:
        return True
    local = _aware(now).astimezone(NEW_YORK)
    bounds = session_bounds(local.date(), mode)
    return bounds is not None and bounds[0] <= local < bounds[1]


def current_session_open(
    now: datetime, mode: MarketHoursMode = MarketHoursMode.REGULAR
) -> datetime | None:
    """Start (UTC) of the session in progress at ``now``, or None when the market is closed.

    With ``ALWAYS`` there is no session start: None is returned (data must simply keep flowing).
    """
    if mode is MarketHoursMode.ALWAYS or not is_market_open(now, mode):
        return None
    bounds = session_bounds(_aware(now).astimezone(NEW_YORK).date(), mode)
    assert bounds is not None
    return bounds[0].astimezone(UTC)


def next_open(
    now: datetime, mode: MarketHoursMode = MarketHoursMode.REGULAR, *, max_days: int = 14
) -> datetime | None:
    """The next session open strictly after ``now`` (UTC), or None if none within ``max_days``."""
    if mode is MarketHoursMode.ALWAYS:
        return None
    local = _aware(now).astimezone(NEW_YORK)
    for offset in range(max_days + 1):
        bounds = session_bounds(local.date() + timedelta(days=offset), mode)
        if bounds is not None and bounds[0] > local:
            return bounds[0].astimezone(UTC)
    return None
