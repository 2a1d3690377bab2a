"""One back-off policy for every retry loop: exponential, capped, with full jitter.

``delay(n) = uniform(initial / 2, min(maximum, initial * factor**n))`` for the n-th
consecutive failure (n from 0): jittered so that services reconnecting after the same outage
(a Redis restart, a Postgres failover) do not all come back in the same millisecond, with a
floor of half the initial delay so a flapping peer is never hammered. :meth:`Backoff.reset`
after a success starts over.

Waits end early when a stop is requested: :meth:`Backoff.wait` takes an ``asyncio.Event``
(the shutdown event every service already has) and returns False when it was set.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable


class Backoff:
    """Consecutive-failure counter and the delay before the next attempt."""

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        factor: float = 2.0,
        *,
        jitter: bool = True,
        rng: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("back-off needs 0 < initial <= maximum")
        if factor < 1:
            raise ValueError("back-off factor must be >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._rng = rng
        #: Consecutive failures since the last :meth:`reset`.
        self.failures = 0
        #: The delay :meth:`next_delay` returned last (what :meth:`wait` slept at most).
        self.last_delay = 0.0

    def cap(self, failures: int | None = None) -> float:
        """The upper bound of the delay after ``failures`` failures (default: so far)."""
        n = self.failures if failures is None else failures
        # min() before the power would overflow for very long outages
        return min(self.maximum, self.initial * self.factor ** min(n, 64))

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next attempt."""
        cap = self.cap()
        self.failures += 1
        self.last_delay = cap if not self.jitter else self._rng(min(self.initial / 2, cap), cap)
        return self.last_delay

    def reset(self) -> None:
        """A success: the next failure waits the initial delay again."""
        self.failures = 0

    async def wait(self, stop: asyncio.Event | None = None) -> bool:
        """Sleep :meth:`next_delay` seconds; return False at once if ``stop`` is set first."""
        delay = self.next_delay()
        if stop is None:
            await asyncio.sleep(delay)
            return True
        if stop.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        return not stop.is_set()
