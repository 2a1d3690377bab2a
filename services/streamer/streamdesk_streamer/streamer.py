"""The streamer service: supervise the Schwab stream, publish ticks, never stall silently.

Tasks (all owned by :meth:`Streamer.run`, none fire-and-forget):

- the *supervisor* connects, logs in, subscribes and pumps frames; on any disconnect, timeout,
  protocol error or missing heartbeat it records a gap and reconnects with exponential backoff
  and full jitter, logging in with a freshly loaded token and resubscribing everything;
- the *publisher* drains the bounded :class:`~.tickqueue.ConflatingQueue` into Redis
  (:mod:`.flusher`);
- the *trimmer* trims the tick streams by age (:mod:`.trimmer`);
- the *state writer* refreshes ``constants.STREAMER_STATE_KEY`` (:mod:`.state`);
- the shared :class:`~streamdesk.heartbeat.Heartbeat` publishes the counters.

Error kinds: temporary (network, protocol, refused login, Redis or database down) are retried
with backoff; operational (refresh token expired or missing) stop streaming with a clear
message and wait - without a crash loop - for a new token file (``streamdesk auth``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.config import TradingMode
from streamdesk.control import UniverseSpec
from streamdesk.control_watch import ControlWatcher
from streamdesk.db import close_pool, create_pool
from streamdesk.schwab import (
    REFRESH_TOKEN_MAX_AGE,
    TokenExpiredError,
    TokenMissingError,
    TokenStore,
    ensure_paper_token,
    force_token_refresh,
    make_client,
)
from streamdesk.shutdown import GracefulShutdown

from . import fields as F
from . import runtime
from .client import FastStreamClient, StreamProtocolError, StreamTimeoutError
from .config import Settings
from .decode import Decoder, Row
from .flusher import Flusher
from .gaps import GapRecorder
from .hours import MarketHours
from .publisher import Publisher
from .state import StreamerState, crash_gap, read_previous
from .subscriptions import Subscriptions
from .tickqueue import ConflatingQueue
from .trimmer import Trimmer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from schwab.streaming import UnexpectedResponse, UnexpectedResponseCode, UnparsableMessage
    from websockets.exceptions import WebSocketException

log = logging.getLogger(__name__)


ClientFactory = Callable[[], Awaitable[Any]]


def _http_error_types() -> tuple[type[Exception], ...]:
    # authlib's sessions raise httpx2's errors when httpx2 is installed, else httpx's.
    types: list[type[Exception]] = [httpx.HTTPError]
    try:
        import httpx2
    except ImportError:  # pragma: no cover - depends on the installed authlib stack
        pass
    else:
        types.append(httpx2.HTTPError)
    return tuple(types)


_HTTP_ERRORS = _http_error_types()


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status of an httpx/httpx2 ``HTTPStatusError``, else None."""
    if type(exc).__name__ != "HTTPStatusError":
        return None
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


class MarketClosed(Exception):
    """The market closed while streaming: log out and idle."""


