"""Order JSON of the order types of issue 18: every spec build_order sends is the schwab-py
builder chain docs/order-types.md names (no hand-written JSON), and parse_order reads Schwab's
order trees back (children through OCO containers, stop prices, strategy)."""

from __future__ import annotations

import copy
import itertools
from decimal import Decimal
from typing import Any

import pytest
from trade_requests import req

from streamdesk.models import Leg, OrderType, StopTrigger, TradeRequest
from streamdesk.schwab import schwab_common, schwab_equities, schwab_options
from streamdesk_executor.orders import (
    build_bracket,
    build_order,
    format_price,
    leg_children,
    order_builder,
    parse_order,
)

pytestmark = pytest.mark.unit

OPT = "AAPL  261218C00100000"
STOP_TYPE = {"LAST": "STANDARD", "BID": "BID", "ASK": "ASK", "MARK": "MARK"}
EQUITY = {
    "BUY": ("equity_buy_market", "equity_buy_limit"),
    "SELL": ("equity_sell_market", "equity_sell_limit"),
}
OPTION = {
    "BUY_TO_OPEN": ("option_buy_to_open_market", "option_buy_to_open_limit"),
    "SELL_TO_CLOSE": ("option_sell_to_close_market", "option_sell_to_close_limit"),
    "SELL_TO_OPEN": ("option_sell_to_open_market", "option_sell_to_open_limit"),
    "BUY_TO_CLOSE": ("option_buy_to_close_market", "option_buy_to_close_limit"),
}


def px(price: Decimal | None) -> str:
    assert price is not None
    return format_price(price)


def chain(r: TradeRequest) -> Any:
    """The builder chain of docs/order-types.md, "Order JSON", written out for ``r``."""
    module, names = (
        (schwab_equities, EQUITY) if r.asset_type == "EQUITY" else (schwab_options, OPTION)
    )
    market, limit = (getattr(module, n) for n in names[r.instruction])
    qty = int(r.quantity)
    c = schwab_common
    trigger = STOP_TYPE[(r.stop_trigger or StopTrigger.LAST).value]
    if r.order_type == "MARKET":
        b = market(r.symbol, qty)
    elif r.order_type == "LIMIT":
        b = limit(r.symbol, qty, px(r.limit_price))
    elif r.order_type == "STOP":
        b = market(r.symbol, qty).set_order_type(c.OrderType.STOP)
        b.set_stop_price(px(r.stop_price)).set_stop_type(c.StopType[trigger])
    elif r.order_type == "STOP_LIMIT":
        b = limit(r.symbol, qty, px(r.limit_price)).set_order_type(c.OrderType.STOP_LIMIT)
        b.set_stop_price(px(r.stop_price)).set_stop_type(c.StopType[trigger])
    else:
        basis = (r.stop_trigger or StopTrigger.LAST).value
        b = (
            market(r.symbol, qty)
            .set_order_type(c.OrderType.TRAILING_STOP)
            .set_stop_price_link_basis(c.StopPriceLinkBasis[basis])
            .set_stop_price_link_type(c.StopPriceLinkType[str(r.trail_type)])
            .set_stop_price_offset(float(r.trail_offset or 0))
            .set_stop_type(c.StopType[trigger])
        )
    return b.set_duration(c.Duration[r.duration.value])


def shapes() -> list[dict[str, Any]]:
    """Every order type with every trigger it takes."""
    out: list[dict[str, Any]] = [
        {"order_type": "MARKET", "limit_price": None},
        {"order_type": "LIMIT", "limit_price": Decimal("3.10")},
    ]
    for trig in (None, *StopTrigger):
        out.append(
            {
                "order_type": "STOP",
                "limit_price": None,
                "stop_price": Decimal("3.20"),
                "stop_trigger": trig,
            }
        )
        out.append(
            {
                "order_type": "STOP_LIMIT",
                "limit_price": Decimal("3.10"),
                "stop_price": Decimal("3.20"),
                "stop_trigger": trig,
            }
        )
        for kind, offset in (("VALUE", Decimal("0.25")), ("PERCENT", Decimal("2.5"))):
            out.append(
                {
                    "order_type": "TRAILING_STOP",
                    "limit_price": None,
                    "trail_type": kind,
                    "trail_offset": offset,
                    "stop_trigger": trig,
                }
            )
    return out


