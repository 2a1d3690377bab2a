"""The paper broker's order trees in-process: account activity, rejections inside a tree,
the closed market, buying power of OCO groups, the admin order log (schwab-py's builders
make every order)."""

from __future__ import annotations

from typing import Any

import pytest
from schwab.orders.common import (
    OrderType,
    StopPriceLinkBasis,
    StopPriceLinkType,
    first_triggers_second,
    one_cancels_other,
)
from schwab.orders.equities import (
    equity_buy_limit,
    equity_buy_market,
    equity_sell_limit,
    equity_sell_market,
)

from streamdesk.config import load_settings
from streamdesk_sim.broker import Broker
from streamdesk_sim.clock import SessionClock
from streamdesk_sim.config import ClockMode, Settings
from streamdesk_sim.market import Market
from streamdesk_sim.order_validation import OrderError

pytestmark = pytest.mark.unit


class Clock(SessionClock):
    """The always-open clock with a switch to close the market."""

    def __init__(self) -> None:
        super().__init__(ClockMode.ALWAYS)
        self.open = True

    def is_open(self) -> bool:
        return self.open


class Paper:
    """A broker, its market and every activity message it sent."""

    def __init__(self) -> None:
        settings = load_settings(Settings, _env_file=None)
        self.clock = Clock()
        self.market = Market(1, 0.35)
        self.sent: list[tuple[str, str, str]] = []
        self.broker = Broker(settings, self.market, self.clock, self._notify)

    def _notify(self, kind: str, data: dict[str, Any]) -> None:
        self.sent.append((kind, data["SchwabOrderID"], data["Status"]))

    def move(self, symbol: str, price: float, trade: bool = True) -> None:
        self.market.equity(symbol).set_price(price, self.clock.now_ms(), trade=trade)
        self.broker.on_market({})

    def place(self, order: Any) -> dict[str, Any]:
        return self.broker.place(order.build())

    def status(self, order: dict[str, Any]) -> str:
        return str(self.broker.orders[order["orderId"]]["status"])


@pytest.fixture
def paper() -> Paper:
    return Paper()


def _stop(order: Any, stop: str) -> Any:
    return order.set_order_type(OrderType.STOP).set_stop_price(stop)


def _bracket(qty: int, exit_qty: int | None = None) -> Any:
    q = exit_qty or qty
    return first_triggers_second(
        equity_buy_market("AAPL", qty),
        one_cancels_other(
            equity_sell_limit("AAPL", q, "105.00"), _stop(equity_sell_market("AAPL", q), "95.00")
        ),
    )


def test_a_brackets_life_is_told_as_account_activity(paper: Paper) -> None:
    paper.move("AAPL", 100.0)
    top = paper.place(_bracket(10))
    oco = top["childOrderStrategies"][0]
    tp, sl = (str(o["orderId"]) for o in oco["childOrderStrategies"])
    entry = str(top["orderId"])
    assert paper.sent == [
        ("OrderCreated", entry, "AWAITING_PARENT_ORDER"),
        ("OrderCreated", tp, "AWAITING_PARENT_ORDER"),
        ("OrderCreated", sl, "AWAITING_PARENT_ORDER"),
        ("OrderAccepted", entry, "WORKING"),
    ]  # the OCO container (no legs) is not an order one trades: no messages
    paper.sent.clear()
    paper.move("AAPL", 100.0)
    assert paper.sent == [
        ("ExecutionCreated", entry, "FILLED"),
        ("OrderFillCompleted", entry, "FILLED"),
        ("OrderActivated", tp, "WORKING"),
        ("OrderActivated", sl, "WORKING"),
    ]
    paper.sent.clear()
    paper.move("AAPL", 94.0)
    assert paper.sent == [
        ("ExecutionCreated", sl, "FILLED"),
        ("OrderFillCompleted", sl, "FILLED"),
        ("CancelAccepted", tp, "CANCELED"),
        ("OrderUROutCompleted", tp, "CANCELED"),
    ]
    assert oco["status"] == "FILLED" and "closeTime" in oco


def test_a_rejected_entry_rejects_the_whole_tree(paper: Paper) -> None:
    paper.broker.reset(cash=50.0)
    paper.move("AAPL", 100.0)
    top = paper.place(_bracket(10))
    tree = [
        top,
        top["childOrderStrategies"][0],
        *top["childOrderStrategies"][0]["childOrderStrategies"],
    ]
    assert {o["status"] for o in tree} == {"REJECTED"}
    assert top["statusDescription"] == "Insufficient buying power for this order"


