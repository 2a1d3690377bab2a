"""Average-cost P&L arithmetic (pure): partial fills, buy then sell, shorts, crossing zero,
the option multiplier, only fills since the start of the day counted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from streamdesk_gateway.pnl import Book, Fill, realized_since, signed_quantity, unrealized

pytestmark = pytest.mark.unit

DAY = datetime(2026, 3, 10, 4, tzinfo=UTC)  # New York midnight (EDT)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, tzinfo=UTC)


def test_buy_then_sell_realizes_the_difference() -> None:
    fills = [Fill(at(14), "BUY", D(10), D("100")), Fill(at(15), "SELL", D(10), D("101.5"))]
    realized, book = realized_since(fills, DAY)
    assert realized == D("15.0") and book.quantity == 0 and book.average == 0


def test_partial_fills_average_then_partial_close() -> None:
    fills = [
        Fill(at(14), "BUY", D(3), D("100")),
        Fill(at(14, 1), "BUY", D(1), D("104")),  # average (300 + 104) / 4 = 101
        Fill(at(15), "SELL", D(2), D("103")),  # realizes (103 - 101) * 2
    ]
    realized, book = realized_since(fills, DAY)
    assert realized == D(4)
    assert book.quantity == 2 and book.average == D(101)


def test_short_then_cover() -> None:
    fills = [Fill(at(14), "SELL", D(5), D("50")), Fill(at(15), "BUY", D(5), D("48"))]
    realized, book = realized_since(fills, DAY)
    assert realized == D(10) and book.quantity == 0


def test_crossing_through_zero_opens_the_rest_at_the_fill_price() -> None:
    book = Book()
    book.apply(D(2), D(10))
    assert book.apply(D(-5), D(12)) == D(4)  # closes 2 at +2
    assert book.quantity == -3 and book.average == D(12)
    assert book.apply(D(3), D(11)) == D(3)  # short covered 1 lower
    assert book.realized == D(7)


def test_options_multiplier() -> None:
    fills = [
        Fill(at(14), "BUY_TO_OPEN", D(2), D("1.25")),
        Fill(at(15), "SELL_TO_CLOSE", D(2), D("1.75")),
    ]
    realized, _ = realized_since(fills, DAY, asset_type="OPTION")
    assert realized == D(100)  # 0.50 * 2 contracts * 100
    written = [Fill(at(14), "SELL_TO_OPEN", D(1), D(3)), Fill(at(15), "BUY_TO_CLOSE", D(1), D(2))]
    assert realized_since(written, DAY, asset_type="OPTION")[0] == D(100)


def test_only_fills_since_the_day_start_count_and_the_opening_position() -> None:
    yesterday = datetime(2026, 3, 9, 15, tzinfo=UTC)
    fills = [
        Fill(yesterday, "BUY", D(10), D(100)),
        Fill(yesterday, "SELL", D(5), D(110)),  # +50, yesterday
        Fill(at(15), "SELL", D(5), D(90)),  # -50, today
    ]
    assert realized_since(fills, DAY)[0] == D(-50)
    # a position held before any recorded fill opens at the synced average
    opened = realized_since(
        [Fill(at(15), "SELL", D(4), D(30))], DAY, opening_quantity=D(4), opening_average=D(25)
    )
    assert opened[0] == D(20) and opened[1].quantity == 0


def test_unrealized_and_signs() -> None:
    assert unrealized(D(10), D(100), D(101), "EQUITY") == D(10)
    assert unrealized(D(-10), D(100), D(101), "EQUITY") == D(-10)
    assert unrealized(D(2), D("1.5"), D("1.2"), "OPTION") == D(-60)
    assert unrealized(D(2), D(1), None, "OPTION") is None
    assert signed_quantity("SELL_TO_OPEN", D(3)) == D(-3)
    with pytest.raises(ValueError, match="unknown instruction"):
        signed_quantity("HOLD", D(1))
