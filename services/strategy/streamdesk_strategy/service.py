"""The strategy service: committed stream -> runners -> trades rows; read-back; control.

Loops (one task each, all under one lock over the runners, all awaited by :meth:`run`):

* **stream**: ``XREAD`` of ``sd:committed`` from the oldest runner's resume point; each
  message goes to every runner, then each runner's decision is written (store.py: one
  transaction with its orders, cancels, state and resume point).
* **orders**: every ``STRATEGY_POLL_INTERVAL`` the open strategy orders are read back
  (the executor has no NOTIFY for fills): ``on_fill`` / ``on_order_update``. With no open
  order nothing is queried: the loop waits for ``orders_event`` (an order was placed or
  restored), ``STRATEGY_IDLE_INTERVAL`` at most (daily reset).
* **control** (loops.py): LISTEN plus a poll: enable, disable, flatten, changed parameters or
  limits, new and removed strategies.
* **backfill** (loops.py): new universe tickers and recorded stream gaps.

The committed ``XREAD`` blocks ``STRATEGY_BLOCK_MS``; after an empty read (nothing flowing)
up to ``STRATEGY_IDLE_INTERVAL`` (at most ``STRATEGY_CHECKPOINT_INTERVAL``), a wait that a
stop ends at once.

A failed database write is not retried in place: the service stops (exit 3) and its restart
replays the committed messages from the last written resume point, which is how a signal is
neither lost nor doubled (docs/strategies.md, "Exactly one trade per signal").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import redis.asyncio as aioredis

from streamdesk import constants
from streamdesk.cli_backfill import RateLimiter
from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.config import TradingMode
from streamdesk.messages import decode_committed
from streamdesk.shutdown import unless_stopped
from streamdesk.strategy.api import Bar, Indicators, StrategyError

from . import loops, store
from .config import Settings
from .context import decode_id, ny_day, ny_midnight, stream_id
from .runner import Runner
from .store import StrategyRow

log = logging.getLogger(__name__)


class FatalError(Exception):
    """The service cannot go on (a write failed): exit 3, the supervisor restarts it."""


class IdentityError(FatalError):
    """The configured operator identity is missing or not an operator: exit 2 (config)."""


class StrategyService:
    """Runs every strategy row (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.clock = clock
        self.instance = settings.strategy_instance or f"{socket.gethostname()}-{os.getpid()}"
        self.paper = settings.trading_mode is not TradingMode.LIVE
        self.runners: dict[str, Runner] = {}
        self.lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.control_event = asyncio.Event()
        #: Set when a runner may have open orders (placed, restored): the orders loop wakes.
        self.orders_event = asyncio.Event()
        self.listening = False
        self.read_from: str | None = None
        self.last_flush: dict[str, float] = {}
        self.last_committed_at = 0
        self.client: Any = None
        #: Called with (status, reason) for the heartbeat: degraded while alerts are open.
        self.on_status: Any = None
        self.stream_tail = "0-0"
        self.counters: dict[str, int] = {
            "messages": 0, "bad_messages": 0, "decisions": 0, "disabled": 0, "flattened": 0,
            "backfill_requests": 0, "backfill_rows": 0, "gaps_healed": 0, "backfill_errors": 0,
            "control_reloads": 0, "order_reads": 0, "idle_reads": 0,
        }  # fmt: skip

    # ------------------------------------------------------------------ stats

    def stats(self) -> dict[str, Any]:
        """Heartbeat counters: the service's and the sum over runners."""
        out: dict[str, Any] = dict(self.counters)
        for r in self.runners.values():
            for k, v in r.counters.items():
                out[k] = out.get(k, 0) + v
        out["strategies"] = len(self.runners)
        out["enabled"] = sum(1 for r in self.runners.values() if r.active)
        out["open_orders"] = sum(len(r.open) for r in self.runners.values())
        out["paper"] = self.paper
        if self.last_committed_at:
            out["lag_ms"] = max(0, int(self.clock.time() * 1000) - self.last_committed_at)
        return out

    # ------------------------------------------------------------------ set-up

    async def start(self) -> None:
        """Check the operator identity, then build a runner per strategy row."""
        s = self.settings
        if s.supabase_url and s.strategy_operator_id is None:
            raise IdentityError("SUPABASE_URL is set: STRATEGY_OPERATOR_ID must name an operator")
        if s.strategy_operator_id is not None and not await store.is_operator(
            self.pool, s.strategy_operator_id
        ):
            raise IdentityError(
                f"STRATEGY_OPERATOR_ID {s.strategy_operator_id} is not an operator "
                "(streamdesk operators add); the executor would reject every strategy order"
            )
        last: Any = await self.redis.xrevrange(constants.COMMITTED_STREAM, count=1)
        self.stream_tail = decode_id(last[0][0]) if last else "0-0"
        async with self.lock:
            await self._reload()

    async def _add(self, row: StrategyRow) -> None:
        runner = Runner(row, paper=self.paper, today=ny_day(self.clock.now()))
        if runner.cursor is None:  # a new strategy starts with the next message
            runner.cursor = self.read_from or self.stream_tail
        problem = ""
        if row.mode == "paper" and not self.paper:
            problem = (
                "a paper strategy in a live deployment (TRADING_MODE=live): paper orders need "
                "the paper stack (market-sim); set mode 'live' to trade it for real"
            )
        else:
            try:
                runner.load(max_tickers=self.settings.strategy_max_tickers)
            except StrategyError as exc:
                problem = str(exc)
        ids = [int(k) for k in runner.seen]
        runner.restore(
            await store.filled_orders(self.pool, row.id),
            await store.open_orders(self.pool, row.id),
            await store.orders_since(self.pool, row.id, ny_midnight(self.clock.now())),
            self.clock.now(),
        )
        if ids:
            runner.follow(await store.orders_by_id(self.pool, ids))
        self.runners[row.id] = runner
        if runner.open:
            self.orders_event.set()
        if problem:
            runner.strategy = None
            log.error("strategy %s cannot run: %s", row.id, problem)
            if row.enabled:
                await store.disable(self.pool, row.id, "load_error", problem[:500], {})
                self.counters["disabled"] += 1
            runner.enabled = False
        else:
            runner.start()
        log.info(
            "strategy %s loaded (%s, %s, %s)",
            row.id,
            row.module,
            "enabled" if row.enabled else "disabled",
            "paper" if self.paper else "live",
        )
        await self._flush(runner, force=True)

    async def _reload(self) -> None:
        """Bring the runners in line with the strategies table."""
        self.counters["control_reloads"] += 1
        rows = await store.load_strategies(self.pool)
        alerts = await self.pool.fetchval(
            "SELECT count(*) FROM strategy_alerts WHERE resolved_at IS NULL"
        )
        if self.on_status is not None:
            self.on_status(
                *(("degraded", f"{alerts} open strategy alert(s)") if alerts else ("ok",))
            )
        seen = set()
        for row in rows[: self.settings.strategy_max_strategies]:
            seen.add(row.id)
            runner = self.runners.get(row.id)
            rebuild = runner is not None and (
                runner.row.config_key() != row.config_key()
                or (row.enabled and runner.strategy is None)
            )
            if runner is None or rebuild:
                if runner is not None:
                    await self._flush(runner, force=True)
                    del self.runners[row.id]
                    fresh = await store.load_strategy(self.pool, row.id)
                    if fresh is None:
                        continue
                    row = fresh
                await self._add(row)
                runner = self.runners[row.id]
            else:
                runner.row = row
                if row.enabled and not runner.enabled and runner.strategy is not None:
                    runner.disable_request = None
                runner.enabled = row.enabled and runner.strategy is not None
            if row.flatten_requested_at is not None:
                runner.flatten(int(row.flatten_requested_at.timestamp() * 1000))
                self.counters["flattened"] += 1
                await self._flush(runner, force=True)
                await store.clear_flatten(self.pool, row.id, row.flatten_requested_at)
        if len(rows) > self.settings.strategy_max_strategies:
            log.warning("%d strategies; running the first %d (STRATEGY_MAX_STRATEGIES)",
                        len(rows), self.settings.strategy_max_strategies)  # fmt: skip
        for sid in list(self.runners):
            if sid not in seen:
                del self.runners[sid]
        cursors = [r.cursor for r in self.runners.values() if r.cursor]
        if cursors:
            oldest = min(cursors, key=stream_id)
            if self.read_from is None or stream_id(oldest) < stream_id(self.read_from):
                self.read_from = oldest
        elif self.read_from is None:
            self.read_from = self.stream_tail

    # ------------------------------------------------------------------ writes

    async def _flush(self, runner: Runner, *, force: bool = False) -> None:
        """Write the runner's decision (and a disable, alerts) now."""
        now = time.monotonic()
        due = (
            now - self.last_flush.get(runner.sid, 0.0) >= self.settings.strategy_checkpoint_interval
        )
        decision = runner.take_decision(force=force or due)
        try:
            if decision is not None:
                if decision.orders and self.settings.strategy_fault == "exit_before_insert":
                    log.critical("STRATEGY_FAULT=exit_before_insert: exiting before the insert")
                    os._exit(137)
                results = await store.write_decision(
                    self.pool,
                    runner.sid,
                    decision,
                    user_id=self.settings.strategy_operator_id,
                    paper=self.paper,
                )
                existing = []
                for order, tid in results:
                    if tid is None:
                        row = await store.order_id_of(self.pool, order.client_order_id)
                        if row is not None:
                            existing.append(row)
                runner.written(results, existing)
                if runner.open:
                    self.orders_event.set()
                self.last_flush[runner.sid] = now
                self.counters["decisions"] += 1
            if runner.disable_request is not None:
                kind, message, detail = runner.disable_request
                alert = bool(detail.pop("alert", True))
                await store.disable(self.pool, runner.sid, kind, message, detail, alert=alert)
                log.warning("strategy %s disabled: %s", runner.sid, message)
                runner.enabled = False
                runner.disable_request = None
                self.counters["disabled"] += 1
            while runner.alerts:
                kind, message, detail = runner.alerts.pop(0)
                await store.alert(self.pool, runner.sid, kind, message, detail)
        except (asyncpg.PostgresError, OSError) as exc:
            raise FatalError(f"write of strategy {runner.sid} failed: {exc}") from exc

    # ------------------------------------------------------------------ loops

    async def _fetch_bar(self, ticker: str, minute_ms: int) -> tuple[Bar | None, Indicators]:
        bucket = datetime.fromtimestamp(minute_ms / 1000, UTC)
        bar, ind = await store.finished_bar(self.pool, ticker, bucket)
        indicators = Indicators(ind["sma9"], ind["vwap"], ind["ema9"]) if ind else Indicators()
        if bar is None:
            return None, indicators
        return (
            Bar(ticker, minute_ms, bar["open"], bar["high"], bar["low"], bar["close"],
                int(bar["volume"]), bar["vwap"]),
            indicators,
        )  # fmt: skip

    async def stream_loop(self) -> None:
        """Committed messages -> runners."""
        idle = False
        while not self.stopping.is_set():
            entries: Any = await self._read(idle)
            if self.stopping.is_set():
                break
            if not entries:
                async with self.lock:
                    for runner in list(self.runners.values()):
                        await self._flush(runner)
                idle = True
                continue
            idle = False
            for _, messages in entries:
                for raw_id, fields in messages:
                    msg_id = decode_id(raw_id)
                    await self._message(msg_id, fields)
                    self.read_from = msg_id

    async def _read(self, idle: bool) -> Any:
        """One XREAD: ``STRATEGY_BLOCK_MS``, or after an empty read the idle block, which a
        stop cancels (the connection is dropped; nothing is lost: the cursor is not moved)."""
        s = self.settings
        streams: dict[Any, Any] = {constants.COMMITTED_STREAM: self.read_from or "$"}
        count = s.strategy_read_count
        if not idle:
            return await self.redis.xread(streams, count=count, block=s.strategy_block_ms)
        self.counters["idle_reads"] += 1
        # capped by the checkpoint interval: an empty read is also when a due resume point
        # is written (after the last message of a flow)
        idle_s = min(s.strategy_idle_interval, s.strategy_checkpoint_interval)
        block = max(s.strategy_block_ms, int(idle_s * 1000))
        _, entries = await unless_stopped(
            self.redis.xread(streams, count=count, block=block),
            self.stopping,
            block / 1000 + 10.0,
            "XREAD of the committed stream",
        )
        return entries

    async def _message(self, msg_id: str, fields: dict[Any, Any]) -> None:
        data = fields.get(b"d", fields.get("d"))
        try:
            if data is None:
                raise ValueError("no 'd' field")
            msg = decode_committed(data)
        except (ValueError, msgspec.ValidationError) as exc:
            self.counters["bad_messages"] += 1
            log.warning("committed message %s refused: %s", msg_id, exc)
            return
        self.counters["messages"] += 1
        self.last_committed_at = msg["committed_at"]
        async with self.lock:
            for runner in list(self.runners.values()):
                await runner.handle(msg_id, msg, self._fetch_bar)
                await self._flush(runner)

    async def orders_loop(self) -> None:
        """Read back the open orders; daily reset."""
        s = self.settings
        while not self.stopping.is_set():
            # Cleared before the pass: an order placed meanwhile sets it again.
            self.orders_event.clear()
            async with self.lock:
                today = ny_day(self.clock.now())
                for runner in list(self.runners.values()):
                    runner.new_day(today)
                    if runner.open:
                        self.counters["order_reads"] += 1
                        rows = await store.orders_by_id(self.pool, list(runner.open))
                        runner.apply_rows(rows)
                        await self._flush(runner)
                busy = any(r.open for r in self.runners.values())
            if busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), s.strategy_poll_interval)
                continue
            # Nothing open: nothing to read back until an order is placed (orders_event).
            wake = asyncio.ensure_future(self.orders_event.wait())
            stop = asyncio.ensure_future(self.stopping.wait())
            try:
                await asyncio.wait(
                    {wake, stop},
                    timeout=max(s.strategy_poll_interval, s.strategy_idle_interval),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                wake.cancel()
                stop.cancel()
            if wake.done() and not wake.cancelled() and not self.stopping.is_set():
                # placed just now: the executor needs a moment; read back at the fast period
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), s.strategy_poll_interval)

    async def control_loop(self) -> None:
        """LISTEN for strategy changes (and poll): reload (loops.py)."""
        await loops.control_loop(self)

    async def _backfill_once(self, limiter: RateLimiter) -> None:
        await loops.backfill_pass(self, limiter)

    async def run(self) -> None:
        """All loops until :meth:`stop` (or one fails: then the others stop too)."""
        tasks = [
            asyncio.create_task(self.stream_loop(), name="strategy-stream"),
            asyncio.create_task(self.orders_loop(), name="strategy-orders"),
            asyncio.create_task(self.control_loop(), name="strategy-control"),
        ]
        if self.settings.backfill_enabled:
            tasks.append(asyncio.create_task(loops.backfill_loop(self), name="strategy-backfill"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            self.stopping.set()
            self.control_event.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        """Ask every loop to stop."""
        self.stopping.set()
        self.control_event.set()

    async def aclose(self) -> None:
        """Final checkpoint of every runner (bounded by the caller) and the broker client."""
        async with self.lock:
            for runner in list(self.runners.values()):
                with contextlib.suppress(FatalError):
                    await self._flush(runner, force=True)
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close_async_session()
