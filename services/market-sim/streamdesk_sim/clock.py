"""Session clock: always-open, the real NYSE calendar, or an accelerated NYSE day."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

from streamdesk.config import MarketHoursMode
from streamdesk.market_calendar import NEW_YORK as NY
from streamdesk.market_calendar import REGULAR_CLOSE, REGULAR_OPEN, is_market_open, is_trading_day
from streamdesk.market_calendar import session_bounds as _calendar_bounds
from streamdesk_sim.config import ClockMode

__all__ = ["NY", "SessionClock", "in_regular_session", "is_trading_day", "session_bounds"]


def in_regular_session(dt: datetime) -> bool:
    """True during the regular session of a trading day (the shared NYSE calendar: 13:00
    close on half days)."""
    return is_market_open(dt, MarketHoursMode.REGULAR)


def session_bounds(d: date) -> tuple[datetime, datetime]:
    """Regular-session open and close of ``d`` (aware datetimes): the calendar's on a trading
    day (13:00 close on half days), the nominal 09:30-16:00 on other days (the always-open
    clock trades on them too)."""
    bounds = _calendar_bounds(d, MarketHoursMode.REGULAR)
    if bounds is None:
        opens = datetime.combine(d, REGULAR_OPEN, NY)
        return opens, datetime.combine(d, REGULAR_CLOSE, NY)
    return bounds


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
            if not (is_trading_day(d) and dt < session_bounds(d)[0]):
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
        opens, closes = session_bounds(local.date())
        return (local - opens) / (closes - opens)

    def today(self) -> date:
        """Sim date in New York."""
        return datetime.fromtimestamp(self.now(), NY).date()
