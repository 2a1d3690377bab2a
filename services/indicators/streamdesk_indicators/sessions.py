"""Re-export of :mod:`streamdesk.sessions`, the trading-session calendar.

It lives in the shared package beside the indicator engine that needs it
(:mod:`streamdesk.indicators`), which the backtester shares with this service.
"""

from streamdesk.sessions import SessionCalendar, SessionDay

__all__ = ["SessionCalendar", "SessionDay"]
