"""Stop moves: a working ``STOP`` / ``STOP_LIMIT`` row with ``replace_stop_price`` set is
replaced at the broker (:meth:`Broker.replace`) after the ``stop_side`` re-check.

Each request is taken once (:func:`store.take_replace` clears it in the statement that writes
its event, so one executor of many takes it) and sent once. The old order can be replaced only
once at the broker, so an answer that is lost cannot have moved the stop twice: the sync sees
the old order ``REPLACED`` and follows its successor
(:meth:`.sync.BrokerSync.follow_replacement`). The row's ``stop_price`` is always the
broker's: it changes when the new order is linked, never on the request alone.
"""

from __future__ import annotations

import logging
from collections import Counter
from decimal import Decimal
from typing import Any

import asyncpg

from streamdesk.models import OrderType, TradeRequest, TradeStatus
from streamdesk.risk import RiskLimits, parse_request
from streamdesk.risk_orders import stop_move_violations

from . import store
from .broker import Broker, PlaceKind
from .orders import build_order
from .quotes import QuoteProvider
from .sync import BrokerSync

log = logging.getLogger(__name__)

S = TradeStatus

_MOVABLE = (OrderType.STOP, OrderType.STOP_LIMIT)


class StopMover:
    """Takes stop-move requests and replaces the broker orders."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        quotes: QuoteProvider,
        sync: BrokerSync,
        limits: RiskLimits,
        counters: Counter[str],
        *,
        instance: str,
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.quotes = quotes
        self.sync = sync
        self.limits = limits
        self.counters = counters
        self.instance = instance

    async def run(self, rows: list[dict[str, Any]]) -> None:
        """Handle every requested move of ``rows`` (one failing never stops the others)."""
        for row in rows:
            try:
                await self.move(row)
            except Exception as exc:
                self.counters["replace_errors"] += 1
                log.warning("stop move of trade %s failed: %s", row["id"], exc)

    async def _drop(self, row: dict[str, Any], price: Decimal, reason: str, **detail: Any) -> None:
        async with self.pool.acquire() as conn:
            if await store.take_replace(
                conn,
                int(row["id"]),
                price,
                reason,
                {"replace_stop_price": price, "instance": self.instance, **detail},
            ):
                self.counters["replace_refused"] += 1
                log.info("trade %s: %s", row["id"], reason)

    async def move(self, row: dict[str, Any]) -> None:
        """Check, take and send one move; record what the broker answered."""
        trade_id = int(row["id"])
        price = Decimal(row["replace_stop_price"])
        old_id = row["broker_order_id"]
        if (
            row["status"] != S.WORKING
            or row["order_type"] not in _MOVABLE
            or old_id is None
            or row["stop_price"] is None
        ):
            await self._drop(
                row,
                price,
                f"stop move refused: the trade is a {row['status']} {row['order_type']} order; "
                "only a working STOP or STOP_LIMIT can be moved",
            )
            return
        req = parse_request(row)
        if not isinstance(req, TradeRequest):
            await self._drop(row, price, f"stop move refused: {req.reason}", codes=[req.code])
            return
        quote = await self.quotes.get(req.symbol)
        violations = stop_move_violations(req, price, quote, self.limits)
        if quote is None:
            await self._drop(
                row, price, f"stop move refused: no quote for {req.symbol}", codes=["no_quote"]
            )
            return
        if violations:
            await self._drop(
                row,
                price,
                "stop move refused: " + "; ".join(v.reason for v in violations),
                codes=sorted(v.code for v in violations),
            )
            return
        old_stop = row["stop_price"]
        detail = {
            "old_broker_order_id": old_id,
            "stop_price": old_stop,
            "replace_stop_price": price,
            "instance": self.instance,
        }
        async with self.pool.acquire() as conn:
            taken = await store.take_replace(
                conn,
                trade_id,
                price,
                f"stop move {old_stop} -> {price} sent to the broker (replace order {old_id})",
                detail,
            )
        if not taken:
            return  # another executor took it, or a newer request replaced it
        spec = build_order(req.model_copy(update={"stop_price": price}))
        result = await self.broker.replace(str(old_id), spec)
        self.counters["replace_sent"] += 1
        if self.broker.fatal_error is not None:
            return  # the executor stops; the request is consumed, the stop did not move
        detail.update(http_status=result.http_status, accepted_at=result.accepted_at)
        async with self.pool.acquire() as conn:
            if result.kind is PlaceKind.ACCEPTED and result.order_id is not None:
                reason = (
                    f"replaced: broker order {old_id} -> {result.order_id}"
                    f" (stop {old_stop} -> {price})"
                )
                detail.update(event="replaced", broker_order_id=result.order_id)
                if await store.relink(
                    conn, trade_id, str(old_id), result.order_id, price, reason, detail
                ):
                    self.counters["replaced"] += 1
                    log.info("trade %s %s", trade_id, reason)
                self.sync.mark_dirty()
                return
            if result.kind is PlaceKind.REJECTED:
                reason = f"stop move refused by the broker: {result.reason}"
                self.counters["replace_refused"] += 1
            else:
                # The sync follows the old order to its successor if the replace happened.
                reason = f"stop move outcome unknown ({result.reason}); reconciling"
                self.counters["replace_unknown"] += 1
            status = TradeStatus(row["status"])
            await store.transition(conn, trade_id, (status,), status, reason, detail)
            log.info("trade %s: %s", trade_id, reason)
