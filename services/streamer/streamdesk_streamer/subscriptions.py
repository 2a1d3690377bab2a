"""What the streamer is subscribed to, and keeping the open stream in line with it.

Equity tickers and option contracts: the control plane's universe (``streamdesk.control``),
adopted before every session's ``SUBS``; the option universe of each underlying resolved from
its chain (:mod:`.universe`) plus the fixed ``OPTION_SYMBOLS``. While a session is open the
subscriptions change without a reconnect: for a changed universe (:meth:`Subscriptions.apply`,
once a second) new tickers are sent as ``ADD`` (``SUBS`` when none were subscribed), removed
ones as ``UNSUBS``, a new option underlying has its chain resolved and a removed one's
contracts are dropped; a moved underlying re-centres its contracts
(:meth:`Subscriptions.recenter`). The decoder forgets the state of whatever is unsubscribed.
Without a readable database the streamer keeps streaming what it has (the configured universe
at first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from streamdesk.control import UniverseSpec
from streamdesk.schwab import TokenExpiredError, TokenMissingError

from . import fields as F
from .client import FastStreamClient
from .config import Settings
from .decode import Decoder
from .universe import Chain, Universe, resolve_chain

log = logging.getLogger(__name__)

#: Subscribe in chunks of this many symbols per request (Schwab's request size limits).
SUBSCRIBE_CHUNK = 300
#: Universe entry of the contracts listed in OPTION_SYMBOLS (never re-centred).
FIXED_CHAIN = "_fixed"


class Subscriptions:
    """The subscribed tickers and contracts; ``on_change`` is called when they change."""

    def __init__(self, settings: Settings, decoder: Decoder, on_change: Callable[[], None]) -> None:
        self.settings = settings
        self.decoder = decoder
        self.on_change = on_change
        self.tickers: list[str] = []
        self._tickers_set: frozenset[str] = frozenset()
        self._set_tickers(list(dict.fromkeys(settings.tickers)))
        #: Option underlyings streamed now (the control plane's universe once read).
        self.option_underlyings = list(dict.fromkeys(settings.option_underlyings))
        self.universe = Universe()
        #: Option contracts subscribed on the stream now.
        self.options: set[str] = set()
        self.universe_changes = 0
        self.recenters = 0
        self.silent_symbols = 0

    def _set_tickers(self, tickers: list[str]) -> None:
        self.tickers = tickers
        self._tickers_set = frozenset(tickers)

    def is_subscribed(self, symbol: str) -> bool:
        """Whether ``symbol`` (equity or option) is subscribed."""
        return symbol in self._tickers_set or symbol in self.options

    def all_symbols(self) -> list[str]:
        """Every subscribed symbol: the tickers, then the contracts sorted."""
        return [*self.tickers, *sorted(self.options)]

    def adopt(self, spec: UniverseSpec | None) -> None:
        """Before subscribing a new session: take the control plane's universe as it is now."""
        if spec is None:
            return
        self._set_tickers(list(spec.equities))
        self.option_underlyings = list(spec.option_underlyings)

    async def resolve_universe(self, client: Any) -> None:
        """Resolve the option chains of the underlyings (a failing one keeps its previous)."""
        s = self.settings
        if s.option_symbols:
            self.universe.chains[FIXED_CHAIN] = Chain(
                FIXED_CHAIN, sorted(set(s.option_symbols)), [], []
            )
        for underlying in list(self.universe.chains):
            if underlying != FIXED_CHAIN and underlying not in self.option_underlyings:
                del self.universe.chains[underlying]
        for underlying in self.option_underlyings:
            try:
                chain = await resolve_chain(
                    client, underlying, s.option_strikes, s.option_expirations, s.connect_timeout
                )
            except (TokenExpiredError, TokenMissingError):
                raise
            except Exception as exc:
                log.warning(
                    "option chain of %s unavailable (%s); keeping previous", underlying, exc
                )
                continue
            self.universe.chains[underlying] = chain

    async def subscribe(self, stream: FastStreamClient) -> None:
        """Subscribe everything on a freshly logged-in stream (``SUBS`` then ``ADD``s)."""
        tickers = self.tickers
        for i in range(0, len(tickers), SUBSCRIBE_CHUNK):
            chunk = tickers[i : i + SUBSCRIBE_CHUNK]
            if i == 0:
                await stream.level_one_equity_subs(chunk, fields=F.equity_fields())
            else:
                await stream.level_one_equity_add(chunk, fields=F.equity_fields())
        options = self.universe.symbols()
        for i in range(0, len(options), SUBSCRIBE_CHUNK):
            chunk = options[i : i + SUBSCRIBE_CHUNK]
            if i == 0:
                await stream.level_one_option_subs(chunk, fields=F.option_fields())
            else:
                await stream.level_one_option_add(chunk, fields=F.option_fields())
        self.options = set(options)
        if self.settings.chart_equity and tickers:
            await stream.chart_equity_subs(tickers)

    async def sync_options(self, stream: FastStreamClient) -> tuple[list[str], list[str]]:
        """Subscribe / unsubscribe contracts so the stream matches :attr:`universe`."""
        s = self.settings
        wanted = set(self.universe.symbols())
        add = sorted(wanted - self.options)
        remove = sorted(self.options - wanted)
        timeout = s.connect_timeout
        if add:
            had = bool(self.options)
            self.options |= set(add)
            if had:
                await asyncio.wait_for(
                    stream.level_one_option_add(add, fields=F.option_fields()), timeout
                )
            else:
                await asyncio.wait_for(
                    stream.level_one_option_subs(add, fields=F.option_fields()), timeout
                )
        if remove:
            await asyncio.wait_for(stream.level_one_option_unsubs(remove), timeout)
            self.options -= set(remove)
            for sym in remove:
                self.decoder.forget(sym)
        self.on_change()
        return add, remove

    async def recenter(self, client: Any, stream: FastStreamClient) -> None:
        """Re-resolve the chains of underlyings that moved out of their strike range."""
        s = self.settings
        changed: list[Chain] = []
        for underlying in self.option_underlyings:
            spot = self.decoder.last_price(underlying)
            if not self.universe.needs_recenter(underlying, spot):
                continue
            try:
                chain = await resolve_chain(
                    client, underlying, s.option_strikes, s.option_expirations, s.connect_timeout
                )
            except Exception as exc:
                log.warning("re-centre of %s failed (%s)", underlying, exc)
                continue
            old = self.universe.chains.get(underlying)
            if old is None or old.symbols != chain.symbols:
                self.universe.chains[underlying] = chain
                changed.append(chain)
        if not changed:
            return
        add, remove = await self.sync_options(stream)
        self.recenters += 1
        log.info("option universe re-centred: +%d -%d contracts", len(add), len(remove))

    async def apply(self, spec: UniverseSpec, client: Any, stream: FastStreamClient) -> None:
        """Subscribe what the control plane's universe gained, drop what it lost, on the
        open stream."""
        timeout = self.settings.connect_timeout
        have = set(self.tickers)
        add = [t for t in spec.equities if t not in have]
        remove = sorted(have - set(spec.equities))
        if add:
            if self.tickers:
                await asyncio.wait_for(
                    stream.level_one_equity_add(add, fields=F.equity_fields()), timeout
                )
            else:
                await asyncio.wait_for(
                    stream.level_one_equity_subs(add, fields=F.equity_fields()), timeout
                )
            self._set_tickers([*self.tickers, *add])
        if remove:
            await asyncio.wait_for(stream.level_one_equity_unsubs(remove), timeout)
            self._set_tickers([t for t in self.tickers if t not in remove])
            for sym in remove:
                self.decoder.forget(sym)
        opt_changed = await self._apply_underlyings(client, stream, spec)
        if add or remove or opt_changed:
            self.universe_changes += 1
            self.on_change()
            log.info(
                "universe changed at run time: equities +%s -%s; option underlyings now %s",
                ",".join(add) or "0",
                ",".join(remove) or "0",
                ",".join(self.option_underlyings) or "none",
            )

    async def _apply_underlyings(
        self, client: Any, stream: FastStreamClient, spec: UniverseSpec
    ) -> bool:
        wanted = list(spec.option_underlyings)
        if wanted == self.option_underlyings:
            return False
        s = self.settings
        chains = self.universe.chains
        for underlying in [u for u in self.option_underlyings if u not in wanted]:
            chains.pop(underlying, None)
        for underlying in [u for u in wanted if u not in chains]:
            try:
                chains[underlying] = await resolve_chain(
                    client, underlying, s.option_strikes, s.option_expirations, s.connect_timeout
                )
            except (TokenExpiredError, TokenMissingError):
                raise
            except Exception as exc:  # streamed once its chain resolves (at the next re-centre)
                log.warning("option chain of %s unavailable (%s); retried later", underlying, exc)
        self.option_underlyings = wanted
        await self.sync_options(stream)
        return True

    def check_silent(self, seconds: float) -> None:
        """Count and log subscribed symbols that never sent anything (unknown symbols)."""
        silent = [sym for sym in self.all_symbols() if not self.decoder.has_state(sym)]
        self.silent_symbols = len(silent)
        if silent:
            log.warning(
                "%d subscribed symbol(s) sent no data in %.0fs (unknown or halted?): %s",
                len(silent),
                seconds,
                ", ".join(silent[:20]) + (" ..." if len(silent) > 20 else ""),
            )