INSTRUCTIONS = [("AAPL", "EQUITY", i) for i in EQUITY] + [(OPT, "OPTION", i) for i in OPTION]


@pytest.mark.parametrize(("symbol", "asset", "instruction"), INSTRUCTIONS)
def test_every_single_order_is_its_builder_chain(symbol: str, asset: str, instruction: str) -> None:
    for shape, duration in itertools.product(shapes(), ("DAY", "GOOD_TILL_CANCEL")):
        r = req(
            symbol=symbol,
            asset_type=asset,
            instruction=instruction,
            quantity=Decimal(3),
            duration=duration,
            **shape,
        )
        spec = build_order(r)
        assert spec == chain(r).build(), shape
        assert spec["orderStrategyType"] == "SINGLE"
        assert spec["orderType"] == r.order_type.value


def test_the_stop_fields_as_schwab_spells_them() -> None:
    trailing = build_order(
        req(
            instruction="SELL",
            order_type="TRAILING_STOP",
            limit_price=None,
            trail_type="PERCENT",
            trail_offset=Decimal("2.5"),
            stop_trigger="BID",
        )
    )
    assert {
        k: trailing[k]
        for k in ("stopPriceLinkBasis", "stopPriceLinkType", "stopPriceOffset", "stopType")
    } == {
        "stopPriceLinkBasis": "BID",
        "stopPriceLinkType": "PERCENT",
        "stopPriceOffset": 2.5,
        "stopType": "BID",
    }
    assert "stopPrice" not in trailing and "price" not in trailing
    sl = build_order(
        req(
            instruction="SELL",
            order_type="STOP_LIMIT",
            limit_price=Decimal(99),
            stop_price=Decimal("99.50"),
        )
    )
    assert (sl["stopPrice"], sl["price"], sl["stopType"]) == ("99.50", "99", "STANDARD")


@pytest.mark.parametrize(
    ("entry", "exits"),
    [
        ({"take_profit_price": Decimal(110), "stop_loss_price": Decimal(95)}, 2),
        ({"take_profit_price": Decimal(110)}, 1),
        ({"stop_loss_price": Decimal(95)}, 1),
        (
            {
                "order_type": "MARKET",
                "limit_price": None,
                "take_profit_price": Decimal(110),
                "stop_loss_price": Decimal(95),
            },
            2,
        ),
        (
            {
                "symbol": OPT,
                "asset_type": "OPTION",
                "instruction": "SELL_TO_OPEN",
                "limit_price": Decimal("3.10"),
                "take_profit_price": Decimal("2.50"),
                "stop_loss_price": Decimal("4.00"),
                "duration": "GOOD_TILL_CANCEL",
            },
            2,
        ),
    ],
)
def test_a_bracket_is_first_triggers_second_of_its_legs(entry: dict[str, Any], exits: int) -> None:
    r = req(**entry)
    legs = [leg for _, leg in r.bracket_legs()]
    assert len(legs) == exits
    c = schwab_common
    first = chain(r.single())
    second = chain(legs[0]) if exits == 1 else c.one_cancels_other(*map(chain, legs))
    want = c.first_triggers_second(first, second).build()
    assert build_order(r) == want
    # the executor's way: the entry row and its leg rows
    assert build_bracket(r, legs) == want
    assert want["orderStrategyType"] == "TRIGGER"
    child = want["childOrderStrategies"]
    assert len(child) == 1
    if exits == 2:
        assert child[0]["orderStrategyType"] == "OCO" and "orderLegCollection" not in child[0]
        assert [o["orderType"] for o in child[0]["childOrderStrategies"]] == ["LIMIT", "STOP"]
    with pytest.raises(ValueError, match="one or two exits"):
        build_bracket(r, [])
    # a leg row's own order (e.g. its replacement) is that leg's builder chain
    assert order_builder(legs[-1]).build() == chain(legs[-1]).build()


