"""Intake: claim one pending trade, check it against the risk rules, place it once.

At most once: :meth:`Intake.claim_and_submit` calls :meth:`Broker.place` only after its own
transaction moved the row ``pending -> submitting`` and committed; nothing ever moves a row
back to ``pending`` and no other code path places orders. What the broker answered is recorded
as ``working`` (accepted), ``rejected`` or ``unknown`` (reconciled, never re-sent).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import asyncpg

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.control import read_kill_switch
from streamdesk.models import Leg, TradeRequest, TradeStatus
from streamdesk.risk import RiskContext, RiskLimits, check_trade, day_start, parse_request

from . import brackets, store
from .broker import Broker, BrokerError, PlaceKind, PlaceResult
from .config import Settings
from .orders import build_order
from .quotes import QuoteProvider
from .sync import BrokerSync

log = logging.getLogger(__name__)

S = TradeStatus


class Intake:
    """The workers' step: claim, risk checks, submission, and recording the answer."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        broker: Broker,
        quotes: QuoteProvider,
        sync: BrokerSync,
        counters: Counter[str],
        *,
        instance: str,
        live_broker: bool,
        wake_maintenance: Callable[[], None],
        on_fatal: Callable[[str], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.broker = broker
        self.account = broker.account_hash
        self.quotes = quotes
        self.sync = sync
        self.counters = counters
        self.instance = instance
        self.live_broker = live_broker
        self.limits: RiskLimits = settings.risk_limits()
        self.clock = clock
        self._wake_maintenance = wake_maintenance
        self._on_fatal = on_fatal
        #: Claim start -> broker answer of the last accepted order (ms).
        self.last_latency_ms: float | None = None

    async def claim_and_submit(self) -> bool:
        """Claim one pending trade, check it, and submit it. False if there was none."""
        claimed = await self._claim()
        if claimed is None:
            return False
        trade_id, req, t_claim = claimed
        if req is None:
            return True  # rejected during the claim
        await self._submit(trade_id, req, t_claim)
        return True

    async def _claim(self) -> tuple[int, TradeRequest | None, float] | None:
        t0 = time.perf_counter()
        # Peek without locks: nothing to do is the common case after a wake-up, and the quote
        # (possibly an HTTP call to the broker) is fetched before the claim lock is taken, so
        # a slow quote never holds up other executors' claims.
        peek = await store.peek_pending(self.pool, self.account)
        if peek is None:
            return None
        quote = await self.quotes.get(str(peek["symbol"]))
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialize claims per account so the rate, notional and duplicate rules see
            # every concurrent executor's orders.
            await store.lock_account(conn, self.account)
            now = self.clock.now()
            # Read under the claim transaction: a switch engaged before this claim is seen.
            kill_switch = await read_kill_switch(conn)
            trade = await store.claim_pending(
                conn, self.account, day_start(now), float(self.limits.duplicate_window)
            )
            if trade is None:
                return None
            trade_id = int(trade["id"])
            self.counters["claimed"] += 1
            parsed = parse_request(trade)
            if not isinstance(parsed, TradeRequest):
                await store.transition(
                    conn,
                    trade_id,
                    (S.PENDING,),
                    S.REJECTED,
                    parsed.reason,
                    {"codes": [parsed.code]},
                    error=parsed.reason,
                    claimed_by=self.instance,
                )
                self.counters["rejected_risk"] += 1
                return trade_id, None, t0
            if parsed.symbol != peek["symbol"]:
                quote = await self.quotes.get(parsed.symbol)  # another executor took the peeked one
            ctx = RiskContext(
                now=now,
                quote=quote,
                submitter_is_operator=bool(trade["ctx_submitter_operator"]),
                live_broker=self.live_broker,
                orders_last_minute=int(trade["ctx_per_minute"]),
                day_notional=Decimal(trade["ctx_day_notional"]),
                duplicate_of=trade["ctx_duplicate_of"],
                buying_power=trade["ctx_buying_power"],
                open_buy_notional=Decimal(trade["ctx_open_buy"]),
                kill_switch=kill_switch,
            )
            result = check_trade(parsed, ctx, self.limits)
            quote_detail = (
                {"bid": quote.bid, "ask": quote.ask, "last": quote.last, "ts": quote.ts}
                if quote is not None
                else None
            )
            if not result.ok:
                await store.transition(
                    conn,
                    trade_id,
                    (S.PENDING,),
                    S.REJECTED,
                    result.reason,
                    {"codes": sorted(result.codes), "quote": quote_detail},
                    error=result.reason,
                    claimed_by=self.instance,
                    account_hash=self.account,
                )
                self.counters["rejected_risk"] += 1
                if "not_operator" in result.codes:
                    self.counters["rejected_not_operator"] += 1
                    log.warning(
                        "trade %s from non-operator %s rejected", trade_id, trade["user_id"]
                    )
                log.info("trade %s rejected by risk: %s", trade_id, result.reason)
                return trade_id, None, t0
            moved = await store.transition(
                conn,
                trade_id,
                (S.PENDING,),
                S.SUBMITTING,
                "risk checks passed",
                {"instance": self.instance, "notional": result.notional, "quote": quote_detail},
                submitted_at=now,
                claimed_by=self.instance,
                account_hash=self.account,
                notional=result.notional,
                # as the broker spells it: reconciliation and the one-open-order index compare it
                symbol=parsed.symbol,
                **({"leg": Leg.ENTRY.value} if parsed.is_bracket else {}),
            )
            if moved is not None and parsed.is_bracket:
                # Same transaction: an entry never exists without its exits, nor they without it.
                await brackets.create_legs(conn, trade_id, parsed, self.instance)
        if moved is None:
            # Cannot happen while we hold the row lock; if it ever does, never send.
            log.error("trade %s left `pending` under our lock; not sending it", trade_id)
            return trade_id, None, t0
        return trade_id, parsed, t0

    async def _submit(self, trade_id: int, req: TradeRequest, t0: float) -> None:
        # The row is committed as `submitting`: from here on this order is never sent again.
        spec = build_order(req)
        t_send = time.perf_counter()
        result = await self.broker.place(spec)
        t_answer = time.perf_counter()
        self.counters["submitted"] += 1
        if self.broker.fatal_error is not None:
            self._on_fatal(self.broker.fatal_error)
        async with self.pool.acquire() as conn:
            await self._record_place(
                conn, trade_id, result, (t_answer - t0) * 1000, (t_answer - t_send) * 1000
            )
            if req.is_bracket:
                await self._record_legs(conn, trade_id, result)

    async def _record_legs(self, conn: store.Conn, trade_id: int, result: PlaceResult) -> None:
        """The exits follow the entry's answer: linked from its tree when accepted (or left
        `submitting` for the next sync pass if the tree cannot be read now), rejected with
        it, or `unknown` with it. Never a second placement."""
        if result.kind is PlaceKind.REJECTED:
            await brackets.settle_legs(
                conn,
                trade_id,
                S.REJECTED,
                f"entry #{trade_id} rejected: {result.reason}",
                {"instance": self.instance, "http_status": result.http_status},
            )
        elif result.kind is PlaceKind.UNKNOWN:
            await brackets.legs_unknown(
                conn, trade_id, f"entry #{trade_id}'s outcome is unknown: {result.reason}"
            )
        elif result.order_id is not None:
            try:
                top = await self.broker.get_order(result.order_id)
            except BrokerError as exc:
                log.warning(
                    "trade %s: tree of order %s not read (%s)", trade_id, result.order_id, exc
                )
                return
            if top is None:
                return
            for row, child in await brackets.link_legs(conn, trade_id, top, self.instance):
                await self.sync.apply_order(row, child)

    async def _record_place(
        self,
        conn: store.Conn,
        trade_id: int,
        result: PlaceResult,
        latency_ms: float,
        broker_ms: float,
    ) -> None:
        detail = {
            "instance": self.instance,
            "http_status": result.http_status,
            "accepted_at": result.accepted_at,
            "latency_ms": round(latency_ms, 3),
            "broker_ms": round(broker_ms, 3),
        }
        if result.kind is PlaceKind.ACCEPTED:
            self.last_latency_ms = latency_ms
            self.counters["accepted"] += 1
            detail["broker_order_id"] = result.order_id
            reason = f"broker accepted order {result.order_id}"
            try:
                old = await store.transition(
                    conn,
                    trade_id,
                    (S.SUBMITTING, S.UNKNOWN),
                    S.WORKING,
                    reason,
                    detail,
                    broker_order_id=result.order_id,
                )
                if old is None:
                    # The user asked to cancel while we were sending: keep the request, link
                    # the order so the cancel can reach the broker.
                    old = await store.transition(
                        conn,
                        trade_id,
                        (S.CANCEL_REQUESTED,),
                        S.CANCEL_REQUESTED,
                        reason,
                        detail,
                        broker_order_id=result.order_id,
                    )
                    self._wake_maintenance()
            except asyncpg.UniqueViolationError:
                old = None
            if old is None and await store.broker_order_id_of(conn, trade_id) == result.order_id:
                old = "linked"  # reconciliation got there first (this worker was slow)
            if old is None:
                log.error(
                    "trade %s: broker order %s could not be linked", trade_id, result.order_id
                )
                await store.raise_alert(
                    conn,
                    trade_id,
                    "link_failed",
                    f"broker order {result.order_id} could not be linked",
                    detail,
                )
            self.sync.mark_dirty()
        elif result.kind is PlaceKind.REJECTED:
            self.counters["rejected_broker"] += 1
            await store.transition(
                conn,
                trade_id,
                (S.SUBMITTING, S.UNKNOWN, S.CANCEL_REQUESTED),
                S.REJECTED,
                result.reason,
                detail,
                error=result.reason,
            )
            log.info("trade %s rejected by the broker: %s", trade_id, result.reason)
        else:
            self.counters["unknown"] += 1
            await store.transition(
                conn,
                trade_id,
                (S.SUBMITTING,),
                S.UNKNOWN,
                result.reason,
                detail,
                error=result.reason,
            )
            log.warning("trade %s outcome unknown (%s); reconciling", trade_id, result.reason)
            self._wake_maintenance()
