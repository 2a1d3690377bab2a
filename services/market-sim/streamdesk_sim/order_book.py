"""The paper broker's orders as Schwab shows them: trees of orders, each with its own id.

A placed request (:class:`~streamdesk_sim.order_validation.OrderRequest`) becomes one order
record per node, numbered parents first, so the top order has the smallest id (the
``Location`` of the placement). A parent's record holds its children's records themselves in
``childOrderStrategies``: GET of the top order returns the whole tree with every id and status,
GET of a child id returns that child. An ``OCO`` node is a container record (an id and a
status, no legs): ``WORKING`` while its orders work, ``FILLED`` once one of them filled,
``CANCELED`` / ``REJECTED`` when all of them ended so.

Account activity is sent for orders with legs only (a container is not an order one trades).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from streamdesk_sim.clock import SessionClock
from streamdesk_sim.order_validation import OrderRequest
from streamdesk_sim.orders import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    activity_data,
    finish,
    new_container,
    new_order,
)

#: Sends one ``ACCT_ACTIVITY`` message: (message type, JSON data).
Notify = Callable[[str, dict[str, Any]], None]
Order = dict[str, Any]


def has_legs(order: Order) -> bool:
    """Whether ``order`` is an order (not an OCO container)."""
    return "orderLegCollection" in order


def children(order: Order) -> list[Order]:
    """The orders ``order`` triggers (or, for an OCO container, holds)."""
    kids: list[Order] = order.get("childOrderStrategies", [])
    return kids


def subtree(order: Order) -> Iterator[Order]:
    """``order`` and every order below it, parents first."""
    yield order
    for child in children(order):
        yield from subtree(child)


class OrderBook:
    """Every order record by id, who is whose parent, and the tree transitions."""

    def __init__(self, clock: SessionClock, notify: Notify, account_number: str, first_id: int):
        self.clock = clock
        self.notify = notify
        self.account_number = account_number
        self.orders: dict[int, Order] = {}
        self.parents: dict[int, int] = {}
        #: Ids of stop orders whose stop was reached (a ``STOP_LIMIT`` then works as a limit).
        self.triggered: set[int] = set()
        self.next_id = first_id

    def clear(self) -> None:
        """Forget every order."""
        self.orders.clear()
        self.parents.clear()
        self.triggered.clear()

    # ------------------------------------------------------------------ the trees

    def add(self, request: OrderRequest, status: str) -> Order:
        """Store the records of ``request`` (every one in ``status``); returns its top record."""
        now = self.clock.now()
        order_id = self.next_id
        self.next_id += 1
        if request.leg is None:
            order = new_container(request.spec, order_id, now, self.account_number)
        else:
            order = new_order(
                request.leg, request.spec, order_id, now, self.account_number, request.strategy
            )
        order["status"] = status
        self.orders[order_id] = order
        for child_request in request.children:
            child = self.add(child_request, status)
            order.setdefault("childOrderStrategies", []).append(child)
            self.parents[child["orderId"]] = order_id
        return order

    def parent(self, order: Order) -> Order | None:
        """The order ``order`` waits for (or the OCO container holding it)."""
        parent_id = self.parents.get(order["orderId"])
        return None if parent_id is None else self.orders[parent_id]

    def oco(self, order: Order) -> Order | None:
        """The OCO container of ``order`` (itself if it is one), or None."""
        if order.get("orderStrategyType") == "OCO":
            return order
        parent = self.parent(order)
        if parent is not None and parent.get("orderStrategyType") == "OCO":
            return parent
        return None

    def roots(self) -> list[Order]:
        """The top-level orders, oldest first."""
        return [o for i, o in self.orders.items() if i not in self.parents]

    def open_legs(self) -> list[Order]:
        """Open orders with legs in tree order (roots oldest first, each tree parents first):
        the order in which a market step looks at them, so the first of an OCO wins a tie."""
        out: list[Order] = []
        for root in self.roots():
            if root["status"] in FINAL_STATUSES and "childOrderStrategies" not in root:
                continue  # the common case of a finished single order: no walk
            out.extend(o for o in subtree(root) if has_legs(o) and o["status"] in OPEN_STATUSES)
        return out

    def replace_in_tree(self, old: Order, new: Order) -> None:
        """Put ``new`` where ``old`` is in its parent's ``childOrderStrategies``."""
        parent = self.parent(old)
        if parent is None:
            return
        kids = children(parent)
        kids[next(i for i, o in enumerate(kids) if o is old)] = new
        self.parents[new["orderId"]] = parent["orderId"]

    # ------------------------------------------------------------------ transitions

    def send(self, kind: str, order: Order, **extra: Any) -> None:
        """One ``ACCT_ACTIVITY`` message about ``order`` (none for a container)."""
        if has_legs(order):
            data = activity_data(order, self.account_number)
            data.update(extra)
            self.notify(kind, data)

    def end(self, order: Order, status: str, reason: str | None = None) -> None:
        """Move an open ``order`` to a final ``status`` and say so."""
        finish(order, status, self.clock.now())
        self.triggered.discard(order["orderId"])
        if reason:
            order["statusDescription"] = reason
        if status == "CANCELED":
            self.send("CancelAccepted", order)
            self.send("OrderUROutCompleted", order)
        elif status == "REJECTED":
            self.send("OrderRejected", order)

    def reject_tree(self, order: Order, reason: str) -> None:
        """Reject ``order`` and everything below it; an OCO sibling is cancelled with it."""
        for o in subtree(order):
            if o["status"] not in FINAL_STATUSES:
                self.end(o, "REJECTED", reason)
        self._end_oco_of(order)

    def cancel_tree(self, order: Order) -> None:
        """Cancel what a cancel request of ``order`` cancels: its OCO group, or itself, and
        every open order below."""
        target = self.oco(order) or order
        for o in subtree(target):
            if o["status"] in OPEN_STATUSES:
                self.end(o, "CANCELED")
        self.settle(target)

    def filled(self, order: Order) -> None:
        """After ``order`` filled: its OCO siblings are cancelled (the container is FILLED)."""
        self._end_oco_of(order)

    def _end_oco_of(self, order: Order) -> None:
        container = self.oco(order)
        if container is None or container is order:
            return
        for sibling in children(container):
            if sibling is not order:
                for o in subtree(sibling):
                    if o["status"] in OPEN_STATUSES:
                        self.end(o, "CANCELED")
        self.settle(container)

    def settle(self, container: Order) -> None:
        """Give an OCO container its final status once all its orders have one."""
        if container.get("orderStrategyType") != "OCO" or container["status"] in FINAL_STATUSES:
            return
        statuses = [o["status"] for o in children(container)]
        if any(s not in FINAL_STATUSES for s in statuses):
            return
        if "FILLED" in statuses:
            status = "FILLED"
        elif "REJECTED" in statuses:
            status = "REJECTED"
        else:
            status = "CANCELED"
        finish(container, status, self.clock.now())