# --------------------------------------------------------------------------- parse_order

#: Schwab's GET /accounts/{h}/orders/{id} of a bracket whose entry has filled: the TRIGGER
#: parent, an OCO container (no legs of its own), a take-profit working and a stop-loss
#: working (as the API documents and schwab-py users post them).
BRACKET_GET: dict[str, Any] = {
    "session": "NORMAL",
    "duration": "DAY",
    "orderType": "LIMIT",
    "complexOrderStrategyType": "NONE",
    "quantity": 10.0,
    "filledQuantity": 10.0,
    "remainingQuantity": 0.0,
    "requestedDestination": "AUTO",
    "destinationLinkName": "NITE",
    "price": 100.0,
    "orderLegCollection": [
        {
            "orderLegType": "EQUITY",
            "legId": 1,
            "instrument": {
                "assetType": "EQUITY",
                "cusip": "037833100",
                "symbol": "AAPL",
                "instrumentId": 1973757747,
            },
            "instruction": "BUY",
            "positionEffect": "OPENING",
            "quantity": 10.0,
        }
    ],
    "orderStrategyType": "TRIGGER",
    "orderId": 1000001,
    "cancelable": False,
    "editable": False,
    "status": "FILLED",
    "enteredTime": "2026-12-02T15:00:00+0000",
    "closeTime": "2026-12-02T15:00:01+0000",
    "accountNumber": 12345678,
    "orderActivityCollection": [
        {
            "activityType": "EXECUTION",
            "activityId": 5001,
            "executionType": "FILL",
            "quantity": 10.0,
            "orderRemainingQuantity": 0.0,
            "executionLegs": [
                {
                    "legId": 1,
                    "quantity": 6.0,
                    "mismarkedQuantity": 0.0,
                    "price": 99.98,
                    "time": "2026-12-02T15:00:01+0000",
                },
                {
                    "legId": 1,
                    "quantity": 4.0,
                    "mismarkedQuantity": 0.0,
                    "price": 100.0,
                    "time": "2026-12-02T15:00:01+0000",
                },
            ],
        }
    ],
    "childOrderStrategies": [
        {
            "orderStrategyType": "OCO",
            "orderId": 1000002,
            "cancelable": True,
            "editable": False,
            "status": "WORKING",
            "enteredTime": "2026-12-02T15:00:00+0000",
            "accountNumber": 12345678,
            "childOrderStrategies": [
                {
                    "session": "NORMAL",
                    "duration": "DAY",
                    "orderType": "LIMIT",
                    "quantity": 10.0,
                    "filledQuantity": 0.0,
                    "remainingQuantity": 10.0,
                    "price": 110.0,
                    "orderLegCollection": [
                        {
                            "orderLegType": "EQUITY",
                            "legId": 1,
                            "instrument": {"assetType": "EQUITY", "symbol": "AAPL"},
                            "instruction": "SELL",
                            "positionEffect": "CLOSING",
                            "quantity": 10.0,
                        }
                    ],
                    "orderStrategyType": "SINGLE",
                    "orderId": 1000003,
                    "cancelable": True,
                    "status": "WORKING",
                    "enteredTime": "2026-12-02T15:00:00+0000",
                },
                {
                    "session": "NORMAL",
                    "duration": "DAY",
                    "orderType": "STOP",
                    "quantity": 10.0,
                    "filledQuantity": 0.0,
                    "remainingQuantity": 10.0,
                    "stopPrice": 95.0,
                    "stopType": "STANDARD",
                    "orderLegCollection": [
                        {
                            "orderLegType": "EQUITY",
                            "legId": 1,
                            "instrument": {"assetType": "EQUITY", "symbol": "AAPL"},
                            "instruction": "SELL",
                            "positionEffect": "CLOSING",
                            "quantity": 10.0,
                        }
                    ],
                    "orderStrategyType": "SINGLE",
                    "orderId": 1000004,
                    "cancelable": True,
                    "status": "WORKING",
                    "enteredTime": "2026-12-02T15:00:00+0000",
                },
            ],
        }
    ],
}


