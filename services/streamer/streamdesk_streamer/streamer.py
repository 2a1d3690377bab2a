"""The streamer: its parts wired together, run as tasks, stopped in order, reported.

:class:`Streamer` builds the parts and owns the tasks of :meth:`Streamer.run` (none
fire-and-forget):

- the *supervisor* (:mod:`.supervisor`, sessions in :mod:`.session`) connects, logs in,
  subscribes (:mod:`.subscriptions`) and pumps frames; on any disconnect, timeout, protocol
  error or missing heartbeat it records a gap (:mod:`.gaps`) and reconnects with back-off;
- the *publisher* (:mod:`.flusher`) drains the bounded :class:`~.tickqueue.ConflatingQueue`
  into Redis (:mod:`.publisher`);
- the *trimmer* (:mod:`.trimmer`) trims the tick streams by age;
- the *state writer* (:mod:`.state`) refreshes ``constants.STREAMER_STATE_KEY``;
- the control plane's watcher (``streamdesk.control_watch``) follows the universe and pause;
- the entry point's :class:`~streamdesk.heartbeat.Heartbeat` publishes :meth:`counters`.

Error kinds (:mod:`.errors`): temporary ones (network, protocol, refused login, Redis or
database down) are retried with back-off; operational ones (refresh token expired or missing)
stop streaming with a clear message and wait - without a crash loop - for a new token file
(``streamdesk auth``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.control import UniverseSpec
from streamdesk.control_watch import ControlWatcher
from streamdesk.db import close_pool, create_pool
from streamdesk.shutdown import GracefulShutdown

from . import fields as F
from .config import SERVICE_NAME, Settings
from .decode import Decoder
from .flusher import Flusher
from .gaps import GapRecorder
from .hours import MarketHours
from .publisher import Publisher
from .state import StreamerState, crash_gap, read_previous
from .subscriptions import Subscriptions
from .supervisor import ClientFactory, Supervisor, default_client_factory
from .tickqueue import ConflatingQueue
from .tokens import TokenWatch
from .trimmer import Trimmer

log = logging.getLogger(__name__)


class Streamer:
    """One streamer process: see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        *,
        shutdown: GracefulShutdown | None = None,
        client_factory: ClientFactory | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.redis = redis
        self.shutdown = shutdown or GracefulShutdown(settings.shutdown_timeout)
        # One pool (None while the database is unreachable), held by the gap recorder.
        self.gaps = GapRecorder(None)
        self.control = ControlWatcher(
            lambda: self.gaps.pool,
            redis,
            defaults=UniverseSpec.of(settings.tickers, settings.option_underlyings),
            poll_interval=settings.control_poll_interval,
        )
        self.state = StreamerState(
            redis,
            clock,
            self.state_payload,
            interval=settings.heartbeat_interval,
            ttl=max(60, int(settings.heartbeat_ttl * 4)),
        )
        # The decoder asks the subscriptions what is subscribed; they make it forget a
        # symbol once unsubscribed.
        self.decoder = Decoder(
            known_symbols=lambda symbol: self.subscriptions.is_subscribed(symbol)
        )
        self.subscriptions = Subscriptions(settings, self.decoder, self.state.changed)
        self.queue = ConflatingQueue(settings.queue_max_ticks)
        self.publisher = Publisher(
            redis,
            partitions=settings.stream_partitions,
            max_ticks_per_entry=settings.publish_max_ticks_per_entry,
            max_entries=settings.stream_max_entries,
            quote_interval=settings.quote_interval,
        )
        self.flusher = Flusher(self.queue, self.publisher, clock, linger=settings.publish_linger)
        self.trimmer = Trimmer(
            redis,
            partitions=settings.stream_partitions,
            retention_seconds=settings.stream_retention_seconds,
        )
        self.hours = MarketHours(settings.market_hours)
        self.tokens = TokenWatch(
            settings.schwab_token_path,
            clock,
            warn_days=settings.token_warn_days,
            poll_interval=settings.token_poll_interval,
        )
        self.supervisor = Supervisor(
            settings,
            clock,
            client_factory or default_client_factory(settings),
            decoder=self.decoder,
            put=self.flusher.put,
            subscriptions=self.subscriptions,
            state=self.state,
            gaps=self.gaps,
            hours=self.hours,
            tokens=self.tokens,
            control=self.control,
        )
        self._rate_at = time.monotonic()
        self._rate_frames = 0
        self._rate_ticks = 0
        self._next_db_attempt = 0.0

    # ------------------------------------------------------------------ reports
    def state_payload(self) -> dict[str, Any]:
        """The JSON written at ``STREAMER_STATE_KEY``."""
        state = self.state
        return {
            "state": state.name,
            "since": state.since,
            "reason": state.reason,
            "symbols": self.subscriptions.tickers,
            "options": len(self.subscriptions.options),
            "gap_open": self.gaps.is_open,
            "unpublished_since": self.flusher.unpublished_since,
            "ts": self.clock.time(),
        }

    def counters(self) -> dict[str, Any]:
        """Heartbeat counters (rates are over the interval since the previous call)."""
        now = time.monotonic()
        sup = self.supervisor
        stream = sup.stream
        frames = sup.frames()
        dt = max(now - self._rate_at, 1e-6)
        msg_rate = (frames - self._rate_frames) / dt
        ticks_in = self.flusher.ticks_in
        tick_rate = (ticks_in - self._rate_ticks) / dt
        self._rate_at, self._rate_frames, self._rate_ticks = now, frames, ticks_in
        dc = self.decoder.counters
        last_frame = sup.last_frame()
        age = self.tokens.age_seconds()
        subs = self.subscriptions
        return {
            "state": self.state.name,
            "messages_per_s": round(msg_rate, 1),
            "ticks_per_s": round(tick_rate, 1),
            "messages": frames,
            "ticks_in": ticks_in,
            "ticks_published": self.publisher.ticks,
            "entries_published": self.publisher.entries,
            "quotes_written": self.publisher.quotes,
            "reconnects": sup.reconnects,
            "last_message_age_s": round(now - last_frame, 3) if last_frame else None,
            "queue_depth": len(self.queue),
            "queue_high_water": self.queue.high_water,
            "conflated": self.queue.conflated,
            "malformed": dc.malformed,
            "unexpected": stream.unexpected if stream is not None else 0,
            "unknown_symbol": dc.unknown_symbol,
            "silent_symbols": subs.silent_symbols,
            "incomplete": dc.incomplete,
            "refused_selfcheck": dc.refused,
            "login_refused": sup.login_refused,
            "connect_errors": sup.connect_errors,
            "publish_errors": self.flusher.publish_errors,
            "gaps_recorded": self.gaps.recorded,
            "gap_open": self.gaps.is_open,
            "trimmed": self.trimmer.trimmed,
            "equities": len(subs.tickers),
            "options": len(subs.options),
            "token_age_days": round(age / 86400, 3) if age is not None else None,
        }

    # ------------------------------------------------------------------ run
    async def run(self) -> int:
        """Run until shutdown; return the exit code."""
        F.check_against_schwab_py()
        await self._connect_db()
        # The first session subscribes the control plane's universe, not only the configured.
        await self.control.refresh()
        await self.gaps.adopt_open()
        await self._record_crash_gap()
        tasks = [
            asyncio.create_task(self.supervisor.run(), name="streamer-supervisor"),
            asyncio.create_task(self.flusher.run(), name="streamer-publisher"),
            asyncio.create_task(
                self.trimmer.run(self.settings.trim_interval), name="streamer-trimmer"
            ),
            asyncio.create_task(self.state.run(self._retry_db), name="streamer-state"),
            asyncio.create_task(self.control.run(), name="streamer-control"),
        ]
        stopper = asyncio.create_task(self.shutdown.event.wait(), name="streamer-stop")
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopper and not t.cancelled() and t.exception() is not None:
                    log.error("task %s failed", t.get_name(), exc_info=t.exception())
                    self.shutdown.request(f"task {t.get_name()} failed")
        finally:
            # Stop intake first, then drain what is queued, then the rest.
            self.supervisor.stopping = self.flusher.stopping = True
            supervisor = tasks[0]
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
            await self.supervisor.close_stream()
            tasks[1].cancel()
            await asyncio.gather(tasks[1], return_exceptions=True)
            ok = await self.shutdown.drain(self.flusher.drain)
            self.trimmer.stopping = self.state.stopping = True
            await self.gaps.open("streamer stopped", self.subscriptions.all_symbols())
            self.state.set("stopped", self.shutdown.signal_name or "")
            for t in (*tasks[2:], stopper):
                t.cancel()
            await asyncio.gather(*tasks[2:], stopper, return_exceptions=True)
            await self.state.write()
            if self.gaps.pool is not None:
                await close_pool(self.gaps.pool)
        return 0 if ok else 1

    async def _record_crash_gap(self) -> None:
        """Record the outage of a predecessor that died without its clean stop (kill -9, OOM).

        A clean stop leaves an open gap (adopted before this); see :func:`.state.crash_gap`.
        """
        if self.gaps.is_open:
            return
        gap = crash_gap(await read_previous(self.redis))
        if gap is not None:
            reason, at = gap
            await self.gaps.open(reason, self.subscriptions.all_symbols(), at=at)

    async def _connect_db(self) -> None:
        if self.gaps.pool is not None or time.monotonic() < self._next_db_attempt:
            return
        self._next_db_attempt = time.monotonic() + 30.0
        try:
            self.gaps.pool = await asyncio.wait_for(
                create_pool(
                    self.settings.database_url,
                    min_size=1,
                    max_size=2,
                    application_name=SERVICE_NAME,
                ),
                self.settings.connect_timeout,
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning(
                "database unavailable (%s); gaps are kept in memory, retrying every 30 s", exc
            )

    async def _retry_db(self) -> None:
        """Without a database: try to connect (at most every 30 s), then write held gaps."""
        if self.gaps.pool is None:
            await self._connect_db()
            if self.gaps.pool is not None:
                await self.gaps.flush()
