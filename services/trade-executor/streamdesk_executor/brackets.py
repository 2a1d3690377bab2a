"""Brackets: an entry and its exits as rows, placed as one conditional order.

A client inserts one row (the entry, with ``take_profit_price`` / ``stop_loss_price``). The
transaction that claims it inserts the exit rows (:func:`create_legs`): ``parent_id`` = the
entry, ``submitting``, so a crash never leaves one without the other. The whole tree is placed
with one :meth:`Broker.place`; the exits never are on their own. They get their broker ids
from their entry's order tree (:func:`link_legs`, matched by role: the ``LIMIT`` child is the
take-profit, the stop child the stop-loss), right after acceptance or, if that read failed or
the outcome was unknown, in a later maintenance pass (:class:`LegSync`). Until then a leg
follows its entry: ``unknown`` with it, final with it if the entry never reached the broker.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import asyncpg

from streamdesk.models import Leg, TradeRequest, TradeStatus

from . import store
from .broker import Broker
from .orders import BrokerOrder, leg_children
from .sync import BrokerSync

log = logging.getLogger(__name__)

S = TradeStatus

#: A leg not yet linked to its broker order, in a status that may still be linked.
_UNLINKED = (S.SUBMITTING, S.UNKNOWN)
_FINAL = frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED})


def index_orders(orders: Iterable[BrokerOrder]) -> dict[str, BrokerOrder]:
    """Every order of the listed trees by id (the list holds top-level orders only)."""
    out: dict[str, BrokerOrder] = {}
    stack = list(orders)
    while stack:
        o = stack.pop()
        out.setdefault(o.order_id, o)
        stack.extend(o.children)
    return out


def tree_matches(trade: dict[str, Any], order: BrokerOrder) -> bool:
    """True if ``order``'s tree has the shape of ``trade``: no children for a single order;
    for a bracket's entry, exactly its exits with their prices."""
    if trade.get("leg") != Leg.ENTRY:
        return not order.children
    want: dict[Leg, Decimal] = {}
    if trade.get("take_profit_price") is not None:
        want[Leg.TAKE_PROFIT] = trade["take_profit_price"]
    if trade.get("stop_loss_price") is not None:
        want[Leg.STOP_LOSS] = trade["stop_loss_price"]
    kids = leg_children(order)
    if len(order.children) != len(want) or set(kids) != set(want):
        return False
    if Leg.TAKE_PROFIT in want and kids[Leg.TAKE_PROFIT].price != want[Leg.TAKE_PROFIT]:
        return False
    return not (Leg.STOP_LOSS in want and kids[Leg.STOP_LOSS].stop_price != want[Leg.STOP_LOSS])


async def create_legs(
    conn: store.Conn, entry_id: int, req: TradeRequest, instance: str
) -> list[int]:
    """Insert the exit rows of bracket entry ``entry_id`` (in the claim's transaction)."""
    ids = []
    for leg, exit_req in req.bracket_legs():
        price = exit_req.limit_price if exit_req.limit_price is not None else exit_req.stop_price
        ids.append(
            await store.insert_leg(
                conn,
                entry_id,
                leg.value,
                exit_req.instruction.value,
                exit_req.order_type.value,
                exit_req.limit_price,
                exit_req.stop_price,
                f"{leg.value} of bracket #{entry_id}: {exit_req.instruction.value} "
                f"{exit_req.order_type.value} at {price}",
                {"instance": instance, "entry_id": entry_id},
            )
        )
    return ids


async def link_legs(
    conn: store.Conn, entry_id: int, top: BrokerOrder, instance: str
) -> list[tuple[dict[str, Any], BrokerOrder]]:
    """Link the unlinked legs of ``entry_id`` to the children of its broker order ``top``;
    the (row as linked, child order) pairs, for the caller to apply the child's status."""
    children = leg_children(top)
    linked = []
    for row in await store.legs_of(conn, entry_id):
        child = children.get(Leg(row["leg"]))
        if row["broker_order_id"] is not None or child is None:
            continue
        status = TradeStatus(row["status"])
        to = S.CANCEL_REQUESTED if status is S.CANCEL_REQUESTED else S.WORKING
        if status not in (*_UNLINKED, S.CANCEL_REQUESTED):
            continue
        reason = f"linked to broker order {child.order_id} ({child.status}) of entry #{entry_id}"
        detail = {
            "broker_order_id": child.order_id,
            "parent_broker_order_id": top.order_id,
            "broker_status": child.status,
            "instance": instance,
        }
        try:
            old = await store.transition(
                conn,
                int(row["id"]),
                (status,),
                to,
                reason,
                detail,
                broker_order_id=child.order_id,
                broker_status=child.status,
                error=None,
            )
        except asyncpg.UniqueViolationError:
            continue  # linked by another executor meanwhile
        if old is not None:
            linked.append(({**row, "status": to, "broker_order_id": child.order_id}, child))
    return linked


