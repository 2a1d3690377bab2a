"""Stops, trailing stops and conditional orders (TRIGGER / OCO) at market-sim, through the real
schwab-py client and its order builders (issue 18, docs/order-types.md "market-sim").

The simulator runs with its market loops effectively stopped (a 60 s step period) and the
always-open clock, so prices move only when a test moves them (``/admin/market/{s}/price``,
which also runs the matching engine): every outcome is decided by the test's own price path,
at any hour, without waiting on the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from schwab.orders.common import (
    OrderType,
    StopPriceLinkBasis,
    StopPriceLinkType,
    StopType,
    first_triggers_second,
    one_cancels_other,
)
from schwab.orders.equities import (
    equity_buy_limit,
    equity_buy_market,
    equity_sell_limit,
    equity_sell_market,
)
from schwab.orders.generic import OrderBuilder
from schwab.utils import Utils

from streamdesk.config import CommonSettings, load_settings
from streamdesk.schwab import ensure_paper_token, make_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim(
    tmp_path_factory: pytest.TempPathFactory, start_market_sim: Callable[..., Any]
) -> Iterator[Any]:
    s = start_market_sim(
        tmp_path_factory.mktemp("market-sim-order-types"),
        seed=1,
        clock="always",
        tick_interval=60,
        option_interval=60,
        heartbeat_interval=30,
    )
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def schwab(sim: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = load_settings(
        CommonSettings, **sim.settings_overrides(tmp_path_factory.mktemp("client"))
    )
    assert ensure_paper_token(settings) is True
    c = make_client(settings)
    yield c
    c.session.close()


class Desk:
    """The client, the account and the market of one test."""

    def __init__(self, sim: Any, client: Any) -> None:
        self.sim = sim
        self.client = client
        self.account = str(client.get_account_numbers().json()[0]["hashValue"])

    def move(self, symbol: str, price: float, *, trade: bool = True) -> None:
        """The market of ``symbol`` to ``price`` (bid/ask 0.01 % around it; with ``trade``
        the last price too); the matching engine runs before this returns."""
        self.sim.admin_post(f"market/{symbol}/price", {"price": price, "trade": trade})

    def place(self, order: OrderBuilder) -> int:
        r = self.client.place_order(self.account, order)
        assert r.status_code == 201, r.text
        return int(Utils(self.client, self.account).extract_order_id(r))

    def order(self, order_id: int) -> dict[str, Any]:
        r = self.client.get_order(order_id, self.account)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def status(self, order_id: int) -> str:
        return str(self.order(order_id)["status"])

    def hold(self, symbol: str, qty: int, price: float = 100.0) -> None:
        """A long position of ``qty`` bought at about ``price``."""
        self.move(symbol, price)
        order_id = self.place(equity_buy_market(symbol, qty))
        self.move(symbol, price)
        assert self.status(order_id) == "FILLED"

    def position(self, symbol: str) -> float:
        acct = self.client.get_account(self.account, fields=self.client.Account.Fields.POSITIONS)
        positions = acct.json()["securitiesAccount"]["positions"]
        return sum(p["longQuantity"] for p in positions if p["instrument"]["symbol"] == symbol)

    def buying_power(self) -> float:
        acct = self.client.get_account(self.account).json()
        return float(acct["securitiesAccount"]["currentBalances"]["buyingPower"])


@pytest.fixture
def desk(sim: Any, schwab: Any) -> Desk:
    sim.clear_faults()
    sim.reset_broker()
    return Desk(sim, schwab)


def sell_stop(symbol: str, qty: int, stop: str, kind: StopType = StopType.STANDARD) -> Any:
    return (
        equity_sell_market(symbol, qty)
        .set_order_type(OrderType.STOP)
        .set_stop_price(stop)
        .set_stop_type(kind)
    )


def sell_trailing(
    symbol: str, qty: int, offset: float, link: StopPriceLinkType = StopPriceLinkType.VALUE
) -> Any:
    return (
        equity_sell_market(symbol, qty)
        .set_order_type(OrderType.TRAILING_STOP)
        .set_stop_price_link_basis(StopPriceLinkBasis.LAST)
        .set_stop_price_link_type(link)
        .set_stop_price_offset(offset)
        .set_stop_type(StopType.STANDARD)
    )


def bracket(symbol: str, qty: int, take_profit: str, stop_loss: str) -> Any:
    return first_triggers_second(
        equity_buy_market(symbol, qty),
        one_cancels_other(
            equity_sell_limit(symbol, qty, take_profit), sell_stop(symbol, qty, stop_loss)
        ),
    )


def fill_price(order: dict[str, Any]) -> float:
    return float(order["orderActivityCollection"][0]["executionLegs"][0]["price"])


# --------------------------------------------------------------------------- stops


def test_stop_loss_triggers_when_the_price_crosses_it_and_fills(desk: Desk) -> None:
    desk.hold("AAPL", 10)
    stop_id = desk.place(sell_stop("AAPL", 10, "95.00"))
    order = desk.order(stop_id)
    assert order["status"] == "WORKING" and order["orderType"] == "STOP"
    assert order["stopPrice"] == 95.0 and order["stopType"] == "STANDARD"
    desk.move("AAPL", 96.0)
    assert desk.status(stop_id) == "WORKING"
    desk.move("AAPL", 94.8)
    order = desk.order(stop_id)
    assert order["status"] == "FILLED" and order["filledQuantity"] == 10
    assert fill_price(order) == pytest.approx(94.79)  # as a market order: at the bid
    assert desk.position("AAPL") == 0


@pytest.mark.parametrize(
    ("kind", "triggers"),
    [
        (StopType.STANDARD, False),
        (StopType.LAST, False),
        (StopType.BID, True),
        (StopType.ASK, False),
        (StopType.MARK, True),
    ],
)
def test_a_stop_watches_the_price_its_stop_type_names(
    desk: Desk, kind: StopType, triggers: bool
) -> None:
    desk.hold("MSFT", 5)  # last 100.00, bid 99.99, ask 100.01
    stop_id = desk.place(sell_stop("MSFT", 5, "99.98", kind))
    # Only the quote moves: bid 99.97, mark 99.98, ask 99.99; the last stays at 100.00.
    desk.move("MSFT", 99.98, trade=False)
    assert desk.status(stop_id) == ("FILLED" if triggers else "WORKING")


def test_a_stop_limit_works_as_a_limit_once_triggered(desk: Desk) -> None:
    desk.hold("AMD", 4)
    order = equity_sell_limit("AMD", 4, "94.00").set_order_type(OrderType.STOP_LIMIT)
    stop_id = desk.place(order.set_stop_price("95.00"))
    desk.move("AMD", 93.0)  # gaps through the stop and the limit: triggered, no fill below 94
    assert desk.status(stop_id) == "WORKING"
    desk.move("AMD", 95.5)  # back above the stop: still a working limit, fills at the bid
    order = desk.order(stop_id)
    assert order["status"] == "FILLED" and fill_price(order) == pytest.approx(95.49)


def test_a_stop_on_the_wrong_side_of_the_market_is_rejected(desk: Desk) -> None:
    desk.hold("NVDA", 1)
    stop_id = desk.place(sell_stop("NVDA", 1, "101.00"))
    order = desk.order(stop_id)
    assert order["status"] == "REJECTED"
    assert "below the market" in order["statusDescription"]


def test_a_buy_stop_reserves_buying_power_at_its_stop(desk: Desk) -> None:
    desk.move("GOOGL", 100.0)
    buy_stop = equity_buy_market("GOOGL", 10).set_order_type(OrderType.STOP)
    stop_id = desk.place(buy_stop.set_stop_price("120.00"))
    assert desk.status(stop_id) == "WORKING"
    assert desk.buying_power() == pytest.approx(100_000 - 1200)
    desk.move("GOOGL", 121.0)
    order = desk.order(stop_id)
    assert order["status"] == "FILLED" and fill_price(order) == pytest.approx(121.01)


# --------------------------------------------------------------------------- trailing


@pytest.mark.parametrize(
    ("link", "offset", "path"),
    [
        # (price move, stopPrice expected after it)
        (StopPriceLinkType.VALUE, 2, [(103.0, 101.0), (102.0, 101.0), (101.5, 101.0)]),
        (StopPriceLinkType.PERCENT, 5, [(110.0, 104.5), (106.0, 104.5), (104.6, 104.5)]),
    ],
)
def test_a_trailing_stop_follows_the_price_up_and_triggers_on_the_pullback(
    desk: Desk, link: StopPriceLinkType, offset: float, path: list[tuple[float, float]]
) -> None:
    desk.hold("META", 3)
    trail_id = desk.place(sell_trailing("META", 3, offset, link))
    order = desk.order(trail_id)
    assert order["status"] == "WORKING" and order["orderType"] == "TRAILING_STOP"
    assert order["stopPrice"] == (98.0 if link is StopPriceLinkType.VALUE else 95.0)
    assert order["stopPriceOffset"] == offset and order["stopPriceLinkType"] == link.value
    for price, stop in path:
        desk.move("META", price)
        order = desk.order(trail_id)
        assert (order["status"], order["stopPrice"]) == ("WORKING", stop), price
    desk.move("META", path[-1][1] - 0.1)
    order = desk.order(trail_id)
    assert order["status"] == "FILLED" and desk.position("META") == 0


# --------------------------------------------------------------------------- brackets


def _bracket_ids(top: dict[str, Any]) -> tuple[int, int, int]:
    """(OCO container, take-profit, stop-loss) ids of a bracket's tree."""
    (oco,) = top["childOrderStrategies"]
    take_profit, stop_loss = oco["childOrderStrategies"]
    return oco["orderId"], take_profit["orderId"], stop_loss["orderId"]


