"""Two of the strategy service's loops: control (LISTEN + poll) and backfill.

**control**: ``LISTEN streamdesk_strategies`` (migration 0100's trigger) wakes a reload of the
strategies table; the poll behind it runs every ``STRATEGY_CONTROL_INTERVAL`` while LISTEN is
down and every ``STRATEGY_IDLE_INTERVAL`` while it is up (a safety net, and the open-alerts
check).

**backfill**: history for new universe tickers, recorded gaps healed. Every
``BACKFILL_INTERVAL`` one pass reads the universe (``control.read_universe``), backfills the
tickers not yet in ``backfill_tickers`` and heals the stream gaps that ended but are not healed
(``streamdesk.cli_backfill``: through schwab-py, rate-limited, idempotent). A failed pass is
counted, logged and retried next interval; the broker client is made on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from streamdesk import control
from streamdesk.cli_backfill import BackfillError, RateLimiter, backfill_ticker, heal_gaps

if TYPE_CHECKING:
    from .service import StrategyService

log = logging.getLogger(__name__)

#: The channel migration 0100's trigger notifies on a change of ``strategies``.
NOTIFY_CHANNEL = "streamdesk_strategies"


async def control_loop(svc: StrategyService) -> None:
    """LISTEN for strategy changes (and poll): reload, until the service stops."""
    conn: asyncpg.Connection | None = None

    def wake(*_: Any) -> None:
        svc.control_event.set()

    try:
        conn = await asyncpg.connect(svc.settings.database_url, timeout=10)
        await conn.add_listener(NOTIFY_CHANNEL, wake)
        svc.listening = True
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("LISTEN %s failed (%s); polling only", NOTIFY_CHANNEL, exc)
    try:
        s = svc.settings
        while not svc.stopping.is_set():
            # LISTEN up: the poll is only a safety net (and the open-alerts check).
            listening = conn is not None and not conn.is_closed()
            svc.listening = listening
            period = s.strategy_control_interval
            if listening:
                period = max(period, s.strategy_idle_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(svc.control_event.wait(), period)
            svc.control_event.clear()
            if svc.stopping.is_set():
                break
            async with svc.lock:
                await svc._reload()
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)


async def backfill_loop(svc: StrategyService) -> None:
    """One pass every ``BACKFILL_INTERVAL`` until the service stops."""
    s = svc.settings
    limiter = RateLimiter(s.backfill_rate)
    while not svc.stopping.is_set():
        try:
            await backfill_pass(svc, limiter)
        except (BackfillError, OSError, asyncpg.PostgresError) as exc:
            svc.counters["backfill_errors"] += 1
            log.warning("backfill pass failed: %s: %s", type(exc).__name__, exc)
        except Exception as exc:  # schwab-py / httpx errors, token problems
            svc.counters["backfill_errors"] += 1
            log.warning("backfill pass failed: %s: %s", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(svc.stopping.wait(), s.backfill_interval)


async def client(svc: StrategyService) -> Any:
    """The service's schwab-py client (made once; a paper token is provided in paper mode)."""
    if svc.client is None:
        from streamdesk.schwab import ensure_paper_token, make_client

        if svc.paper:
            await asyncio.to_thread(ensure_paper_token, svc.settings)
        svc.client = make_client(svc.settings, asyncio=True)
    return svc.client


async def backfill_pass(svc: StrategyService, limiter: RateLimiter) -> None:
    """Backfill the new tickers, heal the ended gaps; no broker request when neither."""
    s, pool = svc.settings, svc.pool
    spec = await control.read_universe(
        pool, defaults=control.UniverseSpec.of(s.tickers, s.option_underlyings)
    )
    tickers = list(spec.equities)
    done = {r["ticker"] for r in await pool.fetch("SELECT ticker FROM backfill_tickers")}
    todo = [t for t in tickers if t not in done]
    unhealed = await pool.fetchval(
        "SELECT count(*) FROM stream_gaps WHERE ended_at IS NOT NULL AND healed_at IS NULL"
    )
    if not todo and not unhealed:
        return
    broker = await client(svc)
    counters = svc.counters
    for ticker in todo:
        r = await backfill_ticker(
            broker, pool, ticker, now=svc.clock.now(), days=s.backfill_days,
            daily_days=s.backfill_daily_days, limiter=limiter,
        )  # fmt: skip
        counters["backfill_requests"] += r.requests
        counters["backfill_rows"] += r.minute_inserted + r.daily_inserted
        log.info("backfilled %s: %d minute, %d daily bars", ticker, r.minute_inserted,
                 r.daily_inserted)  # fmt: skip
    if unhealed:
        r = await heal_gaps(broker, pool, tickers, limiter)
        counters["backfill_requests"] += r.requests
        counters["backfill_rows"] += r.minute_inserted
        counters["gaps_healed"] += r.gaps_healed