async def settle_legs(
    conn: store.Conn, entry_id: int, final: TradeStatus, reason: str, detail: dict[str, Any]
) -> int:
    """Its entry never reached the broker (refused, or absent): its unlinked legs end too."""
    n = 0
    for row in await store.legs_of(conn, entry_id):
        if row["broker_order_id"] is not None:
            continue
        status = TradeStatus(row["status"])
        to = S.CANCELLED if status is S.CANCEL_REQUESTED else final
        if status in _FINAL:
            continue
        if await store.transition(
            conn, int(row["id"]), (status,), to, reason, detail, error=reason
        ):
            n += 1
    return n


async def legs_unknown(conn: store.Conn, entry_id: int, reason: str) -> None:
    """The entry's outcome is unknown: so is its legs' (they are linked when it is)."""
    for row in await store.legs_of(conn, entry_id):
        if row["status"] == S.SUBMITTING:
            await store.transition(
                conn, int(row["id"]), (S.SUBMITTING,), S.UNKNOWN, reason, {"entry_id": entry_id}
            )


async def cascade_cancel(conn: store.Conn, entry_id: int) -> int:
    """A cancel asked of an entry that had filled: ask it of its working exits instead."""
    n = 0
    for row in await store.legs_of(conn, entry_id):
        if row["status"] == S.WORKING and await store.transition(
            conn,
            int(row["id"]),
            (S.WORKING,),
            S.CANCEL_REQUESTED,
            f"cancel of bracket #{entry_id}: its entry had filled, so its exits are cancelled",
            {"entry_id": entry_id},
        ):
            n += 1
    return n


class LegSync:
    """The maintenance pass's part for legs: link, follow the entry, sync, cancel."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        sync: BrokerSync,
        counters: Counter[str],
        *,
        instance: str,
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.sync = sync
        self.counters = counters
        self.instance = instance

    async def run(self, legs: list[dict[str, Any]], by_id: dict[str, BrokerOrder]) -> None:
        """One pass over the open legs; ``by_id`` is :func:`index_orders` of the listing."""
        for leg in legs:
            try:
                await self._one(leg, by_id)
            except Exception as exc:
                # One leg's trouble (a failed get/cancel) must not hold up the others.
                self.counters["sync_errors"] += 1
                log.warning("sync of leg %s failed: %s", leg["id"], exc)

    async def _order(self, order_id: str, by_id: dict[str, BrokerOrder]) -> BrokerOrder | None:
        found = by_id.get(order_id)
        if found is None:
            found = await self.broker.get_order(order_id)
            if found is not None:
                by_id.update(index_orders([found]))
        return found

    async def _one(self, leg: dict[str, Any], by_id: dict[str, BrokerOrder]) -> None:
        order: BrokerOrder | None
        if leg["broker_order_id"] is None:
            linked = await self._link(leg, by_id)
            if linked is None:
                return
            leg, order = linked
        else:
            order = await self._order(str(leg["broker_order_id"]), by_id)
        if order is not None:
            await self.sync.apply_order(leg, order)
        if leg["status"] == S.CANCEL_REQUESTED:
            await self.sync.send_cancel(leg, order)

    async def _link(
        self, leg: dict[str, Any], by_id: dict[str, BrokerOrder]
    ) -> tuple[dict[str, Any], BrokerOrder] | None:
        entry_id = int(leg["parent_id"])
        parent_status = TradeStatus(leg["parent_status"])
        if leg["parent_order_id"] is not None:
            top = await self._order(str(leg["parent_order_id"]), by_id)
            if top is None:
                return None
            async with self.pool.acquire() as conn:
                pairs = await link_legs(conn, entry_id, top, self.instance)
            self.counters["legs_linked"] += len(pairs)
            for row, child in pairs:
                if row["id"] == leg["id"]:
                    return row, child
            if Leg(leg["leg"]) not in leg_children(top):
                log.error("leg %s: entry order %s has no such child", leg["id"], top.order_id)
            return None
        async with self.pool.acquire() as conn:
            if parent_status in _FINAL:
                reason = f"entry #{entry_id} is {parent_status.value} and never reached the broker"
                if leg["parent_error"]:
                    reason += f": {leg['parent_error']}"
                final = S.CANCELLED if parent_status is S.CANCELLED else S.REJECTED
                await settle_legs(conn, entry_id, final, reason, {"instance": self.instance})
            elif parent_status is S.UNKNOWN and leg["status"] == S.SUBMITTING:
                await legs_unknown(
                    conn, entry_id, f"entry #{entry_id}'s outcome is unknown; reconciling it"
                )
        return None
