"""Session clock: always-open, the real NYSE calendar, or an accelerated NYSE day."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from streamdesk_sim.config import ClockMode

NY = ZoneInfo("America/New_York")
OPEN_MIN = 9 * 60 + 30
CLOSE_MIN = 16 * 60


def _easter(year: int) -> date:
    # Anonymous Gregorian algorithm.
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    month, day = divmod(h + ll - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    d = date(year, month, 1)
    d += timedelta(days=(weekday - d.weekday()) % 7)
    return d + timedelta(weeks=n - 1)


def _last_weekday(year: int, month: int, weekday: int) -> date:
    d = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - weekday) % 7)


def _observed(d: date) -> date:
    if d.weekday() == 5:
        return d - timedelta(days=1)
    if d.weekday() == 6:
        return d + timedelta(days=1)
    return d


def nyse_holidays(year: int) -> set[date]:
    """NYSE full-day holidays of ``year`` (rules since 2022, incl. Juneteenth)."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # MLK
        _nth_weekday(year, 2, 0, 3),  # Presidents
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial
        _observed(date(year, 6, 19)),
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # a Saturday New Year is not observed on Dec 31
        days.add(_observed(new_year))
    return days


def is_trading_day(d: date) -> bool:
    """True on NYSE trading days."""
    return d.weekday() < 5 and d not in nyse_holidays(d.year)


def in_regular_session(dt: datetime) -> bool:
    """True during 09:30-16:00 America/New_York on a trading day."""
    local = dt.astimezone(NY)
    minute = local.hour * 60 + local.minute
    return is_trading_day(local.date()) and OPEN_MIN <= minute < CLOSE_MIN


def session_bounds(d: date) -> tuple[datetime, datetime]:
    """Regular-session open and close of ``d`` (aware datetimes)."""
    start = datetime(d.year, d.month, d.day, 9, 30, tzinfo=NY)
    return start, start.replace(hour=16, minute=0)


def next_trading_day(d: date) -> date:
    """First trading day on or after ``d``."""
    while not is_trading_day(d):
        d += timedelta(days=1)
    return d


class SessionClock:
    """Sim time and whether the market is open.

    ``always`` and ``nyse`` run at wall time. ``accelerated`` starts at ``start`` (default:
    09:30 ET of the latest trading day) and runs ``speed`` times faster than the wall clock,
    following the NYSE session: outside regular hours it jumps to the next session open.
    """

    def __init__(self, mode: ClockMode, speed: float = 60.0, start: datetime | None = None):
        self.mode = mode
        self.speed = speed
        self._wall0 = time.time()
        if start is None:
            today = datetime.now(NY).date()
            d = today
            while not is_trading_day(d):
                d -= timedelta(days=1)
            start = session_bounds(d)[0]
        self._sim0 = start.timestamp()
        self._skip = 0.0  # seconds jumped over closed periods (accelerated)

    def now(self) -> float:
        """Sim time, epoch seconds."""
        wall = time.time()
        if self.mode is not ClockMode.ACCELERATED:
            return wall
        t = self._sim0 + (wall - self._wall0) * self.speed + self._skip
        dt = datetime.fromtimestamp(t, NY)
        if not in_regular_session(dt):
            d = dt.date()
            if not (is_trading_day(d) and dt.hour * 60 + dt.minute < OPEN_MIN):
                d = next_trading_day(d + timedelta(days=1))
            target = session_bounds(d)[0].timestamp()
            if target > t:
                self._skip += target - t
                t = target
        return t

    def now_ms(self) -> int:
        """Sim time, epoch milliseconds."""
        return int(self.now() * 1000)

    def is_open(self) -> bool:
        """Whether the simulated market trades now."""
        if self.mode is ClockMode.ALWAYS:
            return True
        return in_regular_session(datetime.fromtimestamp(self.now(), NY))

    def session_fraction(self) -> float | None:
        """Fraction of the regular session elapsed (0..1), None when closed or always-open."""
        if self.mode is ClockMode.ALWAYS:
            return None
        local = datetime.fromtimestamp(self.now(), NY)
        if not in_regular_session(local):
            return None
        minute = local.hour * 60 + local.minute + local.second / 60
        return (minute - OPEN_MIN) / (CLOSE_MIN - OPEN_MIN)

    def today(self) -> date:
        """Sim date in New York."""
        return datetime.fromtimestamp(self.now(), NY).date()
