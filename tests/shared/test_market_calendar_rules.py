"""The rule-based NYSE calendar against an independent one, and against NYSE's published dates.

``holidays`` (dev dependency only: it costs ~20 MB at run time) keeps its own NYSE calendar;
ours must agree with it for every year a deployment may still be running in.
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays as holidays_pkg
import pytest

from streamdesk.market_calendar import SPECIAL_CLOSURES, half_days, holidays, is_trading_day

pytestmark = pytest.mark.unit

YEARS = range(2022, 2051)


@pytest.mark.parametrize("year", YEARS)
def test_holidays_match_the_holidays_package(year: int) -> None:
    theirs = {d for d in holidays_pkg.financial_holidays("NYSE", years=year) if d.weekday() < 5}
    assert holidays(year) == theirs


def test_published_2025_to_2027_schedule() -> None:
    # NYSE's published holidays and early closes (the table this calendar replaced).
    published = {
        2025: ["01-01", "01-09", "01-20", "02-17", "04-18", "05-26", "06-19", "07-04", "09-01",
               "11-27", "12-25"],
        2026: ["01-01", "01-19", "02-16", "04-03", "05-25", "06-19", "07-03", "09-07", "11-26",
               "12-25"],
        2027: ["01-01", "01-18", "02-15", "03-26", "05-31", "06-18", "07-05", "09-06", "11-25",
               "12-24"],
    }  # fmt: skip
    early = {2025: ["07-03", "11-28", "12-24"], 2026: ["11-27", "12-24"], 2027: ["11-26"]}
    for year, days in published.items():
        assert holidays(year) == {date.fromisoformat(f"{year}-{d}") for d in days}
        assert half_days(year) == {date.fromisoformat(f"{year}-{d}") for d in early[year]}


def test_rules_that_have_exceptions() -> None:
    # New Year's Day on a Saturday (2022) is not observed on Friday 2021-12-31.
    assert is_trading_day(date(2021, 12, 31))
    # Juneteenth only from 2022.
    assert is_trading_day(date(2021, 6, 18))
    assert not is_trading_day(date(2022, 6, 20))  # observed on the Monday
    # July 3 on a Friday is the observed holiday, not an early close; Dec 24 on a Friday too.
    assert date(2026, 7, 3) not in half_days(2026) and not is_trading_day(date(2026, 7, 3))
    assert date(2027, 12, 24) not in half_days(2027)
    # Every special closure is a weekday and a closure.
    for day in SPECIAL_CLOSURES:
        assert day.weekday() < 5 and not is_trading_day(day)


@pytest.mark.parametrize("year", YEARS)
def test_half_days_are_trading_days_next_to_a_holiday(year: int) -> None:
    for day in half_days(year):
        assert is_trading_day(day)
        neighbours = {day + timedelta(days=1), day - timedelta(days=1)}
        assert neighbours & holidays(year), day
