"""Typed decoding of streamer frames with msgspec: the fast path for well-formed data.

Parsing a level-one frame into Python dicts (``orjson.loads``) costs about as much as all of
our decoding after it: every content item becomes a dict of ~15 keys, most of which we never
read (``delayed``, ``assetMainType``, ``cusip``, ...). msgspec decodes the same JSON straight
into :class:`EquityItem` structs: only the fields we use, typed, unknown keys skipped while
parsing. The envelope keeps each data message's ``content`` as raw JSON, so it is decoded
only once we know its service.

The struct types are the checks (prices and sizes numbers but not booleans, times integers,
``key`` a string). When a frame or a content list does not validate - one malformed item is
enough - the caller falls back to ``orjson.loads`` and the per-item path of :mod:`.decode`,
which converts each item to the same struct on its own and counts and skips just the bad
ones. So bad
input is handled exactly as before; well-formed input simply takes the fast path.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from . import fields as F

# Values that become integers in a tick row must fit in int64: the msgpack encoder of the
# rows (and Postgres' bigint) cannot hold more, and one such row would fail its whole batch.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Int64Float = Annotated[float, msgspec.Meta(ge=-9.2e18, le=9.2e18)]


class EquityItem(
    msgspec.Struct,
    frozen=True,
    gc=False,
    rename={
        "bid": F.EQ_BID,
        "ask": F.EQ_ASK,
        "last": F.EQ_LAST,
        "volume": F.EQ_VOLUME,
        "last_size": F.EQ_LAST_SIZE,
        "quote_time": F.EQ_QUOTE_TIME,
        "trade_time": F.EQ_TRADE_TIME,
    },
):
    """The LEVELONE_EQUITIES fields we use of one content item (``None``: not sent)."""

    key: str
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    volume: Int64 | Int64Float | None = None
    last_size: Int64 | Int64Float | None = None
    quote_time: Int64 | None = None
    trade_time: Int64 | None = None


class DataMessage(msgspec.Struct):
    """One element of a frame's ``data`` list; ``content`` left as raw JSON."""

    service: Any = None
    timestamp: Any = 0
    content: msgspec.Raw = msgspec.Raw(b"null")


class Frame(msgspec.Struct):
    """A streamer frame: data messages, notifications and responses (each may be absent)."""

    data: list[DataMessage] | None = None
    notify: Any = None
    response: Any = None


FRAME = msgspec.json.Decoder(Frame)
EQUITY_CONTENT = msgspec.json.Decoder(list[EquityItem])

#: What a frame or content that does not match the types raises (caller falls back).
WireError = (msgspec.ValidationError, msgspec.DecodeError)