@pytest.mark.parametrize("exit_price", [105.5, 94.5])
def test_a_bracket_fills_its_entry_then_exactly_one_exit(desk: Desk, exit_price: float) -> None:
    desk.move("TSLA", 100.0)
    top_id = desk.place(bracket("TSLA", 10, "105.00", "95.00"))
    top = desk.order(top_id)
    assert top["orderStrategyType"] == "TRIGGER" and top["status"] == "WORKING"
    oco_id, tp_id, sl_id = _bracket_ids(top)
    assert top_id < oco_id < tp_id < sl_id  # every order its own id, parents first
    oco = top["childOrderStrategies"][0]
    assert oco["orderStrategyType"] == "OCO" and "orderLegCollection" not in oco
    assert {o["status"] for o in (oco, *oco["childOrderStrategies"])} == {"AWAITING_PARENT_ORDER"}
    child = desk.order(sl_id)  # GET of a child id: that child
    assert child["orderType"] == "STOP" and child["stopPrice"] == 95.0
    listed = desk.client.get_orders_for_account(desk.account).json()
    assert [o["orderId"] for o in listed] == [top_id]  # top-level orders, with their trees
    assert _bracket_ids(listed[0]) == (oco_id, tp_id, sl_id)

    desk.move("TSLA", 100.0)
    assert [desk.status(i) for i in (top_id, oco_id, tp_id, sl_id)] == [
        "FILLED", "WORKING", "WORKING", "WORKING"]  # fmt: skip
    assert desk.position("TSLA") == 10
    desk.move("TSLA", exit_price)
    winner, loser = (tp_id, sl_id) if exit_price > 100 else (sl_id, tp_id)
    assert (desk.status(winner), desk.status(loser), desk.status(oco_id)) == (
        "FILLED", "CANCELED", "FILLED")  # fmt: skip
    assert desk.position("TSLA") == 0
    tree = desk.order(top_id)["childOrderStrategies"][0]["childOrderStrategies"]
    assert sorted(o["status"] for o in tree) == ["CANCELED", "FILLED"]


