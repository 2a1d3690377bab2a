"""The one clock: every "now" used for market hours, sessions, freshness and token age.

Code that asks "what time is it?" for a decision that depends on the calendar or on an age
takes a :class:`Clock` (default :data:`SYSTEM_CLOCK`) instead of calling ``time.time()`` or
``datetime.now()`` itself. Two ways to control it, both used by the tests:

- pass a :class:`ManualClock` (fixed until advanced) to the object under test;
- pin the process clock with the ``time_machine`` package: :class:`SystemClock` reads
  ``time.time()``, which time-machine moves, so everything in the process agrees on "now"
  (heartbeats written, ages computed, the calendar consulted).

Durations and deadlines (timeouts, sleeps, rate limits) use ``time.monotonic()`` and are not
"now": they do not go through this module.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time as an aware UTC ``datetime`` and as epoch seconds (the same instant)."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def time(self) -> float:
        """The current time as seconds since the epoch."""
        ...


class SystemClock:
    """The real clock (``time.time()``), which ``time_machine`` can pin in tests."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.fromtimestamp(time.time(), UTC)

    def time(self) -> float:
        """The current time as seconds since the epoch."""
        return time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that stands still until moved: for unit tests of time-dependent rules."""

    def __init__(self, at: datetime) -> None:
        self._at = _aware(at)

    def now(self) -> datetime:
        """The pinned time (aware, UTC)."""
        return self._at

    def time(self) -> float:
        """The pinned time as epoch seconds."""
        return self._at.timestamp()

    def set(self, at: datetime) -> None:
        """Move the clock to ``at`` (aware)."""
        self._at = _aware(at)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (backward if negative)."""
        self._at += timedelta(seconds=seconds)

    def __repr__(self) -> str:
        return f"ManualClock({self._at.isoformat()})"


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a clock needs a timezone-aware datetime")
    return at.astimezone(UTC)


#: The process-wide default; every ``clock=`` parameter defaults to it.
SYSTEM_CLOCK: Clock = SystemClock()
