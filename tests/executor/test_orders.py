"""Unit tests: order JSON built with schwab-py's builders, broker order parsing, matching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from trade_requests import req

from streamdesk_executor.orders import build_order, parse_order, parse_time
from streamdesk_executor.reconcile import match_orders

pytestmark = pytest.mark.unit

OPT = "AAPL  261218C00100000"


@pytest.mark.parametrize(
    ("kw", "instruction", "asset", "order_type", "price"),
    [
        ({}, "BUY", "EQUITY", "LIMIT", "100.05"),
        (
            {"instruction": "SELL", "order_type": "MARKET", "limit_price": None},
            "SELL",
            "EQUITY",
            "MARKET",
            None,
        ),
        (
            {
                "symbol": OPT,
                "asset_type": "OPTION",
                "instruction": "BUY_TO_OPEN",
                "limit_price": Decimal("1.25"),
            },
            "BUY_TO_OPEN",
            "OPTION",
            "LIMIT",
            "1.25",
        ),
        (
            {
                "symbol": OPT,
                "asset_type": "OPTION",
                "instruction": "SELL_TO_CLOSE",
                "order_type": "MARKET",
                "limit_price": None,
            },
            "SELL_TO_CLOSE",
            "OPTION",
            "MARKET",
            None,
        ),
        (
            {
                "symbol": OPT,
                "asset_type": "OPTION",
                "instruction": "SELL_TO_OPEN",
                "limit_price": Decimal("2"),
            },
            "SELL_TO_OPEN",
            "OPTION",
            "LIMIT",
            "2",
        ),
        (
            {
                "symbol": OPT,
                "asset_type": "OPTION",
                "instruction": "BUY_TO_CLOSE",
                "order_type": "MARKET",
                "limit_price": None,
            },
            "BUY_TO_CLOSE",
            "OPTION",
            "MARKET",
            None,
        ),
    ],
)
def test_build_order(
    kw: dict[str, Any], instruction: str, asset: str, order_type: str, price: str | None
) -> None:
    spec = build_order(req(**kw))
    assert spec["orderType"] == order_type
    assert spec.get("price") == price
    assert spec["duration"] == "DAY"
    leg = spec["orderLegCollection"][0]
    assert leg["instruction"] == instruction
    assert leg["instrument"]["assetType"] == asset
    assert leg["instrument"]["symbol"] == (OPT if asset == "OPTION" else "AAPL")
    assert leg["quantity"] == 10


def test_gtc_duration() -> None:
    assert build_order(req(duration="GOOD_TILL_CANCEL"))["duration"] == "GOOD_TILL_CANCEL"


def test_parse_time_formats() -> None:
    want = datetime(2026, 11, 25, 15, 0, 1, tzinfo=UTC)
    assert parse_time("2026-11-25T15:00:01+0000") == want
    assert parse_time("2026-11-25T15:00:01Z") == want
    assert parse_time("2026-11-25T15:00:01.000+00:00") == want
    assert parse_time("garbage") is None
    assert parse_time(None) is None


def raw_order(order_id: int, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "orderId": order_id,
        "status": "FILLED",
        "orderType": "LIMIT",
        "price": 100.05,
        "quantity": 10,
        "filledQuantity": 10,
        "enteredTime": "2026-11-25T15:00:01+0000",
        "orderLegCollection": [
            {
                "instruction": "BUY",
                "quantity": 10,
                "instrument": {"symbol": "AAPL", "assetType": "EQUITY"},
            }
        ],
        "orderActivityCollection": [
            {"executionLegs": [{"quantity": 4, "price": 100.0}, {"quantity": 6, "price": 100.05}]}
        ],
    }
    base.update(kw)
    return base


def test_parse_order_fills() -> None:
    o = parse_order(raw_order(7))
    assert o is not None
    assert o.order_id == "7" and o.final_status == "filled"
    assert o.price == Decimal("100.05") and o.quantity == 10 and o.filled_quantity == 10
    assert o.avg_fill_price == Decimal("100.030000")
    assert parse_order({"orderId": 1}) is None
    w = parse_order(raw_order(8, status="WORKING", filledQuantity=0, orderActivityCollection=[]))
    assert w is not None and w.final_status is None and w.avg_fill_price is None


def test_match_orders_rules() -> None:
    sub = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)
    trade = {
        "symbol": "AAPL",
        "instruction": "BUY",
        "quantity": Decimal(10),
        "order_type": "LIMIT",
        "limit_price": Decimal("100.05"),
        "submitted_at": sub,
    }
    orders = [
        parse_order(raw_order(1)),  # match
        parse_order(raw_order(2, price=100.06)),  # other price
        parse_order(raw_order(3, quantity=11)),  # other quantity
        parse_order(raw_order(4, enteredTime="2026-11-25T14:58:00+0000")),  # too early
        parse_order(
            raw_order(
                5,
                orderLegCollection=[
                    {
                        "instruction": "SELL",
                        "quantity": 10,
                        "instrument": {"symbol": "AAPL", "assetType": "EQUITY"},
                    }
                ],
            )
        ),  # other side
        parse_order(raw_order(6)),  # match but already linked
    ]
    parsed = [o for o in orders if o is not None]
    got = match_orders(trade, parsed, {"6"}, skew=60)
    assert [o.order_id for o in got] == ["1"]
    # with a wider skew the early one matches too -> ambiguous (two candidates)
    assert len(match_orders(trade, parsed, {"6"}, skew=300)) == 2
    assert sub - timedelta(seconds=60) < sub
