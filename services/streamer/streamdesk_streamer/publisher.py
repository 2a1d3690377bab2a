"""Tick rows -> Redis Streams (batched, partitioned, pipelined), latest quotes, trimming.

Each publish call groups the rows by partition (``constants.partition_for``: one symbol always
goes to the same stream, so each symbol stays ordered), encodes up to
``max_ticks_per_entry`` ticks into one stream entry (``streamdesk.codec.encode_rows`` under
``constants.TICK_FIELD``) and sends every XADD plus the latest-quote hashes in one pipeline
round trip (see :data:`PUBLISH_LUA`).

Trimming policy (docs/streamer.md): every ``trim_interval`` seconds each stream is trimmed with
``XTRIM MINID ~ <id>`` where ``<id>`` is the *lowest* of

- the age cutoff (now - ``STREAM_RETENTION_SECONDS``),
- for every consumer group on the stream: the oldest pending (delivered, unacknowledged)
  entry, and the entry after the group's last-delivered id (entries never delivered).

So entries a group has not acknowledged are never trimmed by age. A stream without any group
is trimmed by age only. As a safety net against a consumer that is gone for good (abnormal
operation) every XADD also carries ``MAXLEN ~ STREAM_MAX_ENTRIES``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from streamdesk.codec import encode_rows
from streamdesk.constants import TICK_FIELD, last_quote_key, partition_for, tick_stream

log = logging.getLogger(__name__)

Row = tuple[Any, ...]
_EQ_LEN = 7

#: XADD one encoded batch and update the latest-quote hash of every symbol in it, in Redis.
#: Doing the HSETs server-side (one EVALSHA per stream entry instead of one HSET per symbol)
#: cut the streamer's CPU per tick several-fold (bench/bench_streamer.py). The quote keys are
#: derived in the script (``ARGV[4]`` .. symbol), so this needs a standalone Redis, not
#: Redis Cluster. ``last`` is left out while it is NaN (an option that has not traded).
#: Lua formats numbers with 14 significant digits: ample for prices and epoch-ms times.
PUBLISH_LUA = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', ARGV[2], ARGV[3])
local batch = cmsgpack.unpack(ARGV[3])
local latest = {}
for k = 2, 3 do
  local rows = batch[k]
  for i = 1, #rows do
    local r = rows[i]
    latest[r[1]] = r
  end
end
local prefix = ARGV[4]
for sym, r in pairs(latest) do
  if r[3] == r[3] then
    redis.call('HSET', prefix .. sym, 'last', r[3], 'bid', r[4], 'ask', r[5], 'ts', r[2])
  else
    redis.call('HSET', prefix .. sym, 'bid', r[4], 'ask', r[5], 'ts', r[2])
  end
end
return id
"""


def _id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    s = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)


class Publisher:
    """Publishes tick rows; counts what it wrote."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        partitions: int,
        max_ticks_per_entry: int = 2_000,
        max_entries: int = 100_000,
        retention_seconds: float = 300.0,
    ) -> None:
        self.redis = redis
        self.partitions = partitions
        self.max_ticks_per_entry = max_ticks_per_entry
        self.max_entries = max_entries
        self.retention_ms = int(retention_seconds * 1000)
        self._stream_of: dict[str, int] = {}
        self._quote_prefix = last_quote_key("")
        self._sha: str | None = None
        self.entries = 0
        self.ticks = 0
        self.batches = 0
        self.bytes = 0
        self.trimmed = 0
        self.last_publish_ts = 0.0

    def _partition(self, symbol: str) -> int:
        p = self._stream_of.get(symbol)
        if p is None:
            p = self._stream_of[symbol] = partition_for(symbol, self.partitions)
        return p

    async def publish(self, rows: list[Row]) -> None:
        """Write ``rows`` (oldest first) in one pipeline; raise on Redis errors."""
        if not rows:
            return
        by_part: list[tuple[list[Row], list[Row]]] = [([], []) for _ in range(self.partitions)]
        part_of = self._stream_of
        for row in rows:
            sym = row[0]
            p = part_of.get(sym)
            if p is None:
                p = self._partition(sym)
            if len(row) == _EQ_LEN:
                by_part[p][0].append(row)
            else:
                by_part[p][1].append(row)
        sha = self._sha or await self._load_script()
        prefix = self._quote_prefix
        entries: list[tuple[str, bytes]] = []
        step = self.max_ticks_per_entry
        for p, (eq, opt) in enumerate(by_part):
            if not eq and not opt:
                continue
            stream = tick_stream(p)
            # Chunks keep per-symbol order: equities and options are disjoint symbol sets.
            for i in range(0, max(len(eq), len(opt)), step):
                entries.append((stream, encode_rows(eq[i : i + step], opt[i : i + step])))
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            for stream, payload in entries:
                pipe.execute_command(
                    "EVALSHA", sha, 1, stream, self.max_entries, TICK_FIELD, payload, prefix
                )
            try:
                await pipe.execute()
                break
            except NoScriptError:
                # Redis restarted (scripts are not persisted): nothing ran, load and resend.
                if attempt == 2:
                    raise
                sha = await self._load_script()
        n_entries = len(entries)
        n_bytes = sum(len(p) for _, p in entries)
        self.entries += n_entries
        self.ticks += len(rows)
        self.bytes += n_bytes
        self.batches += 1
        self.last_publish_ts = time.time()

    async def _load_script(self) -> str:
        sha = await self.redis.script_load(PUBLISH_LUA)
        self._sha = sha.decode() if isinstance(sha, bytes) else str(sha)
        return self._sha

    async def trim_once(self, now_ms: int | None = None) -> int:
        """Trim every tick stream by age without passing unacknowledged entries."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
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
