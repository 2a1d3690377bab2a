"""The control plane in the streamer: the universe changed at run time, pause and resume.

The streamer's :class:`~streamdesk.control_watch.ControlWatcher` keeps the latest snapshot
(Postgres, announced on Redis). Once a second the session's maintenance step calls
:func:`apply_control`: a paused streamer raises :class:`Paused` (the supervisor logs out and
waits in :func:`wait_while_paused`, recording a gap; on resume it logs in and subscribes again,
the process never restarts); a changed universe is applied on the open connection — ``ADD`` /
``UNSUBS`` on ``LEVELONE_EQUITIES``, and for option underlyings their chains resolved or
dropped and the contracts added or removed on ``LEVELONE_OPTIONS``. Without a readable
database the streamer keeps streaming what it has (the configured universe at first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from streamdesk.control import UniverseSpec
from streamdesk.schwab import TokenExpiredError, TokenMissingError

from . import fields as F
from .client import FastStreamClient
from .universe import resolve_chain

if TYPE_CHECKING:
    from .streamer import Streamer

log = logging.getLogger(__name__)

#: The streamer's name in heartbeats and in the control plane's pause flags.
SERVICE_NAME = "streamer"


class Paused(Exception):
    """The operator paused the streamer: log out and wait for the resume."""


def is_paused(streamer: Streamer) -> bool:
    """True while the control plane says the streamer is paused."""
    snap = streamer.control.snapshot
    return snap is not None and SERVICE_NAME in snap.paused


def wanted_universe(streamer: Streamer) -> UniverseSpec | None:
    """The control plane's universe, or None before it was read once."""
    snap = streamer.control.snapshot
    return snap.universe if snap is not None else None


def _set_tickers(streamer: Streamer, tickers: list[str]) -> None:
    streamer.tickers = tickers
    streamer._tickers_set = frozenset(tickers)


def adopt_universe(streamer: Streamer) -> None:
    """Before subscribing a new session: take the control plane's universe as it is now."""
    spec = wanted_universe(streamer)
    if spec is None:
        return
    _set_tickers(streamer, list(spec.equities))
    streamer.option_underlyings = list(spec.option_underlyings)


async def wait_while_paused(streamer: Streamer) -> bool:
    """If paused: record a gap and wait until resumed (or stopping); True if it waited."""
    if not is_paused(streamer):
        return False
    await streamer.gaps.open("paused by the operator", streamer._all_symbols())
    streamer.state.set("paused", "paused by the operator")
    while is_paused(streamer) and not streamer._stopping:
        streamer.control.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(streamer.control.changed.wait(), 1.0)
    if not streamer._stopping:
        log.info("resumed by the operator")
    return True


async def apply_control(streamer: Streamer, client: Any, stream: FastStreamClient) -> None:
    """Raise :class:`Paused` when paused; else subscribe what the universe gained, drop what
    it lost, on the open stream."""
    if is_paused(streamer):
        raise Paused
    spec = wanted_universe(streamer)
    if spec is None:
        return
    timeout = streamer.settings.connect_timeout
    have = set(streamer.tickers)
    add = [t for t in spec.equities if t not in have]
    remove = sorted(have - set(spec.equities))
    if add:
        if streamer.tickers:
            await asyncio.wait_for(
                stream.level_one_equity_add(add, fields=F.equity_fields()), timeout
            )
        else:
            await asyncio.wait_for(
                stream.level_one_equity_subs(add, fields=F.equity_fields()), timeout
            )
        _set_tickers(streamer, [*streamer.tickers, *add])
    if remove:
        await asyncio.wait_for(stream.level_one_equity_unsubs(remove), timeout)
        _set_tickers(streamer, [t for t in streamer.tickers if t not in remove])
        for sym in remove:
            streamer.decoder.forget(sym)
    opt_changed = await _apply_underlyings(streamer, client, stream, spec)
    if add or remove or opt_changed:
        streamer.universe_changes += 1
        streamer.state.changed()
        log.info(
            "universe changed at run time: equities +%s -%s; option underlyings now %s",
            ",".join(add) or "0",
            ",".join(remove) or "0",
            ",".join(streamer.option_underlyings) or "none",
        )


async def _apply_underlyings(
    streamer: Streamer, client: Any, stream: FastStreamClient, spec: UniverseSpec
) -> bool:
    wanted = list(spec.option_underlyings)
    if wanted == streamer.option_underlyings:
        return False
    s = streamer.settings
    chains = streamer.universe.chains
    for underlying in [u for u in streamer.option_underlyings if u not in wanted]:
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
    streamer.option_underlyings = wanted
    await streamer.sync_options(stream)
    return True
