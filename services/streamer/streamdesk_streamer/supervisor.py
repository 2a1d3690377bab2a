"""The connection's lifecycle: connect, run a session, and after every ending start over.

:meth:`Supervisor.run` loops until the streamer stops. Each round waits while the operator
has paused the streamer (a gap ``paused by the operator`` is open meanwhile) and while the
market is closed (state ``idle``, no gap), builds a new API client from the token file (so a
token refreshed by any service or ``streamdesk auth`` is used), and runs one
:class:`~.session.Session` until it ends (:mod:`.errors`):

- a temporary failure opens a gap, sets ``reconnecting`` and reconnects after the shared
  back-off (:class:`streamdesk.backoff.Backoff` from ``BACKOFF_INITIAL`` to ``BACKOFF_MAX``,
  full jitter; it restarts once data flowed); after a refused login the access token is
  force-refreshed first;
- an operational token error opens a gap, sets ``auth_expired``, logs CRITICAL and waits for
  a new token file (:mod:`.tokens`) - no crash loop;
- a pause or the market's close logs out and goes round again.

The supervisor owns the stream of the session (the heartbeat's frame counters read it) and
the event the sink sets when a session's first rows arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from streamdesk.backoff import Backoff
from streamdesk.clock import Clock
from streamdesk.config import TradingMode
from streamdesk.control_watch import ControlWatcher
from streamdesk.schwab import (
    TokenExpiredError,
    TokenMissingError,
    ensure_paper_token,
    force_token_refresh,
    make_client,
)

from .client import FastStreamClient
from .config import Settings
from .decode import Decoder, Row
from .errors import MarketClosed, Paused, classify
from .gaps import GapRecorder
from .hours import MarketHours
from .session import Session, is_paused
from .state import StreamerState
from .subscriptions import Subscriptions
from .tokens import TokenWatch

log = logging.getLogger(__name__)

ClientFactory = Callable[[], Awaitable[Any]]


def default_client_factory(settings: Settings) -> ClientFactory:
    """Build schwab-py's async client from the token file (paper mode: log in first)."""

    async def factory() -> Any:
        def build() -> Any:
            if settings.trading_mode is TradingMode.PAPER:
                ensure_paper_token(settings)
            return make_client(settings, asyncio=True, timeout=settings.connect_timeout)

        return await asyncio.wait_for(asyncio.to_thread(build), settings.connect_timeout + 5)

    return factory


async def close_client(client: Any) -> None:
    """Close an API client's HTTP session (bounded; never raises)."""
    if client is None:
        return
    close = getattr(client, "close_async_session", None)
    if close is None:
        return
    try:
        await asyncio.wait_for(close(), 2.0)
    except Exception as exc:
        log.debug("closing HTTP session: %s", exc)


