"""One session on the websocket: log in, subscribe, then pump frames and look after it.

:meth:`Session.run` logs in (schwab-py: user preferences, websocket, ADMIN LOGIN), adopts the
control plane's universe, resolves the option chains and subscribes everything, then runs two
tasks until one fails: the *pump* (every frame through the decoder into the flusher) and the
*maintenance step*, once a second. That step ends the gap when data flows again (not merely
when subscribed), applies the control plane (pause, universe changes on the open socket),
writes gaps held while the database was down, warns about an old token, reports silent
symbols, checks the market hours and re-centres the option universe. A session always ends
with an exception - a temporary failure, an operational token error, :class:`~.errors.Paused`
or :class:`~.errors.MarketClosed` - which the :mod:`.supervisor` handles.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from streamdesk.clock import Clock
from streamdesk.control import UniverseSpec
from streamdesk.control_watch import ControlWatcher

from .client import FastStreamClient
from .config import SERVICE_NAME, Settings
from .errors import MarketClosed, Paused
from .gaps import GapRecorder
from .hours import MarketHours
from .state import StreamerState
from .subscriptions import Subscriptions
from .tokens import TokenWatch

log = logging.getLogger(__name__)


def is_paused(control: ControlWatcher) -> bool:
    """True while the control plane says the streamer is paused."""
    snap = control.snapshot
    return snap is not None and SERVICE_NAME in snap.paused


def wanted_universe(control: ControlWatcher) -> UniverseSpec | None:
    """The control plane's universe, or None before it was read once."""
    snap = control.snapshot
    return snap.universe if snap is not None else None


async def pump_frames(stream: FastStreamClient, timeout: float) -> None:
    """Receive and decode frames until the stream fails (``timeout``: heartbeat timeout)."""
    pump = stream.pump
    yield_now = asyncio.sleep
    while True:
        await pump(timeout)
        # A receive from the websocket's own buffer completes without suspending, so a
        # backlog of frames would run the pump back to back and starve the publisher
        # until the queue conflates. Let the loop run (I/O, the publisher) once per frame.
        await yield_now(0)


class Session:
    """One logged-in websocket with its subscriptions (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        client: Any,
        stream: FastStreamClient,
        *,
        subscriptions: Subscriptions,
        state: StreamerState,
        gaps: GapRecorder,
        hours: MarketHours,
        tokens: TokenWatch,
        control: ControlWatcher,
        first_data: asyncio.Event,
        stopping: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.client = client
        self.stream = stream
        self.subscriptions = subscriptions
        self.state = state
        self.gaps = gaps
        self.hours = hours
        self.tokens = tokens
        self.control = control
        #: Set by the sink when the first rows of this session arrive.
        self.first_data = first_data
        self.stopping = stopping

    async def run(self) -> None:
        """Log in, subscribe, pump and maintain until something fails (it always raises)."""
        s = self.settings
        stream = self.stream
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
        subs.adopt(wanted_universe(self.control))
        await subs.resolve_universe(self.client)
        await asyncio.wait_for(subs.subscribe(stream), s.connect_timeout * 3)
        self.state.set("subscribed")
        log.info(
            "logged in and subscribed: %d equities, %d options",
            len(subs.tickers),
            len(subs.options),
        )
        pump = asyncio.create_task(pump_frames(stream, s.heartbeat_timeout), name="streamer-pump")
        maint = asyncio.create_task(self._maintain(), name="streamer-maintain")
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

    async def _maintain(self) -> None:
        s = self.settings
        client, stream, subs = self.client, self.stream, self.subscriptions
        flowing = False
        silent_at = time.monotonic() + s.silent_symbol_seconds
        next_hours = time.monotonic() + s.market_hours_check_interval
        next_recenter = time.monotonic() + s.option_recenter_interval
        while True:
            if not flowing:
                # The gap ends when data flows again (not merely when subscribed).
                try:
                    await asyncio.wait_for(self.first_data.wait(), 1.0)
                except TimeoutError:
                    pass
                else:
                    flowing = True
                    self.state.set("streaming")
                    await self.gaps.close()
                    self.state.changed()
            else:
                await asyncio.sleep(1.0)
            if self.stopping():
                return
            if is_paused(self.control):
                raise Paused
            spec = wanted_universe(self.control)
            if spec is not None:
                await subs.apply(spec, client, stream)
            now = time.monotonic()
            await self.gaps.flush()
            self.tokens.warn_if_old()
            if silent_at and now >= silent_at:
                silent_at = 0.0
                subs.check_silent(s.silent_symbol_seconds)
            if now >= next_hours:
                next_hours = now + s.market_hours_check_interval
                if not await self.hours.is_open(client, self.clock.now()):
                    raise MarketClosed
            if now >= next_recenter and subs.option_underlyings:
                next_recenter = now + s.option_recenter_interval
                await subs.recenter(client, stream)
