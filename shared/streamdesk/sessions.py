"""Trading-session calendar: which regular session an epoch-ms timestamp belongs to.

Converting every tick with zoneinfo would cost microseconds per tick; instead the local day
containing a timestamp is computed once and cached, so the per-tick check is two integer
comparisons. DST is handled by zoneinfo when a day's bounds are computed.

Which days have a session, and when half days close, is the shared NYSE calendar's answer
(:mod:`streamdesk.market_calendar`) unless ``MARKET_HOURS=always`` (the simulator's 24/7
market), where every calendar day has a session from ``open`` to ``close``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from streamdesk.config import MarketHoursMode
from streamdesk.market_calendar import session_bounds


@dataclass(frozen=True, slots=True)
class SessionDay:
    """One local calendar day and its regular-session bounds, all in epoch ms."""

    ordinal: int  # date.toordinal() of the local day: the session key
    day_start: int
    day_end: int
    open_ms: int
    close_ms: int


def _parse_hhmm(value: str) -> time:
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class SessionCalendar:
    """Maps timestamps to :class:`SessionDay` (regular session ``open``-``close`` local time)."""

    def __init__(
        self,
        tz: str = "America/New_York",
        open_: str = "09:30",
        close: str = "16:00",
        mode: MarketHoursMode = MarketHoursMode.ALWAYS,
    ) -> None:
        self.tz = ZoneInfo(tz)
        self.mode = mode
        self.open = _parse_hhmm(open_)
        self.close = _parse_hhmm(close)
        if self.close <= self.open:
            raise ValueError("session close must be after open")
        self._cur: SessionDay | None = None
        self._cache: dict[int, SessionDay] = {}

    def _build(self, day: date) -> SessionDay:
        start = datetime.combine(day, time(0), self.tz)
        end = datetime.combine(day + timedelta(days=1), time(0), self.tz)
        open_ms = _ms(datetime.combine(day, self.open, self.tz))
        close_ms = _ms(datetime.combine(day, self.close, self.tz))
        if self.mode is not MarketHoursMode.ALWAYS:
            bounds = session_bounds(day, MarketHoursMode.REGULAR)
            if bounds is None:  # no session: nothing counts towards that day's VWAP
                open_ms = close_ms = _ms(start)
            else:
                close_ms = min(close_ms, _ms(bounds[1]))  # a half day closes early
        return SessionDay(
            ordinal=day.toordinal(),
            day_start=_ms(start),
            day_end=_ms(end),
            open_ms=open_ms,
            close_ms=close_ms,
        )

    def day_of(self, ts_ms: int) -> SessionDay:
        """The local day containing ``ts_ms`` (cached; O(1) for consecutive timestamps)."""
        cur = self._cur
        if cur is not None and cur.day_start <= ts_ms < cur.day_end:
            return cur
        local = datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(self.tz).date()
        sd = self._cache.get(local.toordinal())
        if sd is None:
            if len(self._cache) > 64:  # bounded: only recent days matter
                self._cache.clear()
            sd = self._build(local)
            self._cache[sd.ordinal] = sd
        self._cur = sd
        return sd
