"""Stream length by age, never past entries a consumer group has not acknowledged.

Every ``trim_interval`` seconds each ``sd:ticks:{p}`` is trimmed with ``XTRIM MINID ~ <id>``
where ``<id>`` is the *lowest* of (docs/streamer.md)

- the age cutoff (now - ``STREAM_RETENTION_SECONDS``, "now" read from the Redis server's own
  clock with ``TIME``: entry ids are the server's milliseconds, so a streamer whose clock is
  ahead of Redis's must not trim entries that are younger than the retention on Redis's clock),
- for every consumer group on the stream: the oldest pending (delivered, unacknowledged)
  entry, and the entry after the group's last-delivered id (entries never delivered).

So entries a group has not acknowledged are never trimmed by age. A stream without any group
is trimmed by age only. The safety net against a consumer that is gone for good (abnormal
operation) is the ``MAXLEN ~ STREAM_MAX_ENTRIES`` every XADD of the :mod:`.publisher` carries.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis

from streamdesk.constants import tick_stream

log = logging.getLogger(__name__)


def _id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    s = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)


class Trimmer:
    """Trims the tick streams by age, safely; counts what it removed."""

    def __init__(
        self, redis: aioredis.Redis, *, partitions: int, retention_seconds: float = 300.0
    ) -> None:
        self.redis = redis
        self.partitions = partitions
        self.retention_ms = int(retention_seconds * 1000)
        self.trimmed = 0
        #: Set when stopping: the loop ends on its own even if a cancel was swallowed.
        self.stopping = False

    async def run(self, interval: float) -> None:
        """Trim every ``interval`` seconds until stopping; Redis errors are logged, not fatal."""
        while not self.stopping:
            await asyncio.sleep(interval)
            try:
                removed = await asyncio.wait_for(self.trim_once(), 10.0)
                if removed:
                    log.debug("trimmed %d stream entries", removed)
            except (aioredis.RedisError, OSError, TimeoutError) as exc:
                log.warning("stream trim failed: %s", exc)

    async def trim_once(self, now_ms: int | None = None) -> int:
        """Trim every tick stream by age without passing unacknowledged entries (``now_ms``:
        the Redis server's clock unless given)."""
        if now_ms is None:
            sec, usec = await self.redis.time()
            now_ms = int(sec) * 1000 + int(usec) // 1000
        age_cutoff = (now_ms - self.retention_ms, 0)
        removed = 0
        for p in range(self.partitions):
            stream = tick_stream(p)
            cutoff = await self.safe_trim_id(stream, age_cutoff)
            if cutoff is None:
                continue
            n = await self.redis.execute_command(  # type: ignore[no-untyped-call]
                "XTRIM", stream, "MINID", "~", f"{cutoff[0]}-{cutoff[1]}"
            )
            removed += int(n or 0)
        self.trimmed += removed
        return removed

    async def safe_trim_id(
        self, stream: str, age_cutoff: tuple[int, int]
    ) -> tuple[int, int] | None:
        """The MINID below which ``stream`` may be trimmed (``None``: stream absent)."""
        try:
            groups: list[dict[Any, Any]] = await self.redis.xinfo_groups(stream)
        except aioredis.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        cutoff = age_cutoff
        for g in groups:
            raw_name = g.get("name", g.get(b"name", b""))
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            last = g.get("last-delivered-id", g.get(b"last-delivered-id", b"0-0"))
            ld = _id_tuple(last)
            after_last = (ld[0], ld[1] + 1)
            if after_last < cutoff:
                cutoff = after_last
            pending = int(g.get("pending", g.get(b"pending", 0)) or 0)
            if pending:
                summary = await self.redis.xpending(stream, name)
                low = summary.get("min")
                if low is not None:
                    lo = _id_tuple(low)
                    if lo < cutoff:
                        cutoff = lo
        return cutoff
