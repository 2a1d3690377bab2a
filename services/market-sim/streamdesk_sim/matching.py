"""The paper matching engine: open orders filled against the simulated quotes.

After every market step (and an admin price move) each open order is checked, in tree order
(oldest top order first, each tree parents first): a market order fills at the touch (buy at
the ask, sell at the bid); a limit order fills at the touch once the market crosses its limit
(so never worse than the limit). A stop (:mod:`~streamdesk_sim.stops`) first waits for its
trigger; then a ``STOP`` or ``TRAILING_STOP`` fills as a market order and a ``STOP_LIMIT``
works as a limit order. A trailing stop's ``stopPrice`` follows the market before the check.

A fill books the whole remaining quantity (the simulator has no partial fills), adds an
``EXECUTION`` to the order's ``orderActivityCollection`` and sends ``ExecutionCreated`` +
``OrderFillCompleted``; then ``on_fill`` runs at once (the broker cancels the OCO siblings and
starts the children), so when two orders of an OCO would fill in the same step only the first
in the tree does. A buy the cash can no longer pay is rejected. Nothing fills while the session
clock is closed; a ``QUEUED`` order starts ``WORKING`` at the first step after the open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamdesk.strategy.fills import MARKET_LIKE, touch_fill
from streamdesk_sim import stops
from streamdesk_sim.account import Account, Quote
from streamdesk_sim.clock import SessionClock
from streamdesk_sim.order_book import OrderBook
from streamdesk_sim.order_validation import STOP_ORDER_TYPES
from streamdesk_sim.orders import BUYS, schwab_time


def fill_price(
    order: dict[str, Any], bid: float, ask: float, triggered: bool = True
) -> float | None:
    """The price ``order`` fills at with the market at ``bid``/``ask`` (None: no fill).

    ``triggered``: whether a stop order's stop has been reached (ignored for other types).
    The rule itself is :func:`streamdesk.strategy.fills.touch_fill`, shared with the
    backtester; this only reads its inputs from the Schwab order.
    """
    order_type = order["orderType"]
    price = order.get("price")
    return touch_fill(
        order_type,
        order["orderLegCollection"][0]["instruction"] in BUYS,
        bid,
        ask,
        None if order_type in MARKET_LIKE or price is None else float(price),
        triggered,
    )


class MatchingEngine:
    """Fills the open orders of ``book`` into ``account``."""

    def __init__(
        self,
        book: OrderBook,
        account: Account,
        quote: Quote,
        clock: SessionClock,
        on_fill: Callable[[dict[str, Any]], None],
    ) -> None:
        self.book = book
        self.account = account
        self.quote = quote
        self.clock = clock
        self.on_fill = on_fill
        self.next_activity_id = 90_000_000_001

    def on_market(self) -> None:
        """After a market step: move trails, trigger stops, fill what the market crossed."""
        if not self.book.orders or not self.clock.is_open():
            return
        for order in self.book.open_legs():
            if order["status"] == "AWAITING_PARENT_ORDER":
                continue
            if order["status"] not in ("QUEUED", "WORKING"):
                continue  # ended earlier in this step (an OCO sibling filled)
            leg = order["orderLegCollection"][0]
            if order["status"] == "QUEUED":
                order["status"] = "WORKING"
                container = self.book.oco(order)
                if container is not None and container["status"] == "QUEUED":
                    container["status"] = "WORKING"
            try:
                prices = self.quote(leg["instrument"]["symbol"], leg["orderLegType"])
            except (ValueError, OverflowError):
                continue
            order_id = order["orderId"]
            if order["orderType"] in STOP_ORDER_TYPES and order_id not in self.book.triggered:
                if order["orderType"] == "TRAILING_STOP":
                    stops.follow(order, prices)
                if stops.triggered(order, prices):
                    self.book.triggered.add(order_id)
            price = fill_price(order, prices[0], prices[1], order_id in self.book.triggered)
            if price is not None:
                self._fill(order, price)

    def _fill(self, order: dict[str, Any], price: float) -> None:
        leg = order["orderLegCollection"][0]
        qty = float(order["remainingQuantity"])
        buy = leg["instruction"] in BUYS
        if not self.account.apply_fill(
            leg["instrument"]["symbol"], leg["orderLegType"], buy, qty, price
        ):
            self.book.reject_tree(order, "Insufficient buying power at fill time")
            return
        now = self.clock.now()
        activity_id = self.next_activity_id
        self.next_activity_id += 1
        order["filledQuantity"] = float(order["quantity"])
        order["remainingQuantity"] = 0.0
        order.setdefault("orderActivityCollection", []).append(
            {
                "activityType": "EXECUTION",
                "activityId": activity_id,
                "executionType": "FILL",
                "quantity": qty,
                "orderRemainingQuantity": 0.0,
                "executionLegs": [
                    {
                        "legId": 1,
                        "quantity": qty,
                        "mismarkedQuantity": 0.0,
                        "price": price,
                        "time": schwab_time(now),
                        "instrumentId": leg["instrument"]["instrumentId"],
                    }
                ],
            }
        )
        self.book.end(order, "FILLED")
        extra = {"ExecutionPrice": price, "ExecutionQuantity": qty}
        self.book.send("ExecutionCreated", order, **extra)
        self.book.send("OrderFillCompleted", order, **extra)
        self.on_fill(order)
