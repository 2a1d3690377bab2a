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

from .client import FastStreamClient

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


async def wait_while_paused(streamer: Streamer) -> bool:
    """If paused: record a gap and wait until resumed (or stopping); True if it waited."""
    if not is_paused(streamer):
        return False
    await streamer.gaps.open("paused by the operator", streamer.subscriptions.all_symbols())
    streamer.state.set("paused", "paused by the operator")
    while is_paused(streamer) and not streamer._stopping:
        streamer.control.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(streamer.control.changed.wait(), 1.0)
    if not streamer._stopping:
        log.info("resumed by the operator")
    return True


async def apply_control(streamer: Streamer, client: Any, stream: FastStreamClient) -> None:
    """Raise :class:`Paused` when paused; else apply the universe on the open stream."""
    if is_paused(streamer):
        raise Paused
    spec = wanted_universe(streamer)
    if spec is not None:
        await streamer.subscriptions.apply(spec, client, stream)
