"""The executor: claim trades, check risk, place orders once, reconcile, sync back.

Exactly-once, in short (docs/trade-executor.md has the full argument):

* at most once: ``place`` is called only by the worker whose transaction moved the row
  ``pending -> submitting`` and committed; nothing ever moves a row back to ``pending``, and no
  other code path places orders;
* at least once / nothing lost: a row that may have reached the broker (``submitting`` whose
  worker died or timed out, ``unknown``) is matched against the broker's order list; with at
  most one unsettled order per (account, symbol) (a unique index) the match is unambiguous.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.constants import EXECUTOR_RECONCILE_KEY, TRADES_NOTIFY_CHANNEL, last_quote_key
from streamdesk.control import read_kill_switch
from streamdesk.control_watch import ControlWatcher
from streamdesk.db import close_connection, connect
from streamdesk.models import TradeRequest
from streamdesk.risk import (
    Quote,
    RiskContext,
    RiskLimits,
    check_trade,
    day_start,
    parse_request,
    quote_from_mapping,
)
from streamdesk.schwab import TokenExpiredError

from .config import QuoteSource, Settings
from .orders import BrokerOrder, build_order
from .schwab_broker import BrokerError, PlaceKind, PlaceResult, SchwabBroker
from .store import Conn, raise_alert, resolve_alerts, transition

log = logging.getLogger(__name__)

#: The executor's name in heartbeats and in the control plane's pause flags.
SERVICE_NAME = "trade-executor"

_OPEN_IN_SYMBOL = """
    (u.status IN ('submitting', 'working', 'unknown')
     OR (u.status = 'cancel_requested' AND u.submitted_at IS NOT NULL))
"""

_PEEK_SQL = f"""
SELECT t.id, t.symbol FROM trades t
WHERE t.status = 'pending' AND (t.account_hash IS NULL OR t.account_hash = $1)
  AND NOT EXISTS (
      SELECT 1 FROM trades u
      WHERE u.account_hash = $1 AND u.symbol = upper(t.symbol) AND u.id <> t.id
            AND {_OPEN_IN_SYMBOL})
ORDER BY t.id
LIMIT 1
"""

# Claim the oldest pending trade whose symbol has no unsettled order, and gather the facts the
# risk rules need in the same statement (one round trip). $1 account, $2 start of the trading
# day, $3 duplicate window (s).
_CLAIM_SQL = f"""
WITH c AS (
    SELECT t.* FROM trades t
    WHERE t.status = 'pending' AND (t.account_hash IS NULL OR t.account_hash = $1)
      AND NOT EXISTS (
          SELECT 1 FROM trades u
          WHERE u.account_hash = $1 AND u.symbol = upper(t.symbol) AND u.id <> t.id
            AND {_OPEN_IN_SYMBOL})
    ORDER BY t.id
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
)
SELECT c.*,
  (SELECT count(*) FROM trades
    WHERE account_hash = $1 AND submitted_at > now() - interval '1 minute') AS ctx_per_minute,
  (SELECT coalesce(sum(notional), 0) FROM trades
    WHERE account_hash = $1 AND submitted_at >= $2 AND status <> 'rejected') AS ctx_day_notional,
  (SELECT buying_power FROM account_balances WHERE account_hash = $1) AS ctx_buying_power,
  -- The broker's buying power already holds cash for the open orders it knew at the last
  -- sync; hold it here for the ones sent since.
  (SELECT coalesce(sum(o.notional), 0) FROM trades o
    WHERE o.account_hash = $1
      AND o.status IN ('submitting', 'working', 'unknown', 'cancel_requested')
      AND o.instruction IN ('BUY', 'BUY_TO_OPEN', 'BUY_TO_CLOSE', 'SELL_TO_OPEN')
      AND o.submitted_at > coalesce(
          (SELECT b.updated_at FROM account_balances b WHERE b.account_hash = $1),
          '-infinity'::timestamptz)) AS ctx_open_buy,
  (SELECT d.id FROM trades d
    WHERE d.id < c.id AND d.symbol = c.symbol AND d.instruction = c.instruction
      AND d.quantity = c.quantity AND d.order_type = c.order_type
      AND d.limit_price IS NOT DISTINCT FROM c.limit_price
      AND d.status <> 'rejected'
      AND d.created_at >= c.created_at - make_interval(secs => $3::float8)
      AND d.created_at <= c.created_at
    ORDER BY d.id DESC LIMIT 1) AS ctx_duplicate_of,
  -- Defence in depth behind RLS (docs/supabase.md): a service (no user) or a listed operator.
  (c.user_id IS NULL OR EXISTS (SELECT 1 FROM operators op WHERE op.user_id = c.user_id))
    AS ctx_submitter_operator