class Supervisor:
    """Connects, runs sessions and reconnects (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        client_factory: ClientFactory,
        *,
        decoder: Decoder,
        put: Callable[[list[Row]], None],
        subscriptions: Subscriptions,
        state: StreamerState,
        gaps: GapRecorder,
        hours: MarketHours,
        tokens: TokenWatch,
        control: ControlWatcher,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.client_factory = client_factory
        self.decoder = decoder
        self._put = put
        self.subscriptions = subscriptions
        self.state = state
        self.gaps = gaps
        self.hours = hours
        self.tokens = tokens
        self.control = control
        #: The open session's stream, if any.
        self.stream: FastStreamClient | None = None
        #: Set first when stopping: the loops end even if a cancel was swallowed.
        self.stopping = False
        self.reconnects = 0
        self.login_refused = 0
        self.connect_errors = 0
        self.auth_stops = 0
        self.chart_bars = 0
        #: Frames of the streams closed so far, and when the last one received its last frame.
        self.frames_closed = 0
        self.last_frame_closed = 0.0
        self._force_refresh = False
        self._first_data = asyncio.Event()

    def frames(self) -> int:
        """Frames received since start, over every session."""
        stream = self.stream
        return self.frames_closed + (stream.frames if stream is not None else 0)

    def last_frame(self) -> float:
        """``time.monotonic()`` of the last frame received (0.0: none yet)."""
        stream = self.stream
        return stream.last_frame if stream is not None else self.last_frame_closed

    def _sink(self, rows: list[Row]) -> None:
        self._put(rows)
        if not self._first_data.is_set():
            self._first_data.set()

    def _on_chart(self, content: list[Any]) -> None:
        self.chart_bars += len(content)

    async def run(self) -> None:
        """Connect and reconnect until stopping (cancelled by the streamer at shutdown)."""
        s = self.settings
        backoff = Backoff(s.backoff_initial, s.backoff_max)
        while not self.stopping:
            client: Any = None
            try:
                if await self._wait_while_paused():
                    continue
                if not await self._wait_market_open():
                    continue
                if backoff.failures == 0:
                    self.state.set("connecting")
                else:  # keep the reason of the failure being retried
                    self.state.set("reconnecting", self.state.reason)
                client = await self.client_factory()
                if self._force_refresh:
                    force_token_refresh(client)
                    self._force_refresh = False
                await self._session(client)
            except (TokenExpiredError, TokenMissingError) as exc:
                await close_client(client)
                client = None
                await self._auth_stop(exc)
                backoff.reset()
                continue
            except MarketClosed:
                log.info("market closed: logging out and idling")
                await self._logout()
                backoff.reset()
                continue
            except Paused:
                log.warning("paused by the operator: unsubscribing and logging out")
                await self._logout()
                backoff.reset()
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = classify(exc)
                if failure.connect_error:
                    self.connect_errors += 1
                if failure.login_refused:
                    self.login_refused += 1
                    self._force_refresh = True
                reason = failure.reason
                self.reconnects += 1
                if self._first_data.is_set():
                    backoff.reset()  # it was streaming: start the back-off over
                await self.gaps.open(reason, self.subscriptions.all_symbols())
                delay = backoff.next_delay()
                self.state.set("reconnecting", reason)
                log.warning(
                    "stream lost (%s); reconnect #%d in %.2fs", reason, self.reconnects, delay
                )
                await self.close_stream()
                await close_client(client)
                client = None
                await asyncio.sleep(delay)
            finally:
                await self.close_stream()
                await close_client(client)

    async def _session(self, client: Any) -> None:
        self._first_data.clear()
        stream = FastStreamClient(client, self.decoder, self._sink, on_chart=self._on_chart)
        self.stream = stream
        session = Session(
            self.settings,
            self.clock,
            client,
            stream,
            subscriptions=self.subscriptions,
            state=self.state,
            gaps=self.gaps,
            hours=self.hours,
            tokens=self.tokens,
            control=self.control,
            first_data=self._first_data,
            stopping=lambda: self.stopping,
        )
        await session.run()

    async def _wait_while_paused(self) -> bool:
        """If paused: record a gap and wait until resumed (or stopping); True if it waited."""
        control = self.control
        if not is_paused(control):
            return False
        await self.gaps.open("paused by the operator", self.subscriptions.all_symbols())
        self.state.set("paused", "paused by the operator")
        while is_paused(control) and not self.stopping:
            control.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(control.changed.wait(), 1.0)
        if not self.stopping:
            log.info("resumed by the operator")
        return True

    async def _wait_market_open(self) -> bool:
        """True if the market is open (or always streamed); else idle one check interval."""
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
            await close_client(client)
        if is_open:
            return True
        self.state.set("idle", "market closed")
        await asyncio.sleep(self.settings.market_hours_check_interval)
        return False

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
        await self.tokens.wait_for_new()

    async def _logout(self) -> None:
        stream = self.stream
        if stream is not None and stream._socket is not None:
            try:
                await asyncio.wait_for(stream.logout(), 3.0)
            except Exception as exc:
                log.debug("logout: %s", exc)
        await self.close_stream()

    async def close_stream(self) -> None:
        """Close the session's websocket (bounded), keeping its frame counters."""
        stream = self.stream
        if stream is None:
            return
        self.frames_closed += stream.frames
        self.last_frame_closed = stream.last_frame
        self.stream = None
        await stream.close()
