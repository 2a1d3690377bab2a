"""Paper broker: one cash account, Schwab-shaped orders, fills against the simulated quotes.

Orders are accepted first and decided after, as at Schwab: a well-formed order
(:mod:`~streamdesk_sim.order_validation`) always exists, and a business rejection (buying
power, holdings, short selling, unknown instrument, a stop on the wrong side of the market)
gives it status ``REJECTED`` with a ``statusDescription``. Accepted orders rest ``WORKING``
(``QUEUED`` while the market is closed) until :mod:`~streamdesk_sim.matching` fills them.
Every change is sent as ``ACCT_ACTIVITY`` through ``notify``.

Conditional orders (:mod:`~streamdesk_sim.order_book`): the top order of a ``TRIGGER`` works
and its children wait in ``AWAITING_PARENT_ORDER``; when it fills they start (checked then,
like a new order: a child that fails the checks is ``REJECTED``; activity ``OrderActivated``).
All orders of an ``OCO`` work together; the first that fills cancels the others. Cancelling an
order of an OCO cancels the group; cancelling a working parent cancels its children; a filled
parent cannot be cancelled (its children can). Replacing (PUT) works for a working single
order and for a working (or waiting) order of a tree, which must then be replaced by a
``SINGLE`` order of the same instrument and instruction: the old order becomes ``REPLACED``
(activity ``ChangeAccepted``), the new one takes its place in the tree and its status. A
replacement that fails the business checks is refused (400) and the old order keeps working.

The simulator fills whole orders only (no partial fills), so children always start with the
quantity they were sent with.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from streamdesk_sim import stops
from streamdesk_sim.account import Account
from streamdesk_sim.clock import SessionClock
from streamdesk_sim.config import Settings
from streamdesk_sim.market import Market
from streamdesk_sim.matching import MatchingEngine
from streamdesk_sim.order_book import Notify, Order, OrderBook, children, has_legs, subtree
from streamdesk_sim.order_validation import OrderError, OrderRequest, validate_order
from streamdesk_sim.orders import BUYS, OPEN_STATUSES, filter_orders, finish, multiplier, new_order


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
        first_id = 1_000_000_001 + (settings.seed % 1000) * 1_000_000
        self.book = OrderBook(clock, notify, settings.account_number, first_id)
        #: Every order record by id (children too): what GET order answers.
        self.orders = self.book.orders
        self.matching = MatchingEngine(self.book, self.account, self.quote, clock, self._filled)

    def reset(self, cash: float | None = None) -> None:
        """Forget orders and positions; restore (or set) the cash balance."""
        self.account.reset(cash)
        self.book.clear()

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
            for o in self.book.open_legs()
            if o["orderLegCollection"][0]["orderLegType"] == "OPTION"
        ]

    def on_market(self, changed: dict[str, dict[int, Any]]) -> None:
        """After a market step (``changed``: its changed fields): fill what the market crossed."""
        self.matching.on_market()

    # ----------------------------------------------------------------- orders

    def place(self, spec: dict[str, Any]) -> Order:
        """Accept an order request (``OrderError`` if malformed); returns its top record."""
        request = validate_order(spec)
        root = self.book.add(request, "AWAITING_PARENT_ORDER")
        for order in subtree(root):
            self.book.send("OrderCreated", order)
        self._start(root, placed=True)
        return root

    def _start(self, node: Order, *, placed: bool) -> None:
        """Let ``node`` (and, for an OCO container, its orders) work, or reject it."""
        group = [node, *children(node)] if not has_legs(node) else [node]
        for order in group:
            reason = self._reject_reason(order, check_side=placed)
            if reason:
                self.book.reject_tree(node, reason)
                return
        status = "WORKING" if self.clock.is_open() else "QUEUED"
        for order in group:
            order["status"] = status
            if order.get("orderType") == "TRAILING_STOP":
                self._follow(order)
            self.book.send("OrderAccepted" if placed else "OrderActivated", order)

    def _follow(self, order: Order) -> None:
        leg = order["orderLegCollection"][0]
        # No quote: the first market step sets the stop.
        with contextlib.suppress(ValueError, OverflowError):
            stops.follow(order, self.quote(leg["instrument"]["symbol"], leg["orderLegType"]))

    def _filled(self, order: Order) -> None:
        """After a fill: the OCO siblings are cancelled, the children start."""
        self.book.filled(order)
        for child in children(order):
            if child["status"] == "AWAITING_PARENT_ORDER":
                self._start(child, placed=False)

    def _reject_reason(
        self, order: Order, *, check_side: bool = True, exclude: int = -1
    ) -> str | None:
        """Why ``order`` cannot work now (None: it can); containers have none."""
        if not has_legs(order):
            return None
        leg = order["orderLegCollection"][0]
        asset_type = leg["orderLegType"]
        symbol = leg["instrument"]["symbol"]
        qty = float(leg["quantity"])
        instruction = leg["instruction"]
        try:
            prices = self.quote(symbol, asset_type)
        except (ValueError, OverflowError) as exc:
            return f"Unknown or expired instrument: {exc}"
        if check_side:
            side = stops.wrong_side(order, prices)
            if side:
                return side
        mult = multiplier(asset_type)
        if instruction in BUYS:
            est = reserve_price(order, prices[1])
            reserved = self.reserved_cash(exclude=order["orderId"] if exclude < 0 else exclude)
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
        """Cash held by the working buy orders (but order ``exclude``), at the price each
        would pay (limit, stop, or ask); the orders of an OCO hold only their largest."""
        held: dict[int, float] = {}
        for o in self.book.open_legs():
            if o["orderId"] == exclude or o["status"] == "AWAITING_PARENT_ORDER":
                continue
            leg = o["orderLegCollection"][0]
            if leg["instruction"] not in BUYS:
                continue
            try:
                ask = self.quote(leg["instrument"]["symbol"], leg["orderLegType"])[1]
            except (ValueError, OverflowError):
                ask = 0.0
            amount = (
                reserve_price(o, ask) * o["remainingQuantity"] * multiplier(leg["orderLegType"])
            )
            container = self.book.oco(o)
            key = o["orderId"] if container is None else container["orderId"]
            held[key] = max(held.get(key, 0.0), amount)
        return sum(held.values())

    def cancel(self, order_id: int) -> tuple[bool, str]:
        """Cancel a working order (and what goes with it): (ok, message)."""
        order = self.orders.get(order_id)
        if order is None:
            return False, "Order not found"
        if order["status"] not in OPEN_STATUSES:
            message = f"Order {order_id} cannot be canceled: status {order['status']}"
            if any(o["status"] in OPEN_STATUSES for o in subtree(order)):
                message += " (its child orders still work: cancel them)"
            return False, message
        self.book.cancel_tree(order)
        return True, ""

    def replace(self, order_id: int, spec: dict[str, Any]) -> Order:
        """Replace a working order by a new one (old becomes REPLACED); see the module doc."""
        old = self.orders.get(order_id)
        if old is None:
            raise KeyError(order_id)
        if old["status"] not in OPEN_STATUSES:
            raise OrderError(f"Order {order_id} cannot be replaced: status {old['status']}")
        if not has_legs(old) or children(old):
            raise OrderError(
                f"Order {order_id} is a conditional order ({old['orderStrategyType']}): "
                "replace one of its orders, or cancel it"
            )
        request = validate_order(spec)
        in_tree = self.book.parent(old) is not None
        if in_tree:
            _check_same_leg(old, request)
        reason = self._replacement_reason(
            request, old, active=old["status"] != "AWAITING_PARENT_ORDER"
        )
        if reason:
            raise OrderError(f"Order {order_id} cannot be replaced: {reason}")
        status = old["status"]
        finish(old, "REPLACED", self.clock.now())
        self.book.triggered.discard(order_id)
        if not in_tree:
            new = self.place(spec)
        else:
            new = self.book.add(request, status)
            self.book.replace_in_tree(old, new)
            self.book.send("OrderCreated", new)
            if new["status"] != "AWAITING_PARENT_ORDER":
                if new.get("orderType") == "TRAILING_STOP":
                    self._follow(new)
                self.book.send("OrderAccepted", new)
        old["replacingOrderCollection"] = [{"orderId": new["orderId"]}]
        self.book.send("ChangeAccepted", old, ReplacedByOrderID=str(new["orderId"]))
        return new

    def _replacement_reason(self, request: OrderRequest, old: Order, *, active: bool) -> str | None:
        """Why the active orders of ``request`` could not replace ``old`` (None: they can)."""
        if not active:
            return None
        nodes = [request, *request.children] if request.leg is None else [request]
        for node in nodes:
            if node.leg is None:
                continue
            draft = new_order(node.leg, node.spec, 0, self.clock.now(), self.account.account_number)
            reason = self._reject_reason(draft, exclude=old["orderId"])
            if reason:
                return reason
        return None

    def query(
        self,
        *,
        from_time: datetime | None,
        to_time: datetime | None,
        status: str | None,
        max_results: int | None,
    ) -> list[Order]:
        """Top-level orders (each with its tree) filtered like Schwab's GET orders."""
        return filter_orders(
            self.book.roots(),
            from_time=from_time,
            to_time=to_time,
            status=status,
            max_results=max_results,
        )

    def account_json(self, with_positions: bool) -> dict[str, Any]:
        """``securitiesAccount`` JSON as Schwab's GET accounts returns it."""
        return self.account.to_json(self.quote, self.reserved_cash(), with_positions)


def reserve_price(order: Order, ask: float) -> float:
    """The price a buy ``order`` may pay: its limit, its stop (the higher of both for a
    stop-limit), or the ask for a market order."""
    prices = [float(order[k]) for k in ("price", "stopPrice") if order.get(k) is not None]
    return max(prices) if prices else ask


def _check_same_leg(old: Order, request: OrderRequest) -> None:
    """A tree's order is replaced by a SINGLE order trading the same thing the same way."""
    if request.strategy != "SINGLE" or request.leg is None:
        raise OrderError("an order of a conditional order is replaced by a SINGLE order")
    leg = old["orderLegCollection"][0]
    new = request.leg
    if (new.symbol, new.asset_type, new.instruction) != (
        leg["instrument"]["symbol"],
        leg["orderLegType"],
        leg["instruction"],
    ):
        raise OrderError(
            "a replacing order must trade the same instrument with the same instruction"
        )
