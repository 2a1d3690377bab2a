"""Paper broker: one cash account, Schwab-shaped orders, fills against the simulated quotes.

Orders are accepted first and decided after, as at Schwab: a well-formed order
(:mod:`~streamdesk_sim.order_validation`) always exists, and a business rejection (buying
power, holdings, short selling, unknown instrument) gives it status ``REJECTED`` with a
``statusDescription``. Accepted orders rest ``WORKING`` (``QUEUED`` while the market is
closed) until :mod:`~streamdesk_sim.matching` fills them. Every change is sent as
``ACCT_ACTIVITY`` through ``notify``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streamdesk_sim.account import Account
from streamdesk_sim.clock import SessionClock
from streamdesk_sim.config import Settings
from streamdesk_sim.market import Market
from streamdesk_sim.matching import MatchingEngine, Notify
from streamdesk_sim.order_validation import OrderError, validate_order
from streamdesk_sim.orders import (
    BUYS,
    OPEN_STATUSES,
    activity_data,
    filter_orders,
    finish,
    multiplier,
    new_order,
)


class Broker:
    """Cash, positions and orders of the simulator's single account."""

    def __init__(
        self, settings: Settings, market: Market, clock: SessionClock, notify: Notify
    ) -> None:
        self.settings = settings
        self.market = market
        self.clock = clock
        self.notify = notify
        self.account = Account(settings.account_number, settings.initial_cash)
        self.orders: dict[int, dict[str, Any]] = {}
        self.next_order_id = 1_000_000_001 + (settings.seed % 1000) * 1_000_000
        self.matching = MatchingEngine(self.orders, self.account, self.quote, clock, notify)

    def reset(self, cash: float | None = None) -> None:
        """Forget orders and positions; restore (or set) the cash balance."""
        self.account.reset(cash)
        self.orders.clear()

    def quote(self, symbol: str, asset_type: str) -> tuple[float, float, float]:
        """(bid, ask, last) of an instrument."""
        if asset_type == "OPTION":
            opt = self.market.option(symbol, self.clock.now())
            v = opt.values
            last = v[4] if v[4] is not None else v[37]
            return float(v[2]), float(v[3]), float(last)
        eq = self.market.equity(symbol)
        return eq.bid, eq.ask, eq.last

    def working_option_symbols(self) -> list[str]:
        """Option symbols with open orders (kept repricing even without subscribers)."""
        return [
            o["orderLegCollection"][0]["instrument"]["symbol"]
            for o in self.orders.values()
            if o["status"] in OPEN_STATUSES
            and o["orderLegCollection"][0]["orderLegType"] == "OPTION"
        ]

    def on_market(self, changed: dict[str, dict[int, Any]]) -> None:
        """After a market step (``changed``: its changed fields): fill what the market crossed."""
        self.matching.on_market()

    # ----------------------------------------------------------------- orders

    def place(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Accept an order (``OrderError`` if malformed); returns the stored order."""
        leg = validate_order(spec)
        now = self.clock.now()
        order_id = self.next_order_id
        self.next_order_id += 1
        account_number = self.settings.account_number
        order = new_order(leg, spec, order_id, now, account_number)
        self.orders[order_id] = order
        self.notify("OrderCreated", activity_data(order, account_number))
        reason = self._reject_reason(order)
        if reason:
            finish(order, "REJECTED", now)
            order["statusDescription"] = reason
            self.notify("OrderRejected", activity_data(order, account_number))
            return order
        self.notify("OrderAccepted", activity_data(order, account_number))
        if not self.clock.is_open():
            order["status"] = "QUEUED"
        return order

    def _reject_reason(self, order: dict[str, Any]) -> str | None:
        leg = order["orderLegCollection"][0]
        asset_type = leg["orderLegType"]
        symbol = leg["instrument"]["symbol"]
        qty = float(leg["quantity"])
        instruction = leg["instruction"]
        try:
            _, ask, _ = self.quote(symbol, asset_type)
        except (ValueError, OverflowError) as exc:
            return f"Unknown or expired instrument: {exc}"
        mult = multiplier(asset_type)
        if instruction in BUYS:
            est = order.get("price") or ask
            reserved = self.reserved_cash(exclude=order["orderId"])
            if est * qty * mult > self.account.cash - reserved + 1e-9:
                return "Insufficient buying power for this order"
        held = self.account.positions.get(symbol)
        held_qty = held.quantity if held else 0.0
        if instruction in ("SELL", "SELL_TO_CLOSE") and qty > held_qty + 1e-9:
            return f"Not enough shares/contracts to sell: hold {held_qty:g}, selling {qty:g}"
        if instruction == "BUY_TO_CLOSE" and qty > -held_qty + 1e-9:
            return f"No short position of {qty:g} to close"
        if instruction == "SELL_SHORT":
            return "Short selling is not supported in the paper cash account"
        return None

    def reserved_cash(self, exclude: int = -1) -> float:
        """Cash held by the open buy orders (but order ``exclude``), at limit or ask."""
        total = 0.0
        for o in self.orders.values():
            if o["orderId"] == exclude or o["status"] not in OPEN_STATUSES:
                continue
            leg = o["orderLegCollection"][0]
            if leg["instruction"] not in BUYS:
                continue
            price = o.get("price")
            if price is None:
                try:
                    price = self.quote(leg["instrument"]["symbol"], leg["orderLegType"])[1]
                except (ValueError, OverflowError):
                    continue
            total += price * o["remainingQuantity"] * multiplier(leg["orderLegType"])
        return total

    def cancel(self, order_id: int) -> tuple[bool, str]:
        """Cancel a working order: (ok, message)."""
        order = self.orders.get(order_id)
        if order is None:
            return False, "Order not found"
        if order["status"] not in OPEN_STATUSES:
            return False, f"Order {order_id} cannot be canceled: status {order['status']}"
        finish(order, "CANCELED", self.clock.now())
        account_number = self.settings.account_number
        self.notify("CancelAccepted", activity_data(order, account_number))
        self.notify("OrderUROutCompleted", activity_data(order, account_number))
        return True, ""

    def replace(self, order_id: int, spec: dict[str, Any]) -> dict[str, Any]:
        """Replace a working order by a new one (old becomes REPLACED)."""
        old = self.orders.get(order_id)
        if old is None:
            raise KeyError(order_id)
        if old["status"] not in OPEN_STATUSES:
            raise OrderError(f"Order {order_id} cannot be replaced: status {old['status']}")
        validate_order(spec)
        finish(old, "REPLACED", self.clock.now())
        new = self.place(spec)
        old["replacingOrderCollection"] = [{"orderId": new["orderId"]}]
        return new

    def query(
        self,
        *,
        from_time: datetime | None,
        to_time: datetime | None,
        status: str | None,
        max_results: int | None,
    ) -> list[dict[str, Any]]:
        """Orders filtered like Schwab's GET orders (newest first)."""
        return filter_orders(
            list(self.orders.values()),
            from_time=from_time,
            to_time=to_time,
            status=status,
            max_results=max_results,
        )

    def account_json(self, with_positions: bool) -> dict[str, Any]:
        """``securitiesAccount`` JSON as Schwab's GET accounts returns it."""
        return self.account.to_json(self.quote, self.reserved_cash(), with_positions)