def test_an_exit_failing_its_checks_when_it_starts_is_rejected_with_its_group(
    paper: Paper,
) -> None:
    paper.move("AAPL", 100.0)
    top = paper.place(_bracket(5, exit_qty=10))  # exits sell more than the entry buys
    paper.move("AAPL", 100.0)
    oco = top["childOrderStrategies"][0]
    assert top["status"] == "FILLED"
    assert [o["status"] for o in (oco, *oco["childOrderStrategies"])] == ["REJECTED"] * 3
    assert "Not enough shares" in oco["childOrderStrategies"][0]["statusDescription"]


def test_orders_placed_while_the_market_is_closed_are_queued(paper: Paper) -> None:
    paper.move("AAPL", 100.0)
    paper.move("AAPL", 100.0)
    buy = paper.place(equity_buy_market("AAPL", 5))
    paper.move("AAPL", 100.0)
    paper.clock.open = False
    oco = paper.place(
        one_cancels_other(
            equity_sell_limit("AAPL", 5, "105.00"), _stop(equity_sell_market("AAPL", 5), "95.00")
        )
    )
    legs = oco["childOrderStrategies"]
    assert paper.status(buy) == "FILLED"
    assert [o["status"] for o in (oco, *legs)] == ["QUEUED"] * 3
    paper.move("AAPL", 90.0)  # closed: nothing triggers
    assert [o["status"] for o in (oco, *legs)] == ["QUEUED"] * 3
    paper.clock.open = True
    paper.move("AAPL", 90.0)
    assert [o["status"] for o in (oco, *legs)] == ["FILLED", "CANCELED", "FILLED"]


def test_a_buy_trailing_stop_only_moves_down(paper: Paper) -> None:
    paper.move("MSFT", 100.0)
    order = paper.place(
        equity_buy_market("MSFT", 1)
        .set_order_type(OrderType.TRAILING_STOP)
        .set_stop_price_link_basis(StopPriceLinkBasis.ASK)
        .set_stop_price_link_type(StopPriceLinkType.VALUE)
        .set_stop_price_offset(1.5)
    )
    assert order["stopPrice"] == 101.51  # ask 100.01 + 1.50
    for price, stop in ((98.0, 99.51), (99.0, 99.51), (97.0, 98.51)):
        paper.move("MSFT", price)
        assert (order["status"], order["stopPrice"]) == ("WORKING", stop)
    paper.move("MSFT", 98.6)  # last 98.60 >= 98.51: a market buy at the ask
    assert order["status"] == "FILLED"


def test_an_oco_of_buys_holds_the_cash_of_its_largest_order(paper: Paper) -> None:
    paper.move("AMD", 100.0)
    paper.place(
        one_cancels_other(
            equity_buy_limit("AMD", 10, "90.00"),
            _stop(equity_buy_market("AMD", 10), "110.00"),
        )
    )
    assert paper.broker.reserved_cash() == pytest.approx(1100.0)


def test_replacing_a_waiting_exit_keeps_it_waiting_and_a_conditional_order_is_refused(
    paper: Paper,
) -> None:
    paper.move("AAPL", 100.0)
    top = paper.place(_bracket(3))
    sl = top["childOrderStrategies"][0]["childOrderStrategies"][1]
    new = paper.broker.replace(sl["orderId"], _stop(equity_sell_market("AAPL", 3), "97.00").build())
    assert new["status"] == "AWAITING_PARENT_ORDER" and sl["status"] == "REPLACED"
    assert top["childOrderStrategies"][0]["childOrderStrategies"][1] is new
    with pytest.raises(OrderError, match="conditional order"):
        paper.broker.replace(top["orderId"], equity_buy_market("AAPL", 3).build())
    paper.move("AAPL", 100.0)
    paper.move("AAPL", 96.5)
    assert new["status"] == "FILLED"


def test_the_admin_order_log_lists_every_order_of_a_tree() -> None:
    from fastapi.testclient import TestClient

    from streamdesk_sim.app import create_app
    from streamdesk_sim.sim import Sim

    settings = load_settings(Settings, _env_file=None, tick_interval=60)
    sim = Sim(settings)  # orders placed before the app's loops start (one thread at a time)
    sim.market.equity("AAPL").set_price(100.0, sim.clock.now_ms(), trade=True)
    top = sim.broker.place(_bracket(2).build())
    with TestClient(create_app(settings, sim)) as client:
        log = client.get("/admin/broker/orders").json()
    ids = [top["orderId"] + i for i in range(4)]
    assert [o["order_id"] for o in log] == ids
    assert [o["strategy"] for o in log] == ["TRIGGER", "OCO", "SINGLE", "SINGLE"]
    assert [o["parent_id"] for o in log] == [None, ids[0], ids[1], ids[1]]
    assert [o["order_type"] for o in log] == ["MARKET", None, "LIMIT", "STOP"]
    assert log[1]["symbol"] is None and log[3]["stop_price"] == 95.0
