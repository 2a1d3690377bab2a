"""The fill model: market-sim's paper broker and the backtester use one price rule."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from streamdesk.strategy import fills
from streamdesk.strategy.fills import FillModel, bar_fill, touch_fill
from streamdesk_sim import matching

pytestmark = pytest.mark.unit


def test_market_sim_calls_the_shared_rule() -> None:
    # the same function object, not a copy
    assert matching.touch_fill is fills.touch_fill
    assert matching.MARKET_LIKE is fills.MARKET_LIKE


def _order(order_type: str, instruction: str, price: float | None) -> dict[str, Any]:
    o: dict[str, Any] = {
        "orderType": order_type,
        "orderLegCollection": [{"instruction": instruction}],
    }
    if price is not None:
        o["price"] = price
    return o


def test_market_sim_fill_price_equals_the_shared_rule_on_a_grid() -> None:
    quotes = [(99.0, 101.0), (100.0, 100.0), (0.0, 100.0), (100.0, 0.0), (104.0, 105.0)]
    types = ["MARKET", "LIMIT", "STOP", "STOP_LIMIT", "TRAILING_STOP"]
    sides = [("BUY", True), ("SELL", False), ("BUY_TO_COVER", True), ("SELL_SHORT", False)]
    checked = 0
    for (bid, ask), ot, (instr, buy), limit, trig in itertools.product(
        quotes, types, sides, [98.0, 100.0, 102.0, 104.5], [True, False]
    ):
        with_limit = ot in ("LIMIT", "STOP_LIMIT")
        o = _order(ot, instr, limit if with_limit else None)
        shared = touch_fill(ot, buy, bid, ask, limit if with_limit else None, trig)
        assert matching.fill_price(o, bid, ask, trig) == shared, (o, bid, ask, trig)
        checked += 1
    assert checked == 5 * 5 * 4 * 4 * 2


@pytest.mark.parametrize(
    ("order_type", "buy", "bid", "ask", "limit", "expected"),
    [
        ("MARKET", True, 99.0, 101.0, None, 101.0),  # a buy at the ask
        ("MARKET", False, 99.0, 101.0, None, 99.0),  # a sell at the bid
        ("LIMIT", True, 99.0, 101.0, 100.0, None),  # ask above the limit: no fill
        ("LIMIT", True, 99.0, 101.0, 101.0, 101.0),  # crossed: at the touch
        ("LIMIT", True, 97.0, 98.0, 101.0, 98.0),  # never worse than the limit: the touch
        ("LIMIT", False, 102.0, 103.0, 101.0, 102.0),
        ("LIMIT", False, 99.0, 101.0, 100.0, None),
        ("MARKET", True, 99.0, 0.0, None, None),  # no touch, no fill
    ],
)
def test_touch_rule(
    order_type: str, buy: bool, bid: float, ask: float, limit: float | None, expected: float | None
) -> None:
    assert touch_fill(order_type, buy, bid, ask, limit) == expected


def test_bar_rule_open_first_then_limit_inside_the_range() -> None:
    # open, high, low
    assert bar_fill("MARKET", True, 10.0, 11.0, 9.0, None) == 10.0
    assert bar_fill("LIMIT", True, 10.0, 11.0, 9.0, 10.5) == 10.0  # the open crosses
    assert bar_fill("LIMIT", True, 10.0, 11.0, 9.0, 9.5) == 9.5  # the range reaches it
    assert bar_fill("LIMIT", True, 10.0, 11.0, 9.6, 9.5) is None
    assert bar_fill("LIMIT", False, 10.0, 11.0, 9.0, 10.8) == 10.8
    assert bar_fill("LIMIT", False, 10.0, 10.7, 9.0, 10.8) is None
    assert bar_fill("LIMIT", False, 10.0, 11.0, 9.0, 9.9) == 10.0


def test_slippage_and_commission() -> None:
    fm = FillModel(slippage_bps=10, commission_per_share=0.01, commission_min=1.0)
    assert fm.slipped(100.0, True, None) == pytest.approx(100.1)
    assert fm.slipped(100.0, False, None) == pytest.approx(99.9)
    assert fm.slipped(100.0, True, 100.05) == 100.05  # capped at the limit
    assert fm.commission(10, 50.0) == 1.0  # the minimum
    assert fm.commission(500, 50.0) == pytest.approx(5.0)
    assert FillModel(commission_bps=2).commission(100, 50.0) == pytest.approx(1.0)
    assert FillModel().commission(100, 50.0) == 0.0
    with pytest.raises(ValueError, match="latency_ms must be finite and >= 0"):
        FillModel(latency_ms=-1)
    with pytest.raises(ValueError, match="slippage_bps"):
        FillModel(slippage_bps=float("inf"))