def test_parse_a_schwab_bracket_tree() -> None:
    top = parse_order(BRACKET_GET)
    assert top is not None
    assert (top.order_id, top.status, top.strategy, top.final_status) == (
        "1000001",
        "FILLED",
        "TRIGGER",
        "filled",
    )
    assert top.avg_fill_price == Decimal("99.988") and top.stop_price is None
    tp, sl = top.children
    assert (tp.order_id, tp.order_type, tp.price, tp.stop_price) == (
        "1000003",
        "LIMIT",
        Decimal(110),
        None,
    )
    assert (sl.order_id, sl.order_type, sl.stop_price, sl.status) == (
        "1000004",
        "STOP",
        Decimal(95),
        "WORKING",
    )
    assert (sl.instruction, sl.quantity, sl.strategy, sl.children) == (
        "SELL",
        Decimal(10),
        "SINGLE",
        (),
    )
    assert leg_children(top) == {Leg.TAKE_PROFIT: tp, Leg.STOP_LOSS: sl}


def test_parse_a_filled_exit_cancels_its_sibling_and_a_moving_trail() -> None:
    raw = copy.deepcopy(BRACKET_GET)
    oco = raw["childOrderStrategies"][0]["childOrderStrategies"]
    oco[0].update(status="FILLED", filledQuantity=10.0)
    oco[1].update(
        status="CANCELED",
        orderType="TRAILING_STOP",
        stopPrice=104.37,
        stopPriceLinkBasis="LAST",
        stopPriceLinkType="VALUE",
        stopPriceOffset=2.0,
    )
    top = parse_order(raw)
    assert top is not None
    tp, sl = top.children
    assert (tp.final_status, sl.final_status) == ("filled", "cancelled")
    assert sl.order_type == "TRAILING_STOP" and sl.stop_price == Decimal("104.37")
    assert leg_children(top)[Leg.STOP_LOSS] is sl
    # an exit directly under the entry (one exit: no OCO container)
    raw["childOrderStrategies"] = [oco[1]]
    one = parse_order(raw)
    assert one is not None and [c.order_id for c in one.children] == ["1000004"]
    assert list(leg_children(one)) == [Leg.STOP_LOSS]
    # an OCO container alone is not an order we track; junk children are skipped
    assert parse_order(BRACKET_GET["childOrderStrategies"][0]) is None
    raw["childOrderStrategies"] = ["junk", {"orderStrategyType": "OCO"}, {"orderId": 9}]
    junk = parse_order(raw)
    assert junk is not None and junk.children == ()


@pytest.mark.parametrize("oco", [True, False])
def test_what_we_build_parses_back(oco: bool) -> None:
    r = (
        req(take_profit_price=Decimal(110), stop_loss_price=Decimal(95))
        if oco
        else req(stop_loss_price=Decimal(95))
    )
    spec = build_order(r)
    ids = itertools.count(7001)

    def accept(node: dict[str, Any]) -> None:  # what the broker adds: ids and statuses
        node.update(orderId=next(ids), status="AWAITING_PARENT_ORDER")
        for child in node.get("childOrderStrategies", []):
            accept(child)

    accept(spec)
    spec["status"] = "WORKING"
    top = parse_order(spec)
    assert top is not None and top.strategy == "TRIGGER" and top.price == Decimal("100.05")
    legs = dict(r.bracket_legs())
    got = leg_children(top)
    assert set(got) == set(legs)
    for leg, want in legs.items():
        child = got[leg]
        assert child.status == "AWAITING_PARENT_ORDER" and child.final_status is None
        assert (child.instruction, child.quantity, child.order_type) == (
            want.instruction.value,
            want.quantity,
            want.order_type.value,
        )
        assert child.price == want.limit_price and child.stop_price == want.stop_price
    assert OrderType.STOP.value in {c.order_type for c in top.children}
