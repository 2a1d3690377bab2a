"""Schemas of the messages that cross a service boundary, with their one encoder and decoder.

The *committed-flush message* (format ``v`` :data:`COMMITTED_VERSION`, docs/indicators.md):
the indicators writer publishes one after every COMMIT (``constants.COMMITTED_STREAM``, field
``d``, and ``constants.COMMITTED_CHANNEL``); the gateway's ``/ws`` fan-out forwards the bytes
untouched and the Supabase broadcast publisher reshapes it.

The schema is a set of :class:`~typing.TypedDict`\\ s rather than ``msgspec.Struct``\\ s: the
writer builds plain dicts once per flush and the publisher merges plain dicts, so the types
cost nothing at run time, and :func:`decode_committed` validates with msgspec all the same.
The wire bytes are :func:`encode_json`'s: compact ``json.dumps`` (ASCII, Python's shortest
float ``repr``: ``1e-05``, not msgspec's ``0.00001``), non-finite floats as ``null``, keys in
the order the dict was built (the order the TypedDicts declare).
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

import msgspec

#: ``v`` of the committed message. Bump it for any change a v1 reader would misread.
COMMITTED_VERSION = 1

#: The indicator columns an equity item carries, in wire order (the indicator registry's
#: ``columns()``; a test keeps the two equal).
EQUITY_INDICATORS: tuple[str, ...] = ("sma9", "vwap", "ema9")


class CommittedRows(TypedDict):
    """How many rows the flush wrote, per kind."""

    equity: int
    options: int
    bars: int


class CommittedEquity(TypedDict):
    """The latest committed per-second row of one ticker in the flush."""

    ticker: str
    ts: int  # start of the second, epoch ms (UTC)
    price: float | None
    volume: int  # shares traded in that second
    bid: float | None
    ask: float | None
    sma9: float | None
    vwap: float | None
    ema9: float | None


class CommittedOption(TypedDict):
    """The latest committed per-second row of one option contract in the flush."""

    ticker: str  # OCC symbol
    ts: int
    underlying: str
    last: float | None
    bid: float | None
    ask: float | None
    delta: float | None
    iv: float | None


class CommittedMessage(TypedDict):
    """One committed flush (docs/indicators.md, "Committed-update message")."""

    v: int  # COMMITTED_VERSION
    seq: int  # commit counter of the publishing process (restarts at 1)
    committed_at: int  # epoch ms
    rows: CommittedRows
    from_ts: int | None  # first second written, epoch ms; None when only state was written
    to_ts: int | None
    equity: list[CommittedEquity]
    options: list[CommittedOption]  # capped at COMMITTED_MAX_OPTIONS
    options_truncated: bool


def _finite(obj: Any) -> Any:
    """``obj`` with non-finite floats (not valid JSON) replaced by ``None``, recursively."""
    if isinstance(obj, float):
        return obj if obj - obj == 0.0 else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def encode_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON as every committed message (and payload made from one) is sent.

    NaN and +-inf become ``null``; dict keys keep their order; floats are ``repr``-formatted.
    """
    try:  # the usual case: every float is finite, no copy of the message is needed
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        return json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False).encode()


def encode_committed(msg: CommittedMessage) -> bytes:
    """The wire bytes of a committed message (see :func:`encode_json`)."""
    return encode_json(msg)


_DECODER = msgspec.json.Decoder(CommittedMessage)


def decode_committed(data: bytes | str) -> CommittedMessage:
    """Parse and validate a committed message; raise ``msgspec.ValidationError`` (a
    ``ValueError``) if it is not JSON, not of this schema or of another version."""
    msg = _DECODER.decode(data)
    if msg["v"] != COMMITTED_VERSION:
        raise msgspec.ValidationError(
            f"committed message version {msg['v']}, expected {COMMITTED_VERSION}"
        )
    return msg
