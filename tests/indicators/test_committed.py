"""The committed-flush message: built with the shared schema, bytes as before it existed.

``_old_committed_message`` is a frozen copy of the builder as it was in service.py before the
schema moved to ``streamdesk.messages``: the wire bytes (keys, order, float formatting, NaN/inf
as null) must stay exactly those.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest

from streamdesk.messages import (
    COMMITTED_VERSION,
    EQUITY_INDICATORS,
    CommittedEquity,
    CommittedMessage,
    CommittedOption,
    decode_committed,
    encode_committed,
)
from streamdesk_indicators.committed import committed_message
from streamdesk_indicators.indicators import columns
from streamdesk_indicators.reference_universe import reference_batch
from streamdesk_indicators.writer import Batch

pytestmark = pytest.mark.unit


def _old_committed_message(batch: Batch, seq: int, now_ms: int, max_options: int) -> bytes:
    ind = columns()
    latest: dict[str, tuple[Any, ...]] = {}
    for row in batch.seconds:
        prev = latest.get(row[0])
        if prev is None or row[1] >= prev[1]:
            latest[row[0]] = row
    equity = []
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
        equity.append(item)
    opt_latest: dict[str, tuple[Any, ...]] = {}
    for o in batch.options:
        p = opt_latest.get(o[0])
        if p is None or o[1] >= p[1]:
            opt_latest[o[0]] = o
    options = [
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
    msg = {
        "v": 1,
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
    return json.dumps(_json_safe(msg), separators=(",", ":"), allow_nan=False).encode()


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj - obj == 0.0 else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def _realistic_batch() -> Batch:
    """The reference universe's flush, plus older rows, awkward floats and non-finite values."""
    batch = reference_batch(n_tickers=12, n_contracts=300)
    sec = list(batch.seconds)
    first = sec[0]
    # an earlier second of a ticker (the latest must win); a later one with awkward floats
    sec.insert(0, (first[0], first[1] - 1000, *first[2:]))
    sec.append((first[0], first[1] + 1000, 1e-05, 7, 2.5e-05, 1e16, 10, 1.5e-7, None, 1e22, 0))
    nan, inf = math.nan, math.inf
    sec.append(("NANX", first[1], nan, 0, inf, -inf, 0, nan, 0.1 + 0.2, -0.0, 1))
    opts = list(batch.options)
    o = opts[0]
    opts.append((*o[:6], nan, inf, 5e-324, -inf, *o[10:14], nan, *o[15:]))
    opts.append(("ZZZ   260320C00001000", o[1], "ZZZ", *o[3:9], 1e-05, *o[10:]))
    return Batch(seconds=sec, options=opts, bars=batch.bars)


@pytest.mark.parametrize("max_options", [500, 40, 0])
def test_bytes_are_those_of_the_old_builder(max_options: int) -> None:
    batch = _realistic_batch()
    new = committed_message(batch, 42, 1_773_151_200_512, max_options)
    assert new == _old_committed_message(batch, 42, 1_773_151_200_512, max_options)
    assert b"NaN" not in new and b"Infinity" not in new and b"1e-05" in new


def test_bytes_of_an_empty_batch_are_those_of_the_old_builder() -> None:
    batch = Batch()
    assert committed_message(batch, 1, 5, 10) == _old_committed_message(batch, 1, 5, 10)


def test_the_message_decodes_with_the_shared_schema() -> None:
    batch = _realistic_batch()
    raw = committed_message(batch, 7, 1000, 40)
    msg = decode_committed(raw)
    assert msg["v"] == COMMITTED_VERSION and msg["seq"] == 7
    assert msg["options_truncated"] is True and len(msg["options"]) == 40
    assert list(msg) == list(CommittedMessage.__annotations__)
    assert list(msg["equity"][0]) == list(CommittedEquity.__annotations__)
    assert list(msg["options"][0]) == list(CommittedOption.__annotations__)
    nanx = next(e for e in msg["equity"] if e["ticker"] == "NANX")
    assert nanx["price"] is None and nanx["bid"] is None and nanx["sma9"] is None
    assert encode_committed(msg) == raw  # decode -> encode is the identity on the wire


def test_schema_indicator_fields_are_the_registry_columns() -> None:
    assert tuple(columns()) == EQUITY_INDICATORS
    fields = list(CommittedEquity.__annotations__)
    assert tuple(fields[-len(EQUITY_INDICATORS) :]) == EQUITY_INDICATORS


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"v":1}',
        json.dumps({**json.loads(committed_message(Batch(), 1, 5, 10)), "v": 2}).encode(),
        json.dumps({**json.loads(committed_message(Batch(), 1, 5, 10)), "seq": "1"}).encode(),
    ],
)
def test_other_messages_are_refused(raw: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_committed(raw)
