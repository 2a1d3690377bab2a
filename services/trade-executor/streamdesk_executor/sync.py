"""Sync from the broker: order status and fills, cancels, positions and balances.

The broker is the truth for every linked order: :meth:`BrokerSync.apply_order` brings a row in
line with it (final status, or a partial fill). Positions and balances are copied after fills
(at most once a second, changed positions only) and in full every
``EXECUTOR_BALANCE_INTERVAL`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import asyncpg

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.models import TradeStatus

from . import store
from .broker import Broker
from .config import Settings
from .orders import BrokerOrder

log = logging.getLogger(__name__)

S = TradeStatus

#: The broker's status of an order that another took the place of (a replace).
REPLACED = "REPLACED"
#: A cancel is sent again only after this long without an answer (s).
_CANCEL_RESEND = 5.0
#: Positions are synced after fills at most this often (s): a burst of fills needs one sync.
_FILL_SYNC_EVERY = 1.0


def _leg_quantity_moved(row: dict[str, Any], order: BrokerOrder) -> bool:
    """A leg whose broker order has another quantity than the row (a partly filled entry)."""
    return row.get("parent_id") is not None and order.quantity != row["quantity"]


class BrokerSync:
    """Applies the broker's view of orders and of the account to Postgres."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        broker: Broker,
        counters: Counter[str],
        *,
        instance: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.broker = broker
        self.account = broker.account_hash
        self.counters = counters
        self.instance = instance
        self.clock = clock
        self._cancel_sent: dict[int, float] = {}
        self._positions_seen: dict[str, tuple[Decimal, Decimal | None]] = {}
        self._balances_dirty = True
        self._last_full_sync = 0.0
        self._last_fill_sync = 0.0

    def mark_dirty(self) -> None:
        """Positions may have changed (a fill, an accepted order): sync them soon."""
        self._balances_dirty = True

    # ------------------------------------------------------------------ orders

    async def apply_order(self, row: dict[str, Any], order: BrokerOrder) -> bool:
        """Bring the row in line with the broker's view of its order; True if it moved."""
        trade_id = int(row["id"])
        if order.status == REPLACED:
            # Not an end: the order lives on as its successor (a stop move, ours or made
            # elsewhere). Mapping it to `cancelled` would leave the successor untracked.
            return await self.follow_replacement(row, order)
        final = order.final_status
        detail = {"broker_status": order.status, "broker_order_id": order.order_id}
        async with self.pool.acquire() as conn:
            if final is None and (
                row.get("broker_status") != order.status
                or (order.stop_price is not None and row.get("stop_price") != order.stop_price)
            ):
                await store.update_broker_view(conn, trade_id, order.status, order.stop_price)
            if final is not None:
                reason = f"broker reports {order.status}"
                if order.reason:
                    reason += f": {order.reason}"
                cols: dict[str, Any] = {
                    "filled_quantity": order.filled_quantity,
                    "avg_fill_price": order.avg_fill_price,
                    "broker_status": order.status,
                }
                if final is S.REJECTED:
                    cols["error"] = order.reason or "rejected by the broker"
                if _leg_quantity_moved(row, order):
                    cols["quantity"] = order.quantity
                old = await store.transition(
                    conn,
                    trade_id,
                    (S.WORKING, S.CANCEL_REQUESTED, S.UNKNOWN),
                    final,
                    reason,
                    detail,
                    **cols,
                )
                if old is not None:
                    self.counters[final.value] += 1
                    if order.filled_quantity > 0:
                        self._balances_dirty = True
                    await store.resolve_alerts(conn, trade_id)
                    self._cancel_sent.pop(trade_id, None)
                return old is not None
            if _leg_quantity_moved(row, order):
                # Schwab activates a bracket's exits for what the entry filled: the leg shows
                # the broker's quantity (market-sim fills whole orders, so never there).
                status = TradeStatus(row["status"])
                if await store.transition(
                    conn,
                    trade_id,
                    (status,),
                    status,
                    f"quantity {row['quantity']} -> {order.quantity}: the broker works the exit "
                    "for the quantity its entry filled",
                    detail,
                    quantity=order.quantity,
                ):
                    self.counters["leg_quantity_changes"] += 1
            if order.filled_quantity != row["filled_quantity"]:
                status = TradeStatus(row["status"])
                old = await store.transition(
                    conn,
                    trade_id,
                    (status,),
                    status,
                    "partial fill",
                    detail,
                    filled_quantity=order.filled_quantity,
                    avg_fill_price=order.avg_fill_price,
                )
                if old is not None:
                    self._balances_dirty = True
                    self.counters["partial_fills"] += 1
        return False

    async def follow_replacement(self, row: dict[str, Any], order: BrokerOrder) -> bool:
        """Row's order was ``REPLACED`` at the broker: link the row to its successor (event
        ``replaced`` with both ids and the new stop) and apply the successor's status."""
        trade_id = int(row["id"])
        new_id = await self.broker.replaced_by(order.order_id)
        if new_id is None:
            log.warning(
                "trade %s: order %s REPLACED, successor not known", trade_id, order.order_id
            )
            return False
        new = await self.broker.get_order(new_id)
        if new is None:
            return False
        reason = (
            f"replaced: broker order {order.order_id} -> {new_id}"
            f" (stop {row.get('stop_price')} -> {new.stop_price})"
        )
        detail = {
            "event": "replaced",
            "old_broker_order_id": order.order_id,
            "broker_order_id": new_id,
            "stop_price": new.stop_price,
            "instance": self.instance,
        }
        async with self.pool.acquire() as conn:
            moved = await store.relink(
                conn, trade_id, order.order_id, new_id, new.stop_price, reason, detail
            )
        if moved:
            self.counters["replaced"] += 1
            log.info("trade %s %s", trade_id, reason)
            await self.apply_order(
                {**row, "broker_order_id": new_id, "stop_price": new.stop_price}, new
            )
        return moved

    async def send_cancel(self, row: dict[str, Any], order: BrokerOrder | None) -> None:
        """Ask the broker to cancel the row's order (again after :data:`_CANCEL_RESEND` s)."""
        trade_id = int(row["id"])
        if order is not None and order.final_status is not None:
            return  # apply_order settled it
        sent = self._cancel_sent.get(trade_id)
        if sent is not None and time.monotonic() - sent < _CANCEL_RESEND:
            return
        self._cancel_sent[trade_id] = time.monotonic()
        ok, reason = await self.broker.cancel(str(row["broker_order_id"]))
        self.counters["cancel_sent"] += 1
        after = await self.broker.get_order(str(row["broker_order_id"]))
        if after is not None and after.final_status is not None:
            await self.apply_order(row, after)
            self._cancel_sent.pop(trade_id, None)
        elif not ok:
            log.warning("trade %s: %s", trade_id, reason)

    async def cancel_unsent(self, conn: store.Conn) -> None:
        """Settle cancel requests of rows that were never sent (no broker call needed)."""
        for trade_id in await store.unsent_cancels(
            conn, self.account, self.settings.executor_max_pending_batch
        ):
            if await store.transition(
                conn,
                trade_id,
                (S.CANCEL_REQUESTED,),
                S.CANCELLED,
                "cancelled before it was sent to the broker",
                {"instance": self.instance},
            ):
                self.counters[S.CANCELLED.value] += 1

    # ------------------------------------------------------------------ account

    @property
    def balances_pending(self) -> bool:
        """True while a post-fill sync of positions and balances is still to come."""
        return self._balances_dirty

    def balances_due(self, *, startup: bool) -> bool | None:
        """True: a full sync is due; False: a post-fill sync is due; None: nothing is due."""
        now = time.monotonic()
        full = startup or now - self._last_full_sync >= self.settings.executor_balance_interval
        if full or (self._balances_dirty and now - self._last_fill_sync >= _FILL_SYNC_EVERY):
            self._last_fill_sync = now
            return full
        return None

    async def sync_balances(self, *, full: bool = True) -> None:
        """Copy balances and positions from the broker into Postgres.

        ``full=False`` (the sync right after fills) writes only positions whose quantity or
        average price changed; market values are refreshed by the periodic full sync.
        """
        # Taken before asking: orders submitted after it are not in the broker's holds.
        asked_at = self.clock.now()
        snap = await self.broker.account()
        current = {p.symbol: (p.quantity, p.average_price) for p in snap.positions}
        changed = [
            p
            for p in snap.positions
            if full or self._positions_seen.get(p.symbol) != (p.quantity, p.average_price)
        ]
        async with self.pool.acquire() as conn:
            await store.save_account(conn, self.account, snap, asked_at, changed)
        self._positions_seen = current
        self._balances_dirty = False
        if full:
            self._last_full_sync = time.monotonic()
        self.counters["balance_syncs"] += 1