def test_when_both_exits_would_fill_in_the_same_step_exactly_one_does(desk: Desk) -> None:
    desk.move("AMZN", 100.0)
    # Both exits are marketable the moment the entry fills: the first in the tree wins.
    top_id = desk.place(bracket("AMZN", 10, "90.00", "110.00"))
    desk.move("AMZN", 100.0)
    oco_id, tp_id, sl_id = _bracket_ids(desk.order(top_id))
    assert [desk.status(i) for i in (top_id, oco_id, tp_id, sl_id)] == [
        "FILLED", "FILLED", "FILLED", "CANCELED"]  # fmt: skip
    assert desk.position("AMZN") == 0


def test_an_oco_of_two_limits_crossed_together_fills_only_the_first(desk: Desk) -> None:
    desk.hold("QQQ", 5)
    oco_id = desk.place(
        one_cancels_other(
            equity_sell_limit("QQQ", 5, "101.00"), equity_sell_limit("QQQ", 5, "102.00")
        )
    )
    first, second = desk.order(oco_id)["childOrderStrategies"]
    assert desk.status(oco_id) == "WORKING" and first["status"] == second["status"] == "WORKING"
    desk.move("QQQ", 103.0)
    assert (desk.status(first["orderId"]), desk.status(second["orderId"])) == (
        "FILLED", "CANCELED")  # fmt: skip
    assert desk.position("QQQ") == 0


