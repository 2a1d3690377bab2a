"""The executor process's work: start-up, workers, NOTIFY listener, maintenance loop, control.

This module only wires the parts and runs their loops; what each step does lives in
:mod:`.intake` (claim, risk, submit), :mod:`.reconcile` (unknown outcomes, maintenance pass)
and :mod:`.sync` (status, fills, positions, balances). Every loop tells the two kinds of error
apart (:mod:`streamdesk.errors`): temporary ones are counted, logged and retried with
:class:`streamdesk.backoff.Backoff`; an operational one (the Schwab token refused) stops the
executor (:attr:`Executor.fatal`, exit code 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from streamdesk.backoff import Backoff
from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.constants import TRADES_NOTIFY_CHANNEL
from streamdesk.control_watch import ControlWatcher
from streamdesk.db import close_connection, connect
from streamdesk.errors import OperationalError, is_temporary
from streamdesk.models import TradeStatus

from .broker import Broker
from .config import Settings
from .intake import Intake
from .quotes import QuoteProvider
from .reconcile import Reconciler
from .replace import StopMover
from .sync import BrokerSync

log = logging.getLogger(__name__)

#: The executor's name in heartbeats and in the control plane's pause flags.
SERVICE_NAME = "trade-executor"

#: The NOTIFY payload's suffix of a requested stop move (migration 0090).
REPLACE_STOP_NOTIFY = "replace_stop"

#: A worker's wait while paused, and after a claim refused by the one-open-order index (s):
#: not failures, so no back-off.
_IDLE_STEP = 0.2


def _expected(exc: BaseException) -> bool:
    """Temporary errors, and statements Postgres refused: logged without a traceback."""
    return is_temporary(exc) or isinstance(exc, asyncpg.PostgresError)


class Executor:
    """One executor process's work: workers, NOTIFY listener and the maintenance loop."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        broker: Broker,
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
        self.counters: Counter[str] = Counter()
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.fatal: str | None = None
        self.quotes = QuoteProvider(
            redis, broker, settings.executor_quote_source, settings.risk_quote_max_age, clock=clock
        )
        self.sync = BrokerSync(
            settings, pool, broker, self.counters, instance=instance, clock=clock
        )
        self.mover = StopMover(
            pool,
            broker,
            self.quotes,
            self.sync,
            settings.risk_limits(),
            self.counters,
            instance=instance,
        )
        self.reconciler = Reconciler(
            settings,
            pool,
            redis,
            broker,
            self.sync,
            self.counters,
            instance=instance,
            mover=self.mover,
            clock=clock,
        )
        self.intake = Intake(
            settings,
            pool,
            broker,
            self.quotes,
            self.sync,
            self.counters,
            instance=instance,
            live_broker=live_broker,
            wake_maintenance=self._wake_maintenance,
            on_fatal=self._fail,
            clock=clock,
        )
        # One token per notification wakes one idle worker (not all of them: idle workers
        # racing for the same row would only queue on the claim lock). Bounded.
        self._wake: asyncio.Queue[None] = asyncio.Queue(maxsize=settings.executor_workers)
        self._maint_wake = asyncio.Event()
        #: Set when a worker placed an order: the maintenance loop leaves its idle period.
        self._maint_active = asyncio.Event()
        #: True while the LISTEN connection is up (the polls are then only a safety net).
        self.listening = False
        self._last_work = -float("inf")  # loop time of the last claim that found a trade
        #: Pause flag of the control plane (the kill switch is read in each claim instead).
        #: The Redis announcement is the fast path; the version poll only covers a lost
        #: message on a connection that stays up, so it runs at the idle period.
        self.control = ControlWatcher(
            pool,
            redis,
            poll_interval=max(settings.executor_poll_interval, settings.executor_idle_interval),
        )

    # ------------------------------------------------------------------ public

    def stats(self) -> dict[str, Any]:
        """Counters for the heartbeat."""
        out: dict[str, Any] = dict(self.counters)
        out.update(self.quotes.counters)
        if self.intake.last_latency_ms is not None:
            out["last_submit_latency_ms"] = round(self.intake.last_latency_ms, 2)
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
                tg.create_task(self._worker(i), name=f"executor-worker-{i}")

    def stop(self) -> None:
        """Stop taking new trades; loops finish their current step and return."""
        self.stopping.set()
        for _ in range(self.settings.executor_workers):
            self._wake_one()
        self._maint_wake.set()

    async def startup(self) -> None:
        """Sync balances and reconcile every open row before taking new trades.

        Retries (with back-off) until it succeeds: taking trades before knowing what happened
        to the open ones would break the one-unsettled-order-per-symbol rule's guarantees.
        """
        backoff = Backoff(0.5, 10.0)
        while not self.stopping.is_set():
            try:
                summary = await self.reconciler.maintenance_pass(startup=True)
            except OperationalError as exc:
                self._fail(str(exc))
                return
            except Exception as exc:
                self.counters["startup_retries"] += 1
                delay = backoff.next_delay()
                log.warning("start-up reconciliation failed (%s); retrying in %.1fs", exc, delay)
                await self._sleep(delay)
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

    # ------------------------------------------------------------------ internals

    def _fail(self, reason: str) -> None:
        """An operational error: retrying is useless; stop and let health alert."""
        log.critical("Schwab token refused: %s", reason)
        self.fatal = self.fatal or reason
        self.stop()

    def _wake_one(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._wake.put_nowait(None)

    def _wake_maintenance(self) -> None:
        self._maint_wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    def _idle(self) -> bool:
        """Nothing to do lately and notifications arrive: the polls may slow down."""
        loop = asyncio.get_running_loop()
        return (
            self.listening and loop.time() - self._last_work >= self.settings.executor_idle_interval
        )

    async def _listen_loop(self) -> None:
        def on_notify(_c: object, _pid: int, _channel: str, payload: object) -> None:
            status = str(payload).partition(":")[2]
            # A cancel or a stop move (`<id>:replace_stop`, migration 0090) is maintenance work.
            if status in (TradeStatus.CANCEL_REQUESTED, REPLACE_STOP_NOTIFY):
                self._maint_wake.set()
            else:
                self._wake_one()
                self._maint_active.set()  # trading activity: maintenance leaves its idle period

        backoff = Backoff(1.0, 5.0)
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
                backoff.reset()
                self.listening = True
                self._wake_one()  # catch up on anything inserted while not listening
                while not self.stopping.is_set() and not conn.is_closed():
                    try:
                        await asyncio.wait_for(self.stopping.wait(), 2.0)
                    except TimeoutError:
                        await asyncio.wait_for(conn.execute("SELECT 1"), 5.0)
            except Exception as exc:
                self.listening = False
                self.counters["listen_errors"] += 1
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                await backoff.wait(self.stopping)
            finally:
                self.listening = False
                if conn is not None:
                    await close_connection(conn, 2.0)

    async def _control_loop(self) -> None:
        watcher = asyncio.create_task(self.control.run(), name="executor-control-watch")
        try:
            await self.stopping.wait()
        finally:
            # Cancel until it is done: on Python 3.11 an asyncio.wait_for whose inner call
            # completes at the moment of the cancel can swallow it, and the watcher loops on
            # (seen once as a stop that never finished).
            while not watcher.done():
                watcher.cancel()
                await asyncio.wait({watcher}, timeout=1.0)
            await asyncio.gather(watcher, return_exceptions=True)

    async def _worker(self, index: int = 0) -> None:
        """Claim and submit until stopped; between trades wait for a NOTIFY token.

        The poll for trades whose notification was lost runs every EXECUTOR_POLL_INTERVAL
        while the LISTEN connection is down or a trade was found within the idle period;
        otherwise (idle, notifications flowing) only worker 0 polls, every
        EXECUTOR_IDLE_INTERVAL.
        """
        backoff = Backoff(1.0, 5.0)
        claim = True
        while not self.stopping.is_set():
            if self.paused:
                # Paused by the operator: claim nothing; working orders are still synced by
                # the maintenance loop. Resuming is seen within the watcher's poll interval.
                await self._sleep(_IDLE_STEP)
                claim = True
                continue
            if not claim:
                claim = await self._await_trade(index)
                continue
            try:
                worked = await self.intake.claim_and_submit()
            except asyncpg.UniqueViolationError:
                # Another executor opened an order for the same symbol between our peek and
                # claim: the index refused ours; it stays pending until that one settles.
                self.counters["claim_conflicts"] += 1
                await self._sleep(_IDLE_STEP)
                continue
            except OperationalError as exc:
                self._fail(str(exc))
                return
            except Exception as exc:
                if _expected(exc):
                    self.counters["db_errors"] += 1
                    log.warning("claim failed: %s", exc)
                else:
                    # A bug must not take the other workers down; the row, if claimed, is
                    # `submitting` and will be reconciled like any orphan.
                    self.counters["worker_errors"] += 1
                    log.exception("worker step failed")
                await backoff.wait(self.stopping)
                continue
            backoff.reset()
            if worked:
                self._last_work = asyncio.get_running_loop().time()
                self._maint_active.set()  # its status and fills are synced at the fast period
                continue  # there may be more
            claim = await self._await_trade(index)

    async def _await_trade(self, index: int) -> bool:
        """Wait for a NOTIFY token or this worker's poll; True if it should claim now."""
        idle = self._idle()
        period = (
            self.settings.executor_idle_interval if idle else self.settings.executor_poll_interval
        )
        try:
            await asyncio.wait_for(self._wake.get(), period)
        except TimeoutError:
            # Idle: one poller is the safety net; the other workers wait for tokens.
            return not idle or index == 0
        return True

    async def _maintenance_loop(self) -> None:
        # EXECUTOR_SYNC_INTERVAL, failing or not: the pass is the reconciliation that settles
        # unknown orders and raises their alerts, so it is not slowed down while the broker is
        # away. Only a pass that succeeded and found nothing open (no working, unknown or
        # cancel-requested row, no unsettled leg or stop move, no post-fill balance sync due)
        # with the LISTEN connection up waits EXECUTOR_IDLE_INTERVAL; a notification (cancel,
        # stop move) still wakes it at once, and an order placed by a worker brings the next
        # pass within EXECUTOR_SYNC_INTERVAL.
        loop = asyncio.get_running_loop()
        fast = self.settings.executor_sync_interval
        while not self.stopping.is_set():
            self._maint_wake.clear()
            self._maint_active.clear()
            idle = False
            try:
                summary = await self.reconciler.maintenance_pass()
                idle = summary.open_work == 0
            except OperationalError as exc:
                self._fail(str(exc))
                return
            except Exception as exc:
                self.counters["maintenance_errors"] += 1
                if _expected(exc):
                    log.warning("maintenance pass failed: %s", exc)
                else:
                    log.exception("maintenance pass failed")
            ended = loop.time()
            if idle and self.listening and not self._maint_active.is_set():
                self.counters["maintenance_idle_waits"] += 1
                await self._wait_any(
                    (self._maint_wake, self._maint_active),
                    max(fast, self.settings.executor_idle_interval),
                )
            left = ended + fast - loop.time()
            if not self._maint_wake.is_set() and left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._maint_wake.wait(), left)

    async def _wait_any(self, events: tuple[asyncio.Event, ...], timeout: float) -> None:
        tasks = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
