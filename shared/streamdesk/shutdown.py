"""Graceful shutdown: SIGTERM/SIGINT stop intake, in-flight work drains with a bounded wait."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Every installed :class:`GracefulShutdown` of this process. A signal handler is per signal
#: and per loop (the last ``add_signal_handler`` wins), so one handler requests them all:
#: several services in one interpreter (``streamdesk.multiservice``) each stop on SIGTERM.
_INSTALLED: weakref.WeakSet[GracefulShutdown] = weakref.WeakSet()


def request_all(reason: str = "requested") -> None:
    """Request a stop of every installed :class:`GracefulShutdown` of this process."""
    for shutdown in list(_INSTALLED):
        shutdown.request(reason)


class GracefulShutdown:
    """Collects the stop signal and runs drain steps, each under a deadline.

    Usage::

        shutdown = GracefulShutdown(timeout=10)
        shutdown.install()
        while not shutdown.requested:            # intake loop
            ...
        await shutdown.drain(writer.flush_all)   # bounded
    """

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.event = asyncio.Event()
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        """True once a stop was requested."""
        return self.event.is_set()

    def request(self, reason: str = "requested") -> None:
        """Ask the service to stop (what the signal handler calls)."""
        if not self.event.is_set():
            log.info("shutdown %s: stopping intake, draining (max %.1fs)", reason, self.timeout)
            self.signal_name = reason
            self.event.set()

    def install(self) -> None:
        """Install SIGTERM/SIGINT handlers on the running loop.

        The handler stops every installed instance (:func:`request_all`), not only the last.
        """
        loop = asyncio.get_running_loop()
        _INSTALLED.add(self)
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Not available off the main thread (tests running a service in a thread).
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, request_all, sig.name)

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until stop is requested (or ``timeout``); return whether it was."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def drain(self, *steps: Callable[[], Awaitable[object]]) -> bool:
        """Run drain steps in order within the overall timeout; return True if all finished."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        for step in steps:
            left = deadline - loop.time()
            if left <= 0:
                log.warning("drain deadline reached; skipping remaining steps")
                return False
            try:
                await asyncio.wait_for(step(), left)
            except TimeoutError:
                log.warning("drain step %s exceeded the deadline", getattr(step, "__name__", step))
                return False
            except Exception:
                log.exception("drain step %s failed", getattr(step, "__name__", step))
                return False
        return True


def log_task_exception(task: asyncio.Task[object]) -> None:
    """Done-callback for background tasks: log an exception instead of losing it."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("task %s failed", task.get_name(), exc_info=exc)


async def unless_stopped(
    aw: Awaitable[T], stop: asyncio.Event, timeout: float, what: str
) -> tuple[bool, T | None]:
    """Await ``aw`` (a long blocking read, say) unless ``stop`` is set first.

    Returns ``(True, result)``, or ``(False, None)`` when ``stop`` ended the wait (``aw`` is
    cancelled and awaited: a redis-py command drops its connection, nothing it was handed is
    lost that the caller's cursor or pending list does not still hold). Raises
    ``TimeoutError`` naming ``what`` if neither happens within ``timeout`` seconds.
    """
    task = asyncio.ensure_future(aw)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        if stop.is_set():
            return False, None
        raise TimeoutError(f"{what} did not return")
    return True, task.result()