def test_cancelling_a_working_bracket_cancels_every_leg(desk: Desk) -> None:
    desk.move("SPY", 100.0)
    entry = equity_buy_limit("SPY", 10, "80.00")
    top_id = desk.place(
        first_triggers_second(
            entry,
            one_cancels_other(equity_sell_limit("SPY", 10, "90.00"), sell_stop("SPY", 10, "75.00")),
        )
    )
    oco_id, tp_id, sl_id = _bracket_ids(desk.order(top_id))
    assert desk.client.cancel_order(top_id, desk.account).status_code == 200
    assert {desk.status(i) for i in (top_id, oco_id, tp_id, sl_id)} == {"CANCELED"}
    desk.move("SPY", 79.0)
    assert desk.position("SPY") == 0


def test_cancelling_an_exit_cancels_its_group_and_a_filled_entry_is_refused(desk: Desk) -> None:
    desk.move("IWM", 100.0)
    top_id = desk.place(bracket("IWM", 2, "105.00", "95.00"))
    desk.move("IWM", 100.0)
    oco_id, tp_id, sl_id = _bracket_ids(desk.order(top_id))
    r = desk.client.cancel_order(top_id, desk.account)
    assert r.status_code == 400 and "FILLED" in r.json()["message"]
    assert desk.status(tp_id) == "WORKING"
    assert desk.client.cancel_order(sl_id, desk.account).status_code == 200
    assert [desk.status(i) for i in (oco_id, tp_id, sl_id)] == ["CANCELED"] * 3
    assert desk.position("IWM") == 2


# --------------------------------------------------------------------------- replace


def test_replacing_a_working_stop(desk: Desk) -> None:
    desk.hold("DIA", 3)
    old_id = desk.place(sell_stop("DIA", 3, "95.00"))
    r = desk.client.replace_order(desk.account, old_id, sell_stop("DIA", 3, "98.00"))
    assert r.status_code == 201
    new_id = Utils(desk.client, desk.account).extract_order_id(r)
    assert new_id != old_id
    old = desk.order(old_id)
    assert old["status"] == "REPLACED" and old["replacingOrderCollection"] == [{"orderId": new_id}]
    assert desk.order(new_id)["stopPrice"] == 98.0
    # A move to the wrong side of the market is refused; the stop keeps working.
    r = desk.client.replace_order(desk.account, new_id, sell_stop("DIA", 3, "101.00"))
    assert r.status_code == 400 and "below the market" in r.json()["message"]
    assert desk.status(new_id) == "WORKING"
    desk.move("DIA", 97.5)
    assert desk.status(new_id) == "FILLED"