class _AuthStop(Exception):
    pass


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
        self.client_factory = client_factory or self._default_client
        self.control = ControlWatcher(
            lambda: self.gaps.pool,
            redis,
            defaults=UniverseSpec.of(settings.tickers, settings.option_underlyings),
            poll_interval=settings.control_poll_interval,
        )
        # The decoder asks the subscriptions, which forget a symbol's decoder state.
        self.decoder = Decoder(
            known_symbols=lambda symbol: self.subscriptions.is_subscribed(symbol)
        )
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
        self.gaps = GapRecorder(None)
        self.hours = MarketHours(settings.market_hours)
        self.stream: FastStreamClient | None = None
        self.state = StreamerState(
            redis,
            clock,
            self.state_payload,
            interval=settings.heartbeat_interval,
            ttl=max(60, int(settings.heartbeat_ttl * 4)),
        )
        self.subscriptions = Subscriptions(settings, self.decoder, self.state.changed)
        # counters
        self.reconnects = 0
        self.login_refused = 0
        self.connect_errors = 0
        self.auth_stops = 0
        self.chart_bars = 0
        self._frames_total = 0
        self._rate_at = time.monotonic()
        self._rate_frames = 0
        self._rate_ticks = 0
        self._last_msg_at = 0.0
        self._token_warned_at = 0.0
        self._force_refresh = False
        self._next_db_attempt = 0.0
        #: Set first when stopping: intake loops end even if a cancel was swallowed.
        self._stopping = False
        self._first_data = asyncio.Event()

    # ------------------------------------------------------------------ helpers
    async def _default_client(self) -> Any:
        settings = self.settings

        def build() -> Any:
            if settings.trading_mode is TradingMode.PAPER:
                ensure_paper_token(settings)
            return make_client(settings, asyncio=True, timeout=settings.connect_timeout)

        return await asyncio.wait_for(asyncio.to_thread(build), settings.connect_timeout + 5)

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

    def _sink(self, rows: list[Row]) -> None:
        self.flusher.put(rows)
        if not self._first_data.is_set():
            self._first_data.set()

    def token_age_seconds(self) -> float | None:
        """Age of the token file (since the original login), or None without one."""
        try:
            return TokenStore(self.settings.schwab_token_path, clock=self.clock).age_seconds()
        except OSError:
            return None

    def counters(self) -> dict[str, Any]:
        """Heartbeat counters (rates are over the interval since the previous call)."""
        now = time.monotonic()
        stream = self.stream
        frames = self._frames_total + (stream.frames if stream is not None else 0)
        dt = max(now - self._rate_at, 1e-6)
        msg_rate = (frames - self._rate_frames) / dt
        ticks_in = self.flusher.ticks_in
        tick_rate = (ticks_in - self._rate_ticks) / dt
        self._rate_at, self._rate_frames, self._rate_ticks = now, frames, ticks_in
        dc = self.decoder.counters
        last_frame = stream.last_frame if stream is not None else self._last_msg_at
        age = self.token_age_seconds()
        return {
            "state": self.state.name,
            "messages_per_s": round(msg_rate, 1),
            "ticks_per_s": round(tick_rate, 1),
            "messages": frames,
            "ticks_in": ticks_in,
            "ticks_published": self.publisher.ticks,
            "entries_published": self.publisher.entries,
            "quotes_written": self.publisher.quotes,
            "reconnects": self.reconnects,
            "last_message_age_s": round(now - last_frame, 3) if last_frame else None,
            "queue_depth": len(self.queue),
            "queue_high_water": self.queue.high_water,
            "conflated": self.queue.conflated,
            "malformed": dc.malformed,
            "unexpected": stream.unexpected if stream is not None else 0,
            "unknown_symbol": dc.unknown_symbol,
            "silent_symbols": self.subscriptions.silent_symbols,
            "incomplete": dc.incomplete,
            "refused_selfcheck": dc.refused,
            "login_refused": self.login_refused,
            "connect_errors": self.connect_errors,
            "publish_errors": self.flusher.publish_errors,
            "gaps_recorded": self.gaps.recorded,
            "gap_open": self.gaps.is_open,
            "trimmed": self.trimmer.trimmed,
            "equities": len(self.subscriptions.tickers),
            "options": len(self.subscriptions.options),
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
            asyncio.create_task(self._supervise(), name="streamer-supervisor"),
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
            self._stopping = self.flusher.stopping = True
            supervisor = tasks[0]
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
            await self._close_stream()
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
                    application_name="streamer",
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

    # ------------------------------------------------------------------ supervisor
    def _backoff(self, attempt: int) -> float:
        s = self.settings
        cap = min(s.backoff_max, s.backoff_initial * (2**attempt))
        return random.uniform(s.backoff_initial / 2, max(cap, s.backoff_initial))

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            client: Any = None
            try:
                if await runtime.wait_while_paused(self):
                    continue
                if not await self._wait_market_open():
                    continue
                if attempt == 0:
                    self.state.set("connecting")
                else:  # keep the reason of the failure being retried
                    self.state.set("reconnecting", self.state.reason)
                client = await self.client_factory()
                if self._force_refresh:
                    force_token_refresh(client)
                    self._force_refresh = False
                await self._session(client)
            except (TokenExpiredError, TokenMissingError) as exc:
                await self._close_client(client)
                client = None
                await self._auth_stop(exc)
                attempt = 0
                continue
            except MarketClosed:
                log.info("market closed: logging out and idling")
                await self._logout()
                attempt = 0
                continue
            except runtime.Paused:
                log.warning("paused by the operator: unsubscribing and logging out")
                await self._logout()
                attempt = 0
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = self._describe(exc)
                self.reconnects += 1
                if self._first_data.is_set():
                    attempt = 0  # it was streaming: start the backoff over
                await self.gaps.open(reason, self.subscriptions.all_symbols())
                delay = self._backoff(attempt)
                attempt += 1
                self.state.set("reconnecting", reason)
                log.warning(
                    "stream lost (%s); reconnect #%d in %.2fs", reason, self.reconnects, delay
                )
                await self._close_stream()
                await self._close_client(client)
                client = None
                await asyncio.sleep(delay)
            finally:
                await self._close_stream()
                await self._close_client(client)

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, UnexpectedResponseCode):
            text = str(exc)
            if "LOGIN" in json.dumps(getattr(exc, "response", ""), default=str):
                self.login_refused += 1
                self._force_refresh = True
                log.error("streamer login refused: %s", text)
                return f"login refused: {text}"
            return f"request refused: {text}"
        if isinstance(exc, StreamTimeoutError):
            return f"missing heartbeat: {exc}"
        status = _http_status(exc)
        if status is not None:
            self.connect_errors += 1
            if status == 401:
                # The access token was refused: a refused login too; refresh before retrying.
                self.login_refused += 1
                self._force_refresh = True
                log.error("Schwab API refused the access token (HTTP 401); refreshing it")
            return f"HTTP {status} from the Schwab API"
        if isinstance(exc, (OSError, *_HTTP_ERRORS, TimeoutError)):
            self.connect_errors += 1
            return f"connection error: {type(exc).__name__}: {exc}"
        if isinstance(exc, WebSocketException):
            return f"websocket closed: {type(exc).__name__}: {exc}"
        if isinstance(exc, (StreamProtocolError, UnexpectedResponse, UnparsableMessage)):
            return f"protocol error: {exc}"
        log.error("unexpected streamer failure", exc_info=exc)
        return f"error: {type(exc).__name__}: {exc}"

    async def _session(self, client: Any) -> None:
        s = self.settings
        self._first_data.clear()
        stream = FastStreamClient(client, self.decoder, self._sink, on_chart=self._on_chart)
        self.stream = stream
        await asyncio.wait_for(
            stream.login(
                websocket_connect_args={
                    "open_timeout": s.connect_timeout,
                    "close_timeout": 2,
                    "ping_interval": 20,
                    "ping_timeout": 20,
                    "max_size": 16 * 2**20,
                    "max_queue": 64,
                }
            ),
            s.connect_timeout,
        )
        subs = self.subscriptions
        subs.adopt(runtime.wanted_universe(self))
        await subs.resolve_universe(client)
        await asyncio.wait_for(subs.subscribe(stream), s.connect_timeout * 3)
        self.state.set("subscribed")
        log.info(
            "logged in and subscribed: %d equities, %d options",
            len(subs.tickers),
            len(subs.options),
        )
        pump = asyncio.create_task(self._pump(stream), name="streamer-pump")
        maint = asyncio.create_task(self._maintain(client, stream), name="streamer-maintain")
        try:
            done, _ = await asyncio.wait([pump, maint], return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                exc = t.exception()
                if exc is not None:
                    raise exc
        finally:
            for t in (pump, maint):
                t.cancel()
            await asyncio.gather(pump, maint, return_exceptions=True)

    async def _pump(self, stream: FastStreamClient) -> None:
        timeout = self.settings.heartbeat_timeout
        pump = stream.pump
        yield_now = asyncio.sleep
        while True:
            await pump(timeout)
            # A receive from the websocket's own buffer completes without suspending, so a
            # backlog of frames would run the pump back to back and starve the publisher
            # until the queue conflates. Let the loop run (I/O, the publisher) once per frame.
            await yield_now(0)

    def _on_chart(self, content: list[Any]) -> None:
        self.chart_bars += len(content)

    async def _maintain(self, client: Any, stream: FastStreamClient) -> None:
        s = self.settings
        flowing = False
        silent_at = time.monotonic() + s.silent_symbol_seconds
        next_hours = time.monotonic() + s.market_hours_check_interval
        next_recenter = time.monotonic() + s.option_recenter_interval
        while True:
            if not flowing:
                # The gap ends when data flows again (not merely when subscribed).
                try:
                    await asyncio.wait_for(self._first_data.wait(), 1.0)
                except TimeoutError:
                    pass
                else:
                    flowing = True
                    self.state.set("streaming")
                    await self.gaps.close()
                    self.state.changed()
            else:
                await asyncio.sleep(1.0)
            if self._stopping:
                return
            await runtime.apply_control(self, client, stream)
            now = time.monotonic()
            await self.gaps.flush()
            self._check_token_age()
            if silent_at and now >= silent_at:
                silent_at = 0.0
                self.subscriptions.check_silent(s.silent_symbol_seconds)
            if now >= next_hours:
                next_hours = now + s.market_hours_check_interval
                if not await self.hours.is_open(client, self.clock.now()):
                    raise MarketClosed
            if now >= next_recenter and self.subscriptions.option_underlyings:
                next_recenter = now + s.option_recenter_interval
                await self.subscriptions.recenter(client, stream)

    def _check_token_age(self) -> None:
        age = self.token_age_seconds()
        if age is None:
            return
        warn = self.settings.token_warn_days * 86400
        now = time.monotonic()
        if age >= warn and now - self._token_warned_at > 3600:
            self._token_warned_at = now
            left = (REFRESH_TOKEN_MAX_AGE - age) / 86400
            log.warning(
                "Schwab token is %.1f days old; it expires in %.1f days: run `streamdesk auth`",
                age / 86400,
                left,
            )

    async def _auth_stop(self, exc: Exception) -> None:
        self.auth_stops += 1
        reason = str(exc)
        await self.gaps.open(f"authentication: {reason}", self.subscriptions.all_symbols())
        self.state.set("auth_expired", reason)
        log.critical(
            "STREAMING STOPPED: %s. Run `streamdesk auth` to log in again; the streamer "
            "resumes by itself once a new token file appears.",
            reason,
        )
        path = self.settings.schwab_token_path
        store = TokenStore(path)
        before = store.read()
        before_ts = before.get("creation_timestamp") if before else None
        before_access = before["token"].get("access_token") if before else None
        while True:
            await asyncio.sleep(self.settings.token_poll_interval)
            data = store.read()
            if data is None:
                continue
            if (
                data.get("creation_timestamp") != before_ts
                or data["token"].get("access_token") != before_access
            ):
                log.info("new token file found; resuming")
                return

    async def _wait_market_open(self) -> bool:
        if self.settings.market_hours.value == "always":
            return True
        client: Any = None
        try:
            client = await self.client_factory()
            is_open = await self.hours.is_open(client, self.clock.now())
        except (TokenExpiredError, TokenMissingError):
            raise
        except Exception as exc:
            log.warning("market hours check failed: %s", exc)
            is_open = True
        finally:
            await self._close_client(client)
        if is_open:
            return True
        self.state.set("idle", "market closed")
        await asyncio.sleep(self.settings.market_hours_check_interval)
        return False

    async def _logout(self) -> None:
        stream = self.stream
        if stream is not None and stream._socket is not None:
            try:
                await asyncio.wait_for(stream.logout(), 3.0)
            except Exception as exc:
                log.debug("logout: %s", exc)
        await self._close_stream()

    async def _close_stream(self) -> None:
        stream = self.stream
        if stream is None:
            return
        self._frames_total += stream.frames
        self._last_msg_at = stream.last_frame
        self.stream = None
        await stream.close()

    @staticmethod
    async def _close_client(client: Any) -> None:
        if client is None:
            return
        close = getattr(client, "close_async_session", None)
        if close is None:
            return
        try:
            await asyncio.wait_for(close(), 2.0)
        except Exception as exc:
            log.debug("closing HTTP session: %s", exc)
