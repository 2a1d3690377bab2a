"""The paper matching engine: open orders filled against the simulated quotes.

After every market step (and an admin price move) each open order is checked: a market order
fills at the touch (buy at the ask, sell at the bid); a limit order fills at the touch once the
market crosses its limit (so never worse than the limit). A fill books the whole remaining
quantity, adds an ``EXECUTION`` to the order's ``orderActivityCollection`` and sends
``ExecutionCreated`` + ``OrderFillCompleted``; a buy the cash can no longer pay is rejected.
Nothing fills while the session clock is closed; a ``QUEUED`` order starts ``WORKING`` at the
first step after the open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamdesk_sim.account import Account, Quote
from streamdesk_sim.clock import SessionClock
from streamdesk_sim.orders import BUYS, OPEN_STATUSES, activity_data, finish, schwab_time

#: Sends one ``ACCT_ACTIVITY`` message: (message type, JSON data).
Notify = Callable[[str, dict[str, Any]], None]


def fill_price(order: dict[str, Any], bid: float, ask: float) -> float | None:
    """The price ``order`` fills at with the market at ``bid``/``ask`` (None: no fill)."""
    buy = order["orderLegCollection"][0]["instruction"] in BUYS
    touch = ask if buy else bid
    if touch <= 0:
        return None
    if order["orderType"] == "MARKET":
        return touch
    limit = float(order["price"])
    if (buy and ask <= limit) or (not buy and bid >= limit):
        return touch
    return None


class MatchingEngine:
    """Fills the open orders of ``orders`` into ``account``."""

    def __init__(
        self,
        orders: dict[int, dict[str, Any]],
        account: Account,
        quote: Quote,
        clock: SessionClock,
        notify: Notify,
    ) -> None:
        self.orders = orders
        self.account = account
        self.quote = quote
        self.clock = clock
        self.notify = notify
        self.next_activity_id = 90_000_000_001

    def on_market(self) -> None:
        """After a market step: fill market orders and crossed limit orders."""
        if not self.orders or not self.clock.is_open():
            return
        for order in list(self.orders.values()):
            if order["status"] not in OPEN_STATUSES:
                continue
            leg = order["orderLegCollection"][0]
            if order["status"] == "QUEUED":
                order["status"] = "WORKING"
            try:
                bid, ask, _ = self.quote(leg["instrument"]["symbol"], leg["orderLegType"])
            except (ValueError, OverflowError):
                continue
            price = fill_price(order, bid, ask)
            if price is not None:
                self._fill(order, price)

    def _fill(self, order: dict[str, Any], price: float) -> None:
        leg = order["orderLegCollection"][0]
        qty = float(order["remainingQuantity"])
        account_number = self.account.account_number
        buy = leg["instruction"] in BUYS
        if not self.account.apply_fill(
            leg["instrument"]["symbol"], leg["orderLegType"], buy, qty, price
        ):
            finish(order, "REJECTED", self.clock.now())
            order["statusDescription"] = "Insufficient buying power at fill time"
            self.notify("OrderRejected", activity_data(order, account_number))
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
        finish(order, "FILLED", now)
        data = activity_data(order, account_number)
        data.update({"ExecutionPrice": price, "ExecutionQuantity": qty})
        self.notify("ExecutionCreated", data)
        self.notify("OrderFillCompleted", data)