FROM c
"""


@dataclass(frozen=True, slots=True)
class ReconcileSummary:
    """One reconciliation pass: rows checked, resolved, and still unknown."""

    time: str
    checked: int
    resolved: int
    still_unknown: int
    error: str | None = None

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
    entered no earlier than ``skew`` seconds before the trade's ``submitted_at``, and not
    already linked to another trade."""
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
        if trade["order_type"] == "LIMIT" and o.price != trade["limit_price"]:
            continue
        if earliest is not None and o.entered is not None and o.entered < earliest:
            continue
        out.append(o)
    return out


class QuoteProvider:
    """Quotes for risk checks: the streamer's Redis hash, else the broker (see QuoteSource)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        broker: SchwabBroker,
        source: QuoteSource,
        max_age: float,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.redis = redis
        self.broker = broker
        self.source = source
        self.max_age = max_age
        self.clock = clock
        self.counters: Counter[str] = Counter()

    async def get(self, symbol: str) -> Quote | None:
        """Best available quote of ``symbol`` (None when there is none)."""
        quote: Quote | None = None
        if self.source is not QuoteSource.BROKER:
            try:
                raw = await asyncio.wait_for(self.redis.hgetall(last_quote_key(symbol)), 2.0)
            except Exception as exc:
                log.warning("quote read from Redis failed: %s", exc)
                raw = {}
            quote = quote_from_mapping(symbol, raw) if raw else None
            if quote is not None:
                self.counters["quotes_redis"] += 1
            fresh = quote is not None and quote.age_seconds(self.clock.now()) <= self.max_age
            if fresh or self.source is QuoteSource.REDIS:
                return quote
        try:
            broker_quote = await self.broker.quote(symbol)
        except BrokerError as exc:
            log.warning("broker quote for %s failed: %s", symbol, exc)
            return quote
        if broker_quote is not None:
            self.counters["quotes_broker"] += 1
            return broker_quote
        return quote


class Executor:
    """One executor process's work: workers, NOTIFY listener and the maintenance loop."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        broker: SchwabBroker,
        *,
        instance: str,
        live_broker: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.pool = pool
        self.redis = redis
        self.broker = broker
        self.account = broker.account_hash
        self.instance = instance
        self.live_broker = live_broker
        self.limits: RiskLimits = settings.risk_limits()
        self.quotes = QuoteProvider(
            redis, broker, settings.executor_quote_source, settings.risk_quote_max_age, clock=clock
        )
        self.counters: Counter[str] = Counter()
        self.last_latency_ms: float | None = None
        self.stopping = asyncio.Event()
        # One token per notification wakes one idle worker (not all of them: idle workers
        # racing for the same row would only queue on the claim lock). Bounded.
        self._wake: asyncio.Queue[None] = asyncio.Queue(maxsize=settings.executor_workers)
        self._maint_wake = asyncio.Event()
        self._last_full_sync = 0.0
        self._last_fill_sync = 0.0
        self._positions_seen: dict[str, tuple[Decimal, Decimal | None]] = {}
        self._balances_dirty = True
        self._cancel_sent: dict[int, float] = {}
        self._listen_conn: asyncpg.Connection | None = None
        self.ready = asyncio.Event()
        self.fatal: str | None = None
        #: Pause flag of the control plane (the kill switch is read in each claim instead).
        self.control = ControlWatcher(pool, redis, poll_interval=settings.executor_poll_interval)

    # ------------------------------------------------------------------ public

    def stats(self) -> dict[str, Any]:
        """Counters for the heartbeat."""
        out: dict[str, Any] = dict(self.counters)
        out.update(self.quotes.counters)
        if self.last_latency_ms is not None:
            out["last_submit_latency_ms"] = round(self.last_latency_ms, 2)
        out["paused"] = self.paused
        return out

    @property
    def paused(self) -> bool:
        """True while the operator paused the executor (no new claims)."""
        snap = self.control.snapshot
        return snap is not None and SERVICE_NAME in snap.paused

    async def run(self) -> None:
        """Start-up reconciliation, then work until :attr:`stopping` is set."""
        await self.startup()
        if self.stopping.is_set():
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._listen_loop(), name="executor-listen")
            tg.create_task(self._maintenance_loop(), name="executor-maintenance")
            tg.create_task(self._control_loop(), name="executor-control")
            for i in range(self.settings.executor_workers):
                tg.create_task(self._worker(), name=f"executor-worker-{i}")

    def stop(self) -> None:
        """Stop taking new trades; loops finish their current step and return."""
        self.stopping.set()
        for _ in range(self.settings.executor_workers):
            self._wake_one()
        self._maint_wake.set()

    def _wake_one(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._wake.put_nowait(None)

    async def startup(self) -> None:
        """Sync balances and reconcile every open row before taking new trades.

        Retries (with backoff) until it succeeds: taking trades before knowing what happened
        to the open ones would break the one-unsettled-order-per-symbol rule's guarantees.
        """
        delay = 0.5
        while not self.stopping.is_set():
            try:
                summary = await self.maintenance_pass(startup=True)
            except TokenExpiredError as exc:
                log.critical("Schwab token refused: %s", exc)
                self.fatal = str(exc)
                self.stop()
                return
            except Exception as exc:
                self.counters["startup_retries"] += 1
                log.warning("start-up reconciliation failed (%s); retrying in %.1fs", exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            log.info(
                "start-up reconciliation done",
                extra={
                    "checked": summary.checked,
                    "resolved": summary.resolved,
                    "still_unknown": summary.still_unknown,
                },
            )
            self.ready.set()
            return

    # ------------------------------------------------------------------ intake

    async def _listen_loop(self) -> None:
        def on_notify(_c: object, _pid: int, _channel: str, payload: object) -> None:
            status = str(payload).partition(":")[2]
            if status == "cancel_requested":
                self._maint_wake.set()
            else:
                self._wake_one()

        while not self.stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(
                    self.settings.database_url,
                    server_settings={
                        "application_name": f"trade-executor-listen:{self.instance}"[:63]
                    },
                )
                await conn.add_listener(TRADES_NOTIFY_CHANNEL, on_notify)
                self._listen_conn = conn
                self._wake_one()  # catch up on anything inserted while not listening
                while not self.stopping.is_set() and not conn.is_closed():
                    try:
                        await asyncio.wait_for(self.stopping.wait(), 2.0)
                    except TimeoutError:
                        await asyncio.wait_for(conn.execute("SELECT 1"), 5.0)
            except Exception as exc:
                self._listen_conn = None
                self.counters["listen_errors"] += 1
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                await self._sleep(1.0)
            finally:
                self._listen_conn = None
                if conn is not None:
                    await close_connection(conn, 2.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def _control_loop(self) -> None:
        watcher = asyncio.create_task(self.control.run(), name="executor-control-watch")
        try:
            await self.stopping.wait()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _worker(self) -> None:
        while not self.stopping.is_set():
            if self.paused:
                # Paused by the operator: claim nothing; working orders are still synced by
                # the maintenance loop. Resuming is seen within the watcher's poll interval.
                await self._sleep(0.2)
                continue
            try:
                worked = await self.claim_and_submit()
            except asyncpg.UniqueViolationError:
                # Another executor opened an order for the same symbol between our peek and
                # claim: the index refused ours; it stays pending until that one settles.
                self.counters["claim_conflicts"] += 1
                await self._sleep(0.2)
                continue
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.counters["db_errors"] += 1
                log.warning("claim failed: %s", exc)
                await self._sleep(1.0)
                continue
            except TokenExpiredError as exc:
                log.critical("Schwab token refused: %s", exc)
                self.fatal = self.fatal or str(exc)
                self.stop()
                return
            except Exception:
                # A bug must not take the other workers down; the row, if claimed, is
                # `submitting` and will be reconciled like any orphan.
                self.counters["worker_errors"] += 1
                log.exception("worker step failed")
                await self._sleep(1.0)
                continue
            if worked:
                continue  # there may be more
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.get(), self.settings.executor_poll_interval)

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
        peek = await self.pool.fetchrow(_PEEK_SQL, self.account)
        if peek is None:
            return None
        quote = await self.quotes.get(str(peek["symbol"]))
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialize claims per account so the rate, notional and duplicate rules see
            # every concurrent executor's orders.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", "sd-exec:" + self.account
            )
            now = self.clock.now()
            # Read under the claim transaction: a switch engaged before this claim is seen.
            kill_switch = await read_kill_switch(conn)
            row = await conn.fetchrow(
                _CLAIM_SQL, self.account, day_start(now), float(self.limits.duplicate_window)
            )
            if row is None:
                return None
            trade = dict(row)
            trade_id = int(trade["id"])
            self.counters["claimed"] += 1
            parsed = parse_request(trade)
            if not isinstance(parsed, TradeRequest):
                await transition(
                    conn,
                    trade_id,
                    ("pending",),
                    "rejected",
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
                await transition(
                    conn,
                    trade_id,
                    ("pending",),
                    "rejected",
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
            moved = await transition(
                conn,
                trade_id,
                ("pending",),
                "submitting",
                "risk checks passed",
                {"instance": self.instance, "notional": result.notional, "quote": quote_detail},
                submitted_at=now,
                claimed_by=self.instance,
                account_hash=self.account,
                notional=result.notional,
                # as the broker spells it: reconciliation and the one-open-order index compare it
                symbol=parsed.symbol,
            )
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
        if self.broker.fatal_error is not None and self.fatal is None:
            log.critical("Schwab token refused: %s", self.broker.fatal_error)
            self.fatal = self.broker.fatal_error
            self.stop()
        async with self.pool.acquire() as conn:
            await self._record_place(
                conn, trade_id, result, (t_answer - t0) * 1000, (t_answer - t_send) * 1000
            )

    async def _record_place(
        self,
        conn: Conn,
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
                old = await transition(
                    conn,
                    trade_id,
                    ("submitting", "unknown"),
                    "working",
                    reason,
                    detail,
                    broker_order_id=result.order_id,
                )
                if old is None:
                    # The user asked to cancel while we were sending: keep the request, link
                    # the order so the cancel can reach the broker.
                    old = await transition(
                        conn,
                        trade_id,
                        ("cancel_requested",),
                        "cancel_requested",
                        reason,
                        detail,
                        broker_order_id=result.order_id,
                    )
                    self._maint_wake.set()
            except asyncpg.UniqueViolationError:
                old = None
            if (
                old is None
                and await conn.fetchval(
                    "SELECT broker_order_id FROM trades WHERE id = $1", trade_id
                )
                == result.order_id
            ):
                old = "linked"  # reconciliation got there first (this worker was slow)
            if old is None:
                log.error(
                    "trade %s: broker order %s could not be linked", trade_id, result.order_id
                )
                await raise_alert(
                    conn,
                    trade_id,
                    "link_failed",
                    f"broker order {result.order_id} could not be linked",
                    detail,
                )
            self._balances_dirty = True
        elif result.kind is PlaceKind.REJECTED:
            self.counters["rejected_broker"] += 1
            await transition(
                conn,
                trade_id,
                ("submitting", "unknown", "cancel_requested"),
                "rejected",
                result.reason,
                detail,
                error=result.reason,
            )
            log.info("trade %s rejected by the broker: %s", trade_id, result.reason)
        else:
            self.counters["unknown"] += 1
            await transition(
                conn,
                trade_id,
                ("submitting",),
                "unknown",
                result.reason,
                detail,
                error=result.reason,
            )
            log.warning("trade %s outcome unknown (%s); reconciling", trade_id, result.reason)
            self._maint_wake.set()

    # ------------------------------------------------------------------ maintenance

    async def _maintenance_loop(self) -> None:
        while not self.stopping.is_set():
            self._maint_wake.clear()
            try:
                await self.maintenance_pass()
            except (BrokerError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.counters["maintenance_errors"] += 1
                log.warning("maintenance pass failed: %s", exc)
            except TokenExpiredError as exc:
                # Operational error: retrying is useless; stop and let health alert.
                log.critical("Schwab token refused: %s", exc)
                self.fatal = str(exc)
                self.stop()
                return
            except Exception:
                self.counters["maintenance_errors"] += 1
                log.exception("maintenance pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._maint_wake.wait(), self.settings.executor_sync_interval
                )

    async def maintenance_pass(self, *, startup: bool = False) -> ReconcileSummary:
        """Cancels, orphan detection, status/fill sync, reconciliation, balances; one pass."""
        s = self.settings
        limit = s.executor_max_pending_batch
        async with self.pool.acquire() as conn:
            await self._cancel_unsent(conn)
            orphan_age = s.executor_broker_timeout + s.executor_submit_grace
            for row in await conn.fetch(
                "SELECT id FROM trades WHERE status = 'submitting' AND account_hash = $1 "
                "AND submitted_at < now() - make_interval(secs => $2) ORDER BY id LIMIT $3",
                self.account,
                orphan_age,
                limit,
            ):
                if await transition(
                    conn,
                    row["id"],
                    ("submitting",),
                    "unknown",
                    "executor stopped before the broker answered",
                    {"instance": self.instance},
                ):
                    self.counters["orphans"] += 1
            rows = [
                dict(r)
                for r in await conn.fetch(
                    "SELECT * FROM trades WHERE account_hash = $1 AND submitted_at IS NOT NULL "
                    "AND status IN ('working', 'unknown', 'cancel_requested') "
                    "ORDER BY (broker_order_id IS NULL) DESC, id LIMIT $2",
                    self.account,
                    limit,
                )
            ]
        to_reconcile = [r for r in rows if r["broker_order_id"] is None]
        linked_rows = [r for r in rows if r["broker_order_id"] is not None]
        resolved = 0
        still = 0
        broker_error: BrokerError | None = None
        if rows:
            # Linked orders need the list only from their own submission on; the clock-skew
            # margin is for matching unlinked ones. (Keeps the list short: it is parsed on
            # every pass.)
            since = min(
                [r["submitted_at"] - timedelta(seconds=5) for r in linked_rows]
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
                by_id = {o.order_id: o for o in orders}
                for r in linked_rows:
                    # One order's trouble (a failed get/cancel) must not hold up the others.
                    try:
                        order = by_id.get(str(r["broker_order_id"]))
                        if order is None:
                            order = await self.broker.get_order(str(r["broker_order_id"]))
                        if order is not None:
                            await self._apply_order(r, order)
                        if r["status"] == "cancel_requested":
                            await self._send_cancel(r, order)
                    except BrokerError as exc:
                        self.counters["sync_errors"] += 1
                        log.warning("sync of trade %s failed: %s", r["id"], exc)
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
        summary = ReconcileSummary(
            self.clock.now().isoformat(),
            len(to_reconcile),
            resolved,
            still,
            None if broker_error is None else f"broker unreachable: {broker_error}",
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
        now = time.monotonic()
        full = startup or now - self._last_full_sync >= s.executor_balance_interval
        # After fills at most once a second: a burst of fills needs one sync, not one each.
        if full or (self._balances_dirty and now - self._last_fill_sync >= 1.0):
            self._last_fill_sync = now
            try:
                await self.sync_balances(full=full)
            except BrokerError as exc:
                log.warning("balance sync failed: %s", exc)
        return summary

    async def _cancel_unsent(self, conn: Conn) -> None:
        for row in await conn.fetch(
            "SELECT id FROM trades WHERE status = 'cancel_requested' AND submitted_at IS NULL "
            "AND (account_hash IS NULL OR account_hash = $1) ORDER BY id LIMIT $2",
            self.account,
            self.settings.executor_max_pending_batch,
        ):
            if await transition(
                conn,
                row["id"],
                ("cancel_requested",),
                "cancelled",
                "cancelled before it was sent to the broker",
                {"instance": self.instance},
            ):
                self.counters["cancelled"] += 1

    async def _send_cancel(self, row: dict[str, Any], order: BrokerOrder | None) -> None:
        trade_id = int(row["id"])
        if order is not None and order.final_status is not None:
            return  # _apply_order settled it
        sent = self._cancel_sent.get(trade_id)
        if sent is not None and time.monotonic() - sent < 5.0:
            return
        self._cancel_sent[trade_id] = time.monotonic()
        ok, reason = await self.broker.cancel(str(row["broker_order_id"]))
        self.counters["cancel_sent"] += 1
        after = await self.broker.get_order(str(row["broker_order_id"]))
        if after is not None and after.final_status is not None:
            await self._apply_order(row, after)
            self._cancel_sent.pop(trade_id, None)
        elif not ok:
            log.warning("trade %s: %s", trade_id, reason)

    async def _apply_order(self, row: dict[str, Any], order: BrokerOrder) -> bool:
        """Bring the row in line with the broker's view of its order; True if it moved."""
        trade_id = int(row["id"])
        final = order.final_status
        detail = {"broker_status": order.status, "broker_order_id": order.order_id}
        async with self.pool.acquire() as conn:
            if final is not None:
                reason = f"broker reports {order.status}"
                if order.reason:
                    reason += f": {order.reason}"
                cols: dict[str, Any] = {
                    "filled_quantity": order.filled_quantity,
                    "avg_fill_price": order.avg_fill_price,
                }
                if final == "rejected":
                    cols["error"] = order.reason or "rejected by the broker"
                old = await transition(
                    conn,
                    trade_id,
                    ("working", "cancel_requested", "unknown"),
                    final,
                    reason,
                    detail,
                    **cols,
                )
                if old is not None:
                    self.counters[final] += 1
                    if order.filled_quantity > 0:
                        self._balances_dirty = True
                    await resolve_alerts(conn, trade_id)
                    self._cancel_sent.pop(trade_id, None)
                return old is not None
            if order.filled_quantity != row["filled_quantity"]:
                status = str(row["status"])
                old = await transition(
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

    async def _reconcile_one(self, row: dict[str, Any], orders: list[BrokerOrder]) -> bool:
        """Resolve one unlinked, possibly-sent row; True if it is settled or linked."""
        s = self.settings
        trade_id = int(row["id"])
        status = str(row["status"])
        candidates_all = [o.order_id for o in orders]
        async with self.pool.acquire() as conn:
            linked = {
                str(r[0])
                for r in await conn.fetch(
                    "SELECT broker_order_id FROM trades WHERE broker_order_id = ANY($1::text[])",
                    candidates_all,
                )
            }
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
                try:
                    old = await transition(
                        conn,
                        trade_id,
                        (status,),
                        "working" if status == "unknown" else status,
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
                row = {
                    **row,
                    "status": "working" if status == "unknown" else status,
                    "broker_order_id": order.order_id,
                }
                await resolve_alerts(conn, trade_id)
                await self._apply_order(row, order)
                if row["status"] == "cancel_requested":
                    await self._send_cancel(row, order)
                return True
            if len(matches) > 1:
                ids = [m.order_id for m in matches]
                if await raise_alert(
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
                final = "cancelled" if status == "cancel_requested" else "rejected"
                old = await transition(
                    conn,
                    trade_id,
                    (status,),
                    final,
                    reason,
                    {"instance": self.instance},
                    error=reason,
                )
                if old is not None:
                    await resolve_alerts(conn, trade_id)
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
            if await raise_alert(
                conn,
                trade_id,
                "unknown",
                f"trade {trade_id} ({row['symbol']}) outcome unknown for {age:.0f}s: {why}",
                {"submitted_at": row["submitted_at"], "error": row["error"]},
            ):
                self.counters["alerts"] += 1
                log.error("trade %s outcome still unknown after %.0fs (%s)", trade_id, age, why)

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
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO account_balances (account_hash, cash, buying_power, "
                "liquidation_value, updated_at) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (account_hash) DO UPDATE SET cash = EXCLUDED.cash, "
                "buying_power = EXCLUDED.buying_power, "
                "liquidation_value = EXCLUDED.liquidation_value, updated_at = EXCLUDED.updated_at",
                self.account,
                snap.cash,
                snap.buying_power,
                snap.liquidation_value,
                asked_at,
            )
            await conn.executemany(
                "INSERT INTO positions (account_hash, symbol, asset_type, quantity, "
                "average_price, market_value, day_pnl, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, now()) "
                "ON CONFLICT (account_hash, symbol) DO UPDATE SET "
                "asset_type = EXCLUDED.asset_type, "
                "quantity = EXCLUDED.quantity, average_price = EXCLUDED.average_price, "
                "market_value = EXCLUDED.market_value, day_pnl = EXCLUDED.day_pnl, "
                "updated_at = now()",
                [
                    (
                        self.account,
                        p.symbol,
                        p.asset_type,
                        p.quantity,
                        p.average_price,
                        p.market_value,
                        p.day_pnl,
                    )
                    for p in changed
                ],
            )
            await conn.execute(
                "DELETE FROM positions WHERE account_hash = $1 AND NOT symbol = ANY($2::text[])",
                self.account,
                [p.symbol for p in snap.positions],
            )
        self._positions_seen = current
        self._balances_dirty = False
        if full:
            self._last_full_sync = time.monotonic()
        self.counters["balance_syncs"] += 1
