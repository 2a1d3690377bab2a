"""Market-hours parsing: regular and extended sessions, half days, holidays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamdesk.config import MarketHoursMode
from streamdesk_streamer.hours import parse_market_hours

pytestmark = pytest.mark.unit


HOURS = {
    "equity": {
        "EQ": {
            "date": "2026-11-27",
            "isOpen": True,
            "sessionHours": {
                "preMarket": [
                    {"start": "2026-11-27T07:00:00-05:00", "end": "2026-11-27T09:30:00-05:00"}
                ],
                "regularMarket": [
                    {"start": "2026-11-27T09:30:00-05:00", "end": "2026-11-27T13:00:00-05:00"}
                ],
                "postMarket": [
                    {"start": "2026-11-27T13:00:00-05:00", "end": "2026-11-27T17:00:00-05:00"}
                ],
            },
        }
    }
}


def test_market_hours_regular_half_day_and_extended() -> None:
    reg = parse_market_hours(HOURS, MarketHoursMode.REGULAR)
    assert reg == [
        (datetime(2026, 11, 27, 14, 30, tzinfo=UTC), datetime(2026, 11, 27, 18, 0, tzinfo=UTC))
    ]
    ext = parse_market_hours(HOURS, MarketHoursMode.EXTENDED)
    assert len(ext) == 3
    assert min(s for s, _ in ext) == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_market_hours_holiday_is_closed() -> None:
    body = {"equity": {"EQ": {"date": "2026-11-26", "isOpen": False}}}
    assert parse_market_hours(body, MarketHoursMode.REGULAR) == []
    with pytest.raises(ValueError):
        parse_market_hours({"option": {}}, MarketHoursMode.REGULAR)
