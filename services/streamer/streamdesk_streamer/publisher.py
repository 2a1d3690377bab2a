"""Tick rows -> Redis Streams (batched, partitioned, pipelined) and the latest quotes.

Each publish call groups the rows by partition (``constants.partition_for``: one symbol always
goes to the same stream, so each symbol stays ordered), encodes up to
``max_ticks_per_entry`` ticks into one stream entry (``streamdesk.codec.encode_rows`` under
``constants.TICK_FIELD``) and sends every XADD in one pipeline round trip.

Latest quotes (``sd:quote:{symbol}``: ``last``, ``bid``, ``ask``, ``ts``) are written at most
every ``quote_interval`` seconds, with the newest published tick of every symbol that changed
since the previous write: appended to a publish pipeline (after its XADDs, so a quote is never
newer than the ticks in the stream) when one is due, else by :meth:`Publisher.flush_quotes`
from the publish loop when it is idle. One ``HSET`` costs Redis several microseconds of Lua
and command overhead - more than everything else per tick - so a symbol ticking 50 times a
second gets 4 quote writes, not 50 (``quote_interval`` 0 writes them with every publish).

Every XADD carries ``MAXLEN ~ max_entries``: the safety net against a consumer that is gone
for good (abnormal operation); in normal operation the streams are trimmed by age, never past
unacknowledged entries (:mod:`.trimmer`).
"""

from __future__ import annotations

import logging
import time
from operator import itemgetter
from typing import Any

import msgspec
import redis.asyncio as aioredis

from streamdesk.codec import encode_rows
from streamdesk.constants import TICK_FIELD, last_quote_key, partition_for, tick_stream

log = logging.getLogger(__name__)

Row = tuple[Any, ...]
_EQ_LEN = 7
_symbol = itemgetter(0)

#: Write the latest-quote hashes: ``ARGV[1]`` msgpack ``[[symbol, last, bid, ask, ts], ...]``,
#: ``ARGV[2]`` the key prefix. One script call instead of one pipelined HSET per symbol saves
#: the client a command per symbol; the keys are built in the script, so this needs a
#: standalone Redis, not Redis Cluster. ``last`` is left out while it is NaN (an option that
#: has not traded). Lua formats numbers with 14 significant digits: ample for prices and
#: epoch-ms times. Sent with EVAL (Redis caches the compiled script by its SHA), so a Redis
#: restart that empties the script cache needs no special handling.
QUOTES_LUA = """
local quotes = cmsgpack.unpack(ARGV[1])
local prefix = ARGV[2]
for i = 1, #quotes do
  local q = quotes[i]
  if q[2] == q[2] then
    redis.call('HSET', prefix .. q[1], 'last', q[2], 'bid', q[3], 'ask', q[4], 'ts', q[5])
  else
    redis.call('HSET', prefix .. q[1], 'bid', q[3], 'ask', q[4], 'ts', q[5])
  end
end
return #quotes
"""


class Publisher:
    """Publishes tick rows and the latest quotes; counts what it wrote."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        partitions: int,
        max_ticks_per_entry: int = 2_000,
        max_entries: int = 100_000,
        quote_interval: float = 0.25,
    ) -> None:
        self.redis = redis
        self.partitions = partitions
        self.max_ticks_per_entry = max_ticks_per_entry
        self.max_entries = max_entries
        self.quote_interval = quote_interval
        self._stream_of: dict[str, int] = {}
        self._quote_prefix = last_quote_key("")
        #: Newest published row of every symbol whose quote hash is not written yet.
        self._pending_quotes: dict[str, Row] = {}
        self._quotes_due = 0.0  # time.monotonic() at which pending quotes may be written
        self.entries = 0
        self.ticks = 0
        self.quotes = 0

    def _partition(self, symbol: str) -> int:
        p = self._stream_of.get(symbol)
        if p is None:
            p = self._stream_of[symbol] = partition_for(symbol, self.partitions)
        return p

    def quotes_due_in(self) -> float | None:
        """Seconds until pending quotes may be written (0: now); ``None`` if none pending."""
        if not self._pending_quotes:
            return None
        return max(0.0, self._quotes_due - time.monotonic())

    def _quotes_command(self, pipe: Any) -> int:
        """Append the pending quotes' EVAL to ``pipe``; return how many quotes it writes."""
        pending = self._pending_quotes
        quotes = [(r[0], r[2], r[3], r[4], r[1]) for r in pending.values()]
        pipe.execute_command(
            "EVAL", QUOTES_LUA, 0, msgspec.msgpack.encode(quotes), self._quote_prefix
        )
        return len(quotes)

    def _quotes_written(self, n: int) -> None:
        self._pending_quotes = {}
        self._quotes_due = time.monotonic() + self.quote_interval
        self.quotes += n

    async def publish(self, rows: list[Row]) -> None:
        """Write ``rows`` (oldest first) in one pipeline; raise on Redis errors.

        Appends the latest quotes when they are due. On an error nothing is forgotten: the
        caller publishes the same rows again (at-least-once) and the quotes stay pending.
        """
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
        # Rows are oldest first, so each symbol's newest row wins.
        self._pending_quotes.update(zip(map(_symbol, rows), rows, strict=True))
        pipe = self.redis.pipeline(transaction=False)
        n_entries = 0
        step = self.max_ticks_per_entry
        maxlen = self.max_entries
        for p, (eq, opt) in enumerate(by_part):
            if not eq and not opt:
                continue
            stream = tick_stream(p)
            # Chunks keep per-symbol order: equities and options are disjoint symbol sets.
            for i in range(0, max(len(eq), len(opt)), step):
                payload = encode_rows(eq[i : i + step], opt[i : i + step])
                pipe.execute_command(
                    "XADD", stream, "MAXLEN", "~", maxlen, "*", TICK_FIELD, payload
                )
                n_entries += 1
        quotes_due = self.quotes_due_in() == 0.0
        n_quotes = self._quotes_command(pipe) if quotes_due else 0
        await pipe.execute()
        if quotes_due:
            self._quotes_written(n_quotes)
        self.entries += n_entries
        self.ticks += len(rows)

    async def flush_quotes(self, *, force: bool = False) -> int:
        """Write the pending quotes if they are due (or ``force``); return how many."""
        due = self.quotes_due_in()
        if due is None or (due > 0 and not force):
            return 0
        pipe = self.redis.pipeline(transaction=False)
        n = self._quotes_command(pipe)
        await pipe.execute()
        self._quotes_written(n)
        return n
