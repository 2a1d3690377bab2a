"""Validated path and query parameters of the market-data routes (bad input -> 422)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import HTTPException, Path, Query

from streamdesk.clock import Clock

from .market_sql import ny_date

TICKER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9./]{0,11}$"
# OCC option symbols pad the root with spaces ("SPY   260320C00500000")
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9./ ]{0,31}$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_DATE_RE = re.compile(DATE_PATTERN)

TickerPath = Annotated[
    str, Path(pattern=TICKER_PATTERN, description="Equity ticker (A-Z, digits, '.', '/').")
]
SymbolPath = Annotated[
    str, Path(pattern=SYMBOL_PATTERN, description="Equity ticker or OCC option symbol.")
]
SessionQuery = Annotated[
    str | None,
    Query(pattern=DATE_PATTERN, description="New York date YYYY-MM-DD; default the latest."),
]


def parse_session(value: str | None) -> date | None:
    """``YYYY-MM-DD`` as a date (1970-2200); 422 otherwise (never an overflow later)."""
    if value is None:
        return None
    if not _DATE_RE.match(value):
        raise HTTPException(422, f"session {value!r} is not a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"session {value!r} is not a valid date") from None
    if not date(1970, 1, 2) <= day <= date(2200, 1, 1):
        raise HTTPException(422, f"session {value!r} is out of range (1970-2200)")
    return day


def today(clock: Clock) -> date:
    """Today in New York by the app's clock."""
    return ny_date(clock.now())
