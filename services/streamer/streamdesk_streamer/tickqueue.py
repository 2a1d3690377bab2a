"""The bounded, conflating queue between the websocket handler and the Redis publisher.

``put_many`` never blocks and never fails: the websocket loop must not wait for Redis.

Policy (docs/streamer.md): while fewer than ``maxsize`` ticks wait, every tick is kept, in
arrival order. Once ``maxsize`` ticks wait, the queue conflates: further ticks are kept only as
the *newest pending tick per symbol* - a newer tick of a symbol replaces its older pending one,
and each replaced tick is counted in ``conflated``. Nothing is lost that a consumer needs to
stay correct: volume is cumulative, so the newest tick still carries all traded volume; only
intermediate prices disappear. Per-symbol order is preserved (the FIFO part is older than the
conflated part). Memory is bounded by ``maxsize`` plus one tick per subscribed symbol.
"""

from __future__ import annotations

import asyncio
from typing import Any

Row = tuple[Any, ...]


class ConflatingQueue:
    """FIFO of tick rows (``row[0]`` is the symbol) with per-symbol conflation when full."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._fifo: list[Row] = []
        self._latest: dict[str, Row] = {}
        self._event = asyncio.Event()
        self.conflated = 0
        self.accepted = 0
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._fifo) + len(self._latest)

    def put_many(self, rows: list[Row]) -> None:
        """Enqueue ``rows`` in order (never blocks)."""
        if not rows:
            return
        self.accepted += len(rows)
        fifo = self._fifo
        room = self.maxsize - len(fifo)
        if room >= len(rows) and not self._latest:
            fifo.extend(rows)
        else:
            if room > 0 and not self._latest:
                fifo.extend(rows[:room])
                rows = rows[room:]
            latest = self._latest
            for row in rows:
                sym = row[0]
                if sym in latest:
                    self.conflated += 1
                    # Re-insert at the end so the drain order follows arrival order.
                    del latest[sym]
                latest[sym] = row
        depth = len(fifo) + len(self._latest)
        if depth > self.high_water:
            self.high_water = depth
        self._event.set()

    def drain(self, limit: int | None = None) -> list[Row]:
        """Take up to ``limit`` waiting rows (all by default), oldest first."""
        fifo = self._fifo
        if limit is None or limit >= len(fifo) + len(self._latest):
            out = fifo
            if self._latest:
                out.extend(self._latest.values())
                self._latest = {}
            self._fifo = []
            self._event.clear()
            return out
        if limit <= len(fifo):
            out = fifo[:limit]
            del fifo[:limit]
        else:
            out = fifo[:]
            fifo.clear()
            take = limit - len(out)
            latest = self._latest
            keys = list(latest)[:take]
            out.extend(latest.pop(k) for k in keys)
        if not fifo and not self._latest:
            self._event.clear()
        return out

    async def wait(self, timeout: float) -> bool:
        """Wait until rows are waiting (or ``timeout``); return whether any are."""
        if self._fifo or self._latest:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        return True