def test_replacing_the_stop_loss_of_a_bracket_keeps_it_in_the_tree(desk: Desk) -> None:
    desk.move("AAPL", 100.0)
    top_id = desk.place(bracket("AAPL", 4, "105.00", "95.00"))
    desk.move("AAPL", 100.0)
    oco_id, tp_id, sl_id = _bracket_ids(desk.order(top_id))
    r = desk.client.replace_order(desk.account, sl_id, sell_stop("AAPL", 4, "98.00"))
    assert r.status_code == 201
    new_id = Utils(desk.client, desk.account).extract_order_id(r)
    assert _bracket_ids(desk.order(top_id)) == (oco_id, tp_id, new_id)
    assert desk.status(sl_id) == "REPLACED" and desk.status(new_id) == "WORKING"
    # The replacement must be the same exit: another instruction is refused.
    r = desk.client.replace_order(desk.account, new_id, equity_buy_limit("AAPL", 4, "90.00"))
    assert r.status_code == 400
    desk.move("AAPL", 97.5)
    assert (desk.status(new_id), desk.status(tp_id), desk.status(oco_id)) == (
        "FILLED", "CANCELED", "FILLED")  # fmt: skip


# --------------------------------------------------------------------------- validation


def _spec(order: Any) -> dict[str, Any]:
    return order.build()  # type: ignore[no-any-return]


def _broken(order: Any, **changes: Any) -> dict[str, Any]:
    spec = _spec(order)
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


def _bad_bracket() -> dict[str, Any]:
    spec = _spec(bracket("AAPL", 1, "105.00", "95.00"))
    del spec["childOrderStrategies"][0]["childOrderStrategies"][1]["stopPrice"]
    return spec


STOP = sell_stop("AAPL", 1, "95.00")
TRAIL = sell_trailing("AAPL", 1, 2)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_broken(STOP, stopPrice=None), "needs a numeric stopPrice"),
        (_broken(STOP, stopPrice="-1"), "stopPrice must be a positive number"),
        (_broken(STOP, price="94.00"), "takes no price"),
        (_broken(STOP, stopType="SIDEWAYS"), "stopType 'SIDEWAYS'"),
        (_broken(STOP, orderType="STOP_LIMIT"), "needs a numeric price"),
        (_broken(equity_sell_limit("AAPL", 1, "9.00"), stopPrice="8.00"), "stopPrice is only"),
        (_broken(TRAIL, stopPriceOffset=None), "needs a numeric stopPriceOffset"),
        (_broken(TRAIL, stopPriceLinkType="TICK"), "VALUE or PERCENT"),
        (_broken(TRAIL, stopPriceLinkType="PERCENT", stopPriceOffset=150), "below 100"),
        (_broken(TRAIL, stopPriceLinkBasis="MANUAL"), "stopPriceLinkBasis 'MANUAL'"),
        (_broken(TRAIL, stopPrice="95.00"), "takes no stopPrice"),
        (_broken(STOP, stopPriceOffset=1), "only for TRAILING_STOP"),
        (_broken(STOP, orderStrategyType="BLAST"), "orderStrategyType 'BLAST'"),
        (_broken(STOP, childOrderStrategies=[_spec(STOP)]), "use TRIGGER"),
        (_broken(STOP, orderStrategyType="TRIGGER"), "non-empty childOrderStrategies"),
        (
            _broken(
                one_cancels_other(STOP, TRAIL), orderLegCollection=_spec(STOP)["orderLegCollection"]
            ),
            "has no orderLegCollection",
        ),
        ({"orderStrategyType": "OCO", "childOrderStrategies": [_spec(STOP)]}, "at least two"),
        (_bad_bracket(), "childOrderStrategies[0].childOrderStrategies[1]: a STOP order needs"),
    ],
)
def test_malformed_orders_are_a_400_with_a_message(
    desk: Desk, body: dict[str, Any], message: str
) -> None:
    r = desk.client.place_order(desk.account, body)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert desk.client.get_orders_for_account(desk.account).json() == []


def test_single_market_and_limit_orders_are_unchanged(desk: Desk) -> None:
    desk.move("SPY", 100.0)
    limit_id = desk.place(equity_buy_limit("SPY", 1, "90.00"))
    market_id = desk.place(equity_buy_market("SPY", 1))
    desk.move("SPY", 100.0)
    assert (desk.status(limit_id), desk.status(market_id)) == ("WORKING", "FILLED")
    order = desk.order(limit_id)
    assert order["orderStrategyType"] == "SINGLE" and "childOrderStrategies" not in order
