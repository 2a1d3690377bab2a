"""Market hours from Schwab's own market-hours endpoint, fetched once per New York day.

``MARKET_HOURS=always`` streams around the clock (market-sim's default). ``regular`` uses the
``regularMarket`` session of the day, ``extended`` spans ``preMarket`` through ``postMarket``;
holidays come back with ``isOpen: false`` and half days with an early close, straight from
Schwab. If the endpoint fails, the shared NYSE calendar (``streamdesk.market_calendar``, the
stack's one answer to "is the market open?") decides.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from streamdesk.config import MarketHoursMode
from streamdesk.market_calendar import is_market_open

log = logging.getLogger(__name__)
NEW_YORK = ZoneInfo("America/New_York")

Session = tuple[datetime, datetime]


def parse_market_hours(body: Any, mode: MarketHoursMode) -> list[Session]:
    """Sessions (aware start, end) of the equity market in a market-hours response."""
    if not isinstance(body, dict):
        raise ValueError("market hours response is not an object")
    equity = body.get("equity")
    if not isinstance(equity, dict):
        raise ValueError("market hours response has no 'equity' market")
    sessions: list[Session] = []
    for product in equity.values():
        if not isinstance(product, dict) or not product.get("isOpen"):
            continue
        hours = product.get("sessionHours") or {}
        if not isinstance(hours, dict):
            continue
        names = (
            ("regularMarket",)
            if mode is MarketHoursMode.REGULAR
            else ("preMarket", "regularMarket", "postMarket")
        )
        for name in names:
            for span in hours.get(name) or []:
                start = datetime.fromisoformat(span["start"])
                end = datetime.fromisoformat(span["end"])
                if start.tzinfo is None or end.tzinfo is None:
                    raise ValueError("session times without a UTC offset")
                sessions.append((start, end))
    return sessions


class MarketHours:
    """Answers "is the market open now" for the configured mode, caching one day."""

    def __init__(self, mode: MarketHoursMode, *, timeout: float = 10.0) -> None:
        self.mode = mode
        self.timeout = timeout
        self._day: date | None = None
        self._sessions: list[Session] | None = None
        self.fetch_errors = 0

    async def is_open(self, client: Any, now: datetime) -> bool:
        """True if the market is open at ``now`` (aware)."""
        if self.mode is MarketHoursMode.ALWAYS:
            return True
        day = now.astimezone(NEW_YORK).date()
        if self._day != day or self._sessions is None:
            self._sessions = await self._fetch(client, day)
            self._day = day if self._sessions is not None else None
        if self._sessions is None:
            return self._fallback(now)
        return any(start <= now < end for start, end in self._sessions)

    async def _fetch(self, client: Any, day: date) -> list[Session] | None:
        try:
            resp = await asyncio.wait_for(
                client.get_market_hours([client.MarketHours.Market.EQUITY], date=day),
                self.timeout,
            )
            if resp.status_code != 200:
                raise ValueError(f"HTTP {resp.status_code}")
            sessions = parse_market_hours(resp.json(), self.mode)
        except Exception as exc:
            self.fetch_errors += 1
            log.warning("market hours for %s unavailable (%s); using the NYSE calendar", day, exc)
            return None
        log.info(
            "market hours for %s: %s", day, [(s.isoformat(), e.isoformat()) for s, e in sessions]
        )
        return sessions

    def _fallback(self, now: datetime) -> bool:
        return is_market_open(now, self.mode)
