"""Pinned clocks for tests whose behaviour depends on whether the market is open.

``market_clock`` runs a test twice: once with the process clock pinned (by ``time_machine``,
ticking) inside a regular session and once on a weekend. Code under test reads "now" through
``streamdesk.clock.SYSTEM_CLOCK`` (``time.time()``), so heartbeats written, ages computed and
the calendar consulted all agree on the pinned moment, while ``time.monotonic()`` (asyncio's
timers, timeouts) keeps running for real. Postgres and Redis are separate processes and keep
the real time: a test that stores timestamps writes the pinned "now" explicitly and creates
the partitions of the pinned day (:data:`PINNED_DAYS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

NEW_YORK = ZoneInfo("America/New_York")

#: Wednesday 11 March 2026, 11:00 New York: the regular session is open.
MARKET_OPEN_AT = datetime(2026, 3, 11, 11, 0, tzinfo=NEW_YORK)
#: Saturday 14 March 2026, 12:00 New York: no session (and none in extended hours).
MARKET_CLOSED_AT = datetime(2026, 3, 14, 12, 0, tzinfo=NEW_YORK)
#: The New York dates of both moments (tests that write rows create these partitions).
PINNED_DAYS = (MARKET_OPEN_AT.date(), MARKET_CLOSED_AT.date())


@dataclass(frozen=True)
class MarketMoment:
    """The moment a test runs at."""

    name: str
    at: datetime
    market_open: bool

    @property
    def day(self) -> date:
        """The New York calendar date of the moment."""
        return self.at.astimezone(NEW_YORK).date()


MOMENTS = {
    "market-open": MarketMoment("market-open", MARKET_OPEN_AT, True),
    "market-closed": MarketMoment("market-closed", MARKET_CLOSED_AT, False),
}


@pytest.fixture(params=sorted(MOMENTS))
def market_clock(request: pytest.FixtureRequest) -> Iterator[MarketMoment]:
    """Pin the process clock (ticking) at a moment with the market open, then closed."""
    moment = MOMENTS[request.param]
    with time_machine.travel(moment.at, tick=True):
        yield moment
