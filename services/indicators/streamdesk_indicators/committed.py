"""The committed-flush message: built from a committed batch, published after each COMMIT.

Its schema, version and encoder are shared (:mod:`streamdesk.messages`, format in
docs/indicators.md): the gateway's ``/ws`` fan-out and the Supabase broadcast read the same
bytes. :func:`committed_message` builds it; :class:`CommittedPublisher` XADDs it to
``sd:committed`` (``MAXLEN ~ COMMITTED_MAXLEN``), PUBLISHes it on ``sd:committed:live`` and
offers it to the broadcast publisher, never failing the flush (the rows are committed).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis

from streamdesk import constants
from streamdesk.errors import REDIS_ERRORS
from streamdesk.messages import (
    COMMITTED_VERSION,
    CommittedEquity,
    CommittedMessage,
    CommittedOption,
    encode_committed,
)

from .indicators import columns
from .writer import Batch

if TYPE_CHECKING:
    from .broadcast import BroadcastPublisher

log = logging.getLogger(__name__)


def committed_message(batch: Batch, seq: int, now_ms: int, max_options: int) -> bytes:
    """The compact JSON message published after each commit (format in docs/indicators.md)."""
    ind = columns()
    latest: dict[str, tuple[Any, ...]] = {}
    for row in batch.seconds:
        prev = latest.get(row[0])
        if prev is None or row[1] >= prev[1]:
            latest[row[0]] = row
    equity: list[CommittedEquity] = []
    for r in latest.values():
        item: dict[str, Any] = {
            "ticker": r[0],
            "ts": r[1],
            "price": r[2],
            "volume": r[3],
            "bid": r[4],
            "ask": r[5],
        }
        for i, col in enumerate(ind):
            item[col] = r[7 + i]
        equity.append(cast(CommittedEquity, item))  # columns() == messages.EQUITY_INDICATORS
    opt_latest: dict[str, tuple[Any, ...]] = {}
    for o in batch.options:
        p = opt_latest.get(o[0])
        if p is None or o[1] >= p[1]:
            opt_latest[o[0]] = o
    options: list[CommittedOption] = [
        {
            "ticker": o[0],
            "ts": o[1],
            "underlying": o[2],
            "last": o[6],
            "bid": o[7],
            "ask": o[8],
            "delta": o[9],
            "iv": o[14],
        }
        for o in list(opt_latest.values())[:max_options]
    ]
    all_ts = [r[1] for r in batch.seconds] + [o[1] for o in batch.options]
    msg: CommittedMessage = {
        "v": COMMITTED_VERSION,
        "seq": seq,
        "committed_at": now_ms,
        "rows": {
            "equity": len(batch.seconds),
            "options": len(batch.options),
            "bars": len(batch.bars),
        },
        "from_ts": min(all_ts) if all_ts else None,
        "to_ts": max(all_ts) if all_ts else None,
        "equity": equity,
        "options": options,
        "options_truncated": len(opt_latest) > max_options,
    }
    return encode_committed(msg)


class CommittedPublisher:
    """Publishes each committed message to Redis and offers it to the broadcast."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        maxlen: int,
        max_options: int,
        broadcast: BroadcastPublisher | None = None,
    ) -> None:
        self.redis = redis
        self.maxlen = maxlen
        self.max_options = max_options
        self.broadcast = broadcast
        self.redis_errors = 0

    async def publish(self, batch: Batch, seq: int, now_ms: int) -> None:
        """Build, offer and publish the message of the commit ``seq`` (best effort)."""
        msg = committed_message(batch, seq, now_ms, self.max_options)
        if self.broadcast is not None:
            self.broadcast.offer(msg)  # returns at once (a slot of one, sent by its own task)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(
                    constants.COMMITTED_STREAM,
                    {b"d": msg},
                    maxlen=self.maxlen,
                    approximate=True,
                )
                pipe.publish(constants.COMMITTED_CHANNEL, msg)
                await asyncio.wait_for(pipe.execute(), timeout=5.0)
        except REDIS_ERRORS as exc:  # any: the rows are committed already
            self.redis_errors += 1
            log.warning("could not publish committed update: %s", exc)
