"""Maintenance: orphans, unknown outcomes matched against the broker, sync of open orders.

A row that may have reached the broker (``unknown``, or ``submitting`` whose worker has been
silent for longer than the broker timeout + grace) is never re-sent: it is matched against the
broker's order list (:func:`match_orders`). With at most one unsettled order per (account,
symbol) (a unique index) the match is unambiguous; docs/trade-executor.md has the argument.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.constants import EXECUTOR_RECONCILE_KEY
from streamdesk.models import Leg, OrderType, TradeStatus

from . import store
from .brackets import LegSync, cascade_cancel, index_orders, link_legs, tree_matches
from .broker import Broker, BrokerError
from .config import Settings
from .orders import BrokerOrder
from .replace import StopMover
from .sync import BrokerSync

log = logging.getLogger(__name__)

S = TradeStatus

#: Linked orders are listed from a little before their own submission (s).
_LINKED_MARGIN = 5.0


@dataclass(frozen=True, slots=True)
class ReconcileSummary:
    """One reconciliation pass: rows checked, resolved, and still unknown."""

    time: str
    checked: int
    resolved: int
    still_unknown: int
    error: str | None = None
    #: Rows the pass had to look after (open rows, unsettled legs, stop moves): 0 = idle.
    open_work: int = 0

    def as_json(self, instance: str) -> str:
        """The JSON written at :data:`EXECUTOR_RECONCILE_KEY`."""
        return json.dumps(
            {
                "time": self.time,
                "checked": self.checked,
                "resolved": self.resolved,
                "still_unknown": self.still_unknown,
                "instance": instance,
                **({"error": self.error} if self.error else {}),
            }
        )


def match_orders(
    trade: dict[str, Any], orders: list[BrokerOrder], linked: set[str], skew: float
) -> list[BrokerOrder]:
    """Broker orders that may be ``trade``'s: same symbol, instruction, quantity, type, price,
    entered no earlier than ``skew`` seconds before the trade's ``submitted_at``, not already
    linked to another trade, and of the same tree shape (a bracket entry's exits)."""
    submitted: datetime | None = trade["submitted_at"]
    earliest = submitted - timedelta(seconds=skew) if submitted is not None else None
    out = []
    for o in orders:
        if o.order_id in linked:
            continue
        if (
            o.symbol != trade["symbol"]
            or o.instruction != trade["instruction"]
            or o.quantity != trade["quantity"]
            or o.order_type != trade["order_type"]
        ):
            continue
        if trade["order_type"] == OrderType.LIMIT and o.price != trade["limit_price"]:
            continue
        if earliest is not None and o.entered is not None and o.entered < earliest:
            continue
        if not tree_matches(trade, o):
            continue  # a bracket's entry is a tree with its exits; a single order is not
        out.append(o)
    return out


class Reconciler:
    """One maintenance pass: cancels, orphans, sync of linked rows, reconciliation, balances."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        broker: Broker,
        sync: BrokerSync,
        counters: Counter[str],
        *,
        instance: str,
        mover: StopMover | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.broker = broker
        self.account = broker.account_hash
        self.sync = sync
        self.counters = counters
        self.instance = instance
        self.clock = clock
        self.mover = mover
        self.legs = LegSync(pool, broker, sync, counters, instance=instance)
        self._legs_after = 0

    async def maintenance_pass(self, *, startup: bool = False) -> ReconcileSummary:
        """Cancels, orphan detection, status/fill sync, reconciliation, balances; one pass.

        Raises :class:`BrokerError` when the broker's order list could not be read (after the
        alerts that are due and the summary are written).
        """
        s = self.settings
        limit = s.executor_max_pending_batch
        async with self.pool.acquire() as conn:
            await self.sync.cancel_unsent(conn)
            orphan_age = s.executor_broker_timeout + s.executor_submit_grace
            for trade_id in await store.orphans(conn, self.account, orphan_age, limit):
                if await store.transition(
                    conn,
                    trade_id,
                    (S.SUBMITTING,),
                    S.UNKNOWN,
                    "executor stopped before the broker answered",
                    {"instance": self.instance},
                ):
                    self.counters["orphans"] += 1
            rows = await store.open_rows(conn, self.account, limit)
            legs = await store.open_legs(conn, self.account, limit, self._legs_after)
            # The next pass takes the next batch; after the last one, from the start again.
            self._legs_after = int(legs[-1]["id"]) if len(legs) >= limit else 0
            moves = await store.replace_requests(conn, self.account, limit)
        if self.mover is not None and moves:
            await self.mover.run(moves)
        to_reconcile = [r for r in rows if r["broker_order_id"] is None]
        linked_rows = [r for r in rows if r["broker_order_id"] is not None]
        resolved = 0
        still = 0
        broker_error: BrokerError | None = None
        if rows or legs:
            # Linked orders need the list only from their own submission on; the clock-skew
            # margin is for matching unlinked ones. (Keeps the list short: it is parsed on
            # every pass.) A leg is listed in its entry's tree: entered when the entry was.
            since = min(
                [r["submitted_at"] - timedelta(seconds=_LINKED_MARGIN) for r in linked_rows + legs]
                + [
                    r["submitted_at"] - timedelta(seconds=s.executor_reconcile_skew)
                    for r in to_reconcile
                ]
            )
            try:
                orders: list[BrokerOrder] | None = await self.broker.list_orders(since)
            except BrokerError as exc:
                broker_error = exc
                orders = None
            if orders is None:
                # Cannot reconcile now; still raise the alerts that are due.
                for r in to_reconcile:
                    await self._alert_if_stuck(r, f"broker unreachable: {broker_error}")
                still = len(to_reconcile)
            else:
                by_id = index_orders(orders)
                await self._sync_linked(linked_rows, by_id)
                for r in to_reconcile:
                    try:
                        settled = await self._reconcile_one(r, orders)
                    except BrokerError as exc:
                        self.counters["sync_errors"] += 1
                        log.warning("reconciliation of trade %s failed: %s", r["id"], exc)
                        settled = False
                    if settled:
                        resolved += 1
                    else:
                        still += 1
                await self.legs.run(legs, by_id)
        summary = ReconcileSummary(
            self.clock.now().isoformat(),
            len(to_reconcile),
            resolved,
            still,
            None if broker_error is None else f"broker unreachable: {broker_error}",
            len(rows) + len(legs) + len(moves) + int(self.sync.balances_pending),
        )
        self.counters["reconciled"] += resolved
        try:
            await asyncio.wait_for(
                self.redis.set(EXECUTOR_RECONCILE_KEY, summary.as_json(self.instance)), 2.0
            )
        except Exception as exc:
            log.warning("could not write the reconcile summary: %s", exc)
        if broker_error is not None:
            raise broker_error
        full = self.sync.balances_due(startup=startup)
        if full is not None:
            try:
                await self.sync.sync_balances(full=full)
            except BrokerError as exc:
                log.warning("balance sync failed: %s", exc)
        return summary

    async def _sync_linked(self, rows: list[dict[str, Any]], by_id: dict[str, BrokerOrder]) -> None:
        for r in rows:
            # One order's trouble (a failed get/cancel) must not hold up the others.
            try:
                order = by_id.get(str(r["broker_order_id"]))
                if order is None:
                    order = await self.broker.get_order(str(r["broker_order_id"]))
                if (
                    order is not None
                    and r["status"] == S.CANCEL_REQUESTED
                    and r["leg"] == Leg.ENTRY
                    and order.status == "FILLED"
                ):
                    # Too late for the entry: the cancel is for what still works, its exits.
                    async with self.pool.acquire() as conn:
                        await cascade_cancel(conn, int(r["id"]))
                if order is not None:
                    await self.sync.apply_order(r, order)
                if r["status"] == S.CANCEL_REQUESTED:
                    await self.sync.send_cancel(r, order)
            except BrokerError as exc:
                self.counters["sync_errors"] += 1
                log.warning("sync of trade %s failed: %s", r["id"], exc)

    async def _reconcile_one(self, row: dict[str, Any], orders: list[BrokerOrder]) -> bool:
        """Resolve one unlinked, possibly-sent row; True if it is settled or linked."""
        s = self.settings
        trade_id = int(row["id"])
        status = TradeStatus(row["status"])
        async with self.pool.acquire() as conn:
            linked = await store.linked_order_ids(conn, [o.order_id for o in orders])
            matches = match_orders(row, orders, linked, s.executor_reconcile_skew)
            age = (self.clock.now() - row["submitted_at"]).total_seconds()
            if len(matches) == 1:
                order = matches[0]
                detail = {
                    "broker_order_id": order.order_id,
                    "entered": order.entered,
                    "broker_status": order.status,
                    "instance": self.instance,
                }
                reason = f"reconciled: matched broker order {order.order_id}"
                to = S.WORKING if status is S.UNKNOWN else status
                try:
                    old = await store.transition(
                        conn,
                        trade_id,
                        (status,),
                        to,
                        reason,
                        detail,
                        broker_order_id=order.order_id,
                        error=None,
                    )
                except asyncpg.UniqueViolationError:
                    return False
                if old is None:
                    return False
                log.info("trade %s %s", trade_id, reason)
                row = {**row, "status": to, "broker_order_id": order.order_id}
                await store.resolve_alerts(conn, trade_id)
                if row.get("leg") == Leg.ENTRY:
                    for leg, child in await link_legs(conn, trade_id, order, self.instance):
                        await self.sync.apply_order(leg, child)
                await self.sync.apply_order(row, order)
                if to is S.CANCEL_REQUESTED:
                    await self.sync.send_cancel(row, order)
                return True
            if len(matches) > 1:
                ids = [m.order_id for m in matches]
                if await store.raise_alert(
                    conn,
                    trade_id,
                    "ambiguous",
                    f"trade {trade_id}: {len(ids)} broker orders match; settle it by hand",
                    {"broker_order_ids": ids},
                ):
                    log.error("trade %s: ambiguous reconciliation %s", trade_id, ids)
                return False
            if age >= s.executor_absent_after:
                reason = (
                    f"reconciled: no such order at the broker {age:.0f}s after submission; "
                    "it never reached the broker"
                )
                final = S.CANCELLED if status is S.CANCEL_REQUESTED else S.REJECTED
                old = await store.transition(
                    conn,
                    trade_id,
                    (status,),
                    final,
                    reason,
                    {"instance": self.instance},
                    error=reason,
                )
                if old is not None:
                    await store.resolve_alerts(conn, trade_id)
                    self.counters["absent"] += 1
                    return True
                return False
            await self._alert_if_stuck(row, "no matching order at the broker yet")
            return False

    async def _alert_if_stuck(self, row: dict[str, Any], why: str) -> None:
        """Raise the `unknown` alert of a row unresolved for longer than the alert delay."""
        trade_id = int(row["id"])
        age = (self.clock.now() - row["submitted_at"]).total_seconds()
        if age < self.settings.executor_alert_after:
            return
        async with self.pool.acquire() as conn:
            if await store.raise_alert(
                conn,
                trade_id,
                "unknown",
                f"trade {trade_id} ({row['symbol']}) outcome unknown for {age:.0f}s: {why}",
                {"submitted_at": row["submitted_at"], "error": row["error"]},
            ):
                self.counters["alerts"] += 1
                log.error("trade %s outcome still unknown after %.0fs (%s)", trade_id, age, why)
