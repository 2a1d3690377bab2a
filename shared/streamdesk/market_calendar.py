"""NYSE trading calendar: regular session, extended hours, holidays and half days.

The one answer to "is the market open?" for every service (market-sim's clock and its
market-hours endpoint, the streamer's fallback, risk, health, the indicators' VWAP session,
the gateway).

Regular session 09:30-16:00 America/New_York on weekdays that are not exchange holidays;
13:00 close on half days. Extended hours are Schwab's: pre-market from 07:00, after-hours to
20:00 (17:00 on half days), which is what its market-hours endpoint reports and its streamer
delivers.

Holidays and half days follow NYSE's rules (Rule 7.2), so the calendar does not expire:
New Year's Day (not observed on the Friday before when it falls on a Saturday), Martin
Luther King Jr. Day, Washington's Birthday, Good Friday, Memorial Day, Juneteenth (from 2022),
Independence Day, Labor Day, Thanksgiving and Christmas; a Saturday holiday is observed on the
Friday before, a Sunday one on the Monday after. Early closes: July 3 (Monday to Thursday),
the day after Thanksgiving, December 24 (Monday to Thursday). Unscheduled closures (national
days of mourning, weather) are listed in :data:`SPECIAL_CLOSURES` as NYSE announces them.
``tests/shared/test_market_calendar_rules.py`` checks the rules against the ``holidays``
package's NYSE calendar for the coming years.

Every function takes the time as an argument: callers inject "now" (tests freeze it).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from .config import MarketHoursMode

NEW_YORK = ZoneInfo("America/New_York")

REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
HALF_DAY_CLOSE = time(13, 0)
EXTENDED_OPEN = time(7, 0)
EXTENDED_CLOSE = time(20, 0)
HALF_DAY_EXTENDED_CLOSE = time(17, 0)

#: Unscheduled full-day closures announced by NYSE (not derivable from rules).
SPECIAL_CLOSURES: frozenset[date] = frozenset(
    {
        date(2012, 10, 29),  # Hurricane Sandy
        date(2012, 10, 30),  # Hurricane Sandy
        date(2018, 12, 5),  # National Day of Mourning (President George H. W. Bush)
        date(2025, 1, 9),  # National Day of Mourning (President Carter)
    }
)

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_shift) // 451
    month, day = divmod(h + weekday_shift - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7, weeks=n - 1)


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == SAT:
        return day - timedelta(days=1)
    if day.weekday() == SUN:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    """NYSE full-day closures in ``year``: the rule-based holidays plus special closures."""
    days = {
        _nth_weekday(year, 1, MON, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, MON, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, MON),  # Memorial Day
        _observed(date(year, 7, 4)),  # Independence Day
        _nth_weekday(year, 9, MON, 1),  # Labor Day
        _nth_weekday(year, 11, THU, 4),  # Thanksgiving Day
        _observed(date(year, 12, 25)),  # Christmas Day
    }
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    new_year = date(year, 1, 1)
    if new_year.weekday() != SAT:  # a Saturday New Year's Day is not observed on Dec 31
        days.add(_observed(new_year))
    days.update(d for d in SPECIAL_CLOSURES if d.year == year)
    return frozenset(d for d in days if d.weekday() < SAT)


@lru_cache(maxsize=64)
def half_days(year: int) -> frozenset[date]:
    """NYSE early closes (13:00 New York) in ``year``."""
    candidates = {
        date(year, 7, 3),
        _nth_weekday(year, 11, THU, 4) + timedelta(days=1),  # the day after Thanksgiving
        date(year, 12, 24),
    }
    closed = holidays(year)
    return frozenset(
        d for d in candidates if d.weekday() <= (FRI if d.month == 11 else THU) and d not in closed
    )


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("market calendar needs a timezone-aware datetime")
    return now


def is_trading_day(day: date) -> bool:
    """True if NYSE holds a session on ``day`` (a New York calendar date)."""
    return day.weekday() < SAT and day not in holidays(day.year)


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
    half = day in half_days(day.year)
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
