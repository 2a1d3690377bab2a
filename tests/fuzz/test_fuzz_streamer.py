"""Property-based bad input for the streamer's frame decoding (``wire.py`` + ``decode.py``).

Frames are fed through :meth:`FastStreamClient.pump` (both the msgspec fast path and the
orjson per-item fallback), or straight into :class:`Decoder`. Properties:

- nothing raises out of the decoder, whatever the bytes (only a fatal ADMIN/response code
  ends a session, by design);
- bad input is counted (``malformed``, ``unexpected``), and the good items of the same frame
  are still decoded, exactly;
- every row that comes out can be encoded for Redis and read back by the indicators' decoder
  (a row the publisher cannot encode would take the whole batch down with it);
- decoder state stays bounded by the subscribed universe, however many keys a frame carries.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fuzz_helpers import fuzz_settings, json_values, wild_numbers
from hypothesis import given
from hypothesis import strategies as st

from streamdesk.codec import decode_entry, encode_rows
from streamdesk_streamer import fields as F
from streamdesk_streamer.client import FastStreamClient, StreamProtocolError
from streamdesk_streamer.decode import Decoder, Row

pytestmark = pytest.mark.unit

T0 = 1_764_000_000_000
NOW = T0 + 1_000
OCC = "SPY   251219C00600000"
EQ_NUM_FIELDS = [F.EQ_BID, F.EQ_ASK, F.EQ_LAST, F.EQ_VOLUME, F.EQ_LAST_SIZE]
EQ_TIME_FIELDS = [F.EQ_QUOTE_TIME, F.EQ_TRADE_TIME]
OPT_NUM_FIELDS = [F.OPT_BID, F.OPT_ASK, F.OPT_LAST, F.OPT_VOLUME, F.OPT_DELTA, F.OPT_VOLATILITY]
GOOD_SYMBOLS = [f"G{i}" for i in range(8)]


@pytest.fixture(autouse=True)
def _quiet_decoder_logs() -> Iterator[None]:
    """The properties are about counters; thousands of capped warnings only cost time."""
    logger = logging.getLogger("streamdesk_streamer")
    old = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(old)


class Frames:
    """schwab-py's socket interface (``recv``) over a list of scripted frames."""

    def __init__(self, frames: list[Any]) -> None:
        self.frames = list(frames)

    async def recv(self) -> Any:
        if not self.frames:
            await asyncio.sleep(3600)
        return self.frames.pop(0)


def make_client(
    frames: list[Any], known: set[str] | None = None
) -> tuple[FastStreamClient, list[Row]]:
    rows: list[Row] = []
    dec = Decoder(now_ms=lambda: NOW, known_symbols=None if known is None else known.__contains__)
    c = FastStreamClient(object(), dec, rows.extend)
    c._socket = Frames(frames)
    return c, rows


def pump_all(c: FastStreamClient, n: int) -> None:
    async def run() -> None:
        for _ in range(n):
            await c.pump(1.0)

    asyncio.run(run())


def good_item(sym: str, i: int) -> dict[str, Any]:
    """A complete first snapshot that passes the self-check."""
    return {
        "key": sym,
        F.EQ_BID: 100.0 + i,
        F.EQ_ASK: 100.2 + i,
        F.EQ_LAST: 100.1 + i,
        F.EQ_VOLUME: 1_000 + i,
        F.EQ_LAST_SIZE: 10,
        F.EQ_QUOTE_TIME: T0 + i,
    }


def assert_rows_travel(rows: list[Row]) -> None:
    """Rows are what the publisher encodes and the indicators decode: that must not fail."""
    eq = [r for r in rows if len(r) == 7]
    opt = [r for r in rows if len(r) != 7]
    payload = encode_rows(eq, opt)
    decoded, options, dropped = decode_entry(payload)
    # the indicators may drop absurd rows (counted), never lose or fail on one
    assert len(decoded) + len(options) + dropped == len(eq) + len(opt)


# A value that is not acceptable for a numeric field of an equity item.
bad_number = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)

# An item that must be counted as malformed (never applied).
bad_equity_item = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),
    st.fixed_dictionaries({"key": st.one_of(st.integers(), st.none(), st.lists(st.text()))}),
    st.builds(
        lambda f, v, sym: {"key": sym, f: v},
        st.sampled_from(EQ_NUM_FIELDS + EQ_TIME_FIELDS),
        bad_number,
        st.sampled_from(["B1", "B2", "B3"]),
    ),
    st.builds(  # times must be integers
        lambda f, v: {"key": "B4", f: v},
        st.sampled_from(EQ_TIME_FIELDS),
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)),
    ),
)

# An item with arbitrary (possibly absurd but JSON-valid) values: anything may happen except
# an exception, and whatever row comes out must travel. Half of them start from a complete
# snapshot, so absurd values do reach the emitted rows.
wild_overrides = st.dictionaries(
    st.sampled_from([*EQ_NUM_FIELDS, *EQ_TIME_FIELDS, "delayed", "99"]), wild_numbers, max_size=4
)
wild_equity_item = st.one_of(
    st.builds(lambda o, i: {**good_item("W", i), **o}, wild_overrides, st.integers(0, 3)),
    st.builds(lambda o: {"key": "W", **o}, wild_overrides),
)

GOOD_OPTION = {
    "key": OCC,
    F.OPT_BID: 1.0,
    F.OPT_ASK: 1.2,
    F.OPT_LAST: 1.1,
    F.OPT_VOLUME: 10,
    F.OPT_QUOTE_TIME: T0,
}
wild_option_item = st.dictionaries(
    st.sampled_from(
        [*OPT_NUM_FIELDS, F.OPT_QUOTE_TIME, F.OPT_STRIKE, F.OPT_CONTRACT_TYPE, F.OPT_EXP_YEAR]
    ),
    wild_numbers,
    max_size=4,
).map(lambda d: {**GOOD_OPTION, **d})


def dumps(obj: Any) -> bytes:
    """JSON bytes; the stdlib, because orjson refuses integers beyond 64 bits (a peer may not)."""
    return json.dumps(obj).encode()


def eq_frame(content: Any, service: Any = F.LEVELONE_EQUITIES, ts: Any = T0) -> bytes:
    return dumps({"data": [{"service": service, "timestamp": ts, "content": content}]})


@fuzz_settings(500)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300), json_values.map(json.dumps)))
def test_arbitrary_frames_never_raise(raw: bytes | str) -> None:
    c, rows = make_client([raw])
    try:
        pump_all(c, 1)
    except StreamProtocolError:
        # by design: a fatal response code ends the session (and only that)
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        assert "response" in text or "notify" in text
    assert_rows_travel(rows)


@fuzz_settings(300)
@given(
    st.lists(
        st.one_of(st.tuples(st.just("good"), st.integers(0, 7)), bad_equity_item),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
)
def test_good_items_survive_bad_neighbours(mixed: list[Any], as_text: bool) -> None:
    """One frame, good and malformed items interleaved: every good item is one row."""
    content: list[Any] = []
    expected: list[str] = []
    bad = 0
    for i, m in enumerate(mixed):
        if isinstance(m, tuple) and m and m[0] == "good":
            sym = GOOD_SYMBOLS[m[1]]
            item = good_item(sym, i)
            content.append(item)
            expected.append(sym)
        else:
            content.append(m)
            bad += 1
    frame = eq_frame(content)
    c, rows = make_client([frame.decode() if as_text else frame])
    pump_all(c, 1)
    assert [r[0] for r in rows] == expected
    counters = c.decoder.counters
    assert counters.malformed == bad
    assert counters.items == len(content)
    assert not c.decoder.refused
    assert_rows_travel(rows)


@fuzz_settings(400)
@given(st.lists(wild_equity_item, max_size=8), st.lists(wild_option_item, max_size=4))
def test_wild_values_never_raise_and_rows_travel(eq: list[Any], opt: list[Any]) -> None:
    frame = dumps(
        {
            "data": [
                {"service": F.LEVELONE_EQUITIES, "timestamp": T0, "content": eq},
                {"service": F.LEVELONE_OPTIONS, "timestamp": T0, "content": opt},
            ]
        }
    )
    again = dumps({"data": [{"service": F.LEVELONE_EQUITIES, "content": eq[::-1]}]})
    c, rows = make_client([frame, again])
    pump_all(c, 2)
    assert_rows_travel(rows)
    # the decoder's own path on Python objects agrees: no exception either
    d = Decoder(now_ms=lambda: NOW)
    out: list[Row] = []
    d.equities(eq, out, T0)
    d.options(opt, out, T0)
    assert_rows_travel(out)


@fuzz_settings(300)
@given(
    st.one_of(st.text(max_size=30), st.integers(), st.none(), st.lists(st.text(), max_size=2)),
    json_values,
    json_values,
)
def test_unknown_services_and_odd_envelopes_are_counted(
    service: Any, content: Any, ts: Any
) -> None:
    if service in (F.LEVELONE_EQUITIES, F.LEVELONE_OPTIONS, F.CHART_EQUITY):
        service = service + "_X"
    c, rows = make_client([eq_frame(content, service, ts), eq_frame([good_item("G0", 0)])])
    pump_all(c, 2)
    assert c.unexpected >= 1
    assert [r[0] for r in rows] == ["G0"]


@fuzz_settings(25)
@given(st.integers(5_000, 40_000), st.integers(0, 2**32))
def test_huge_frames_stay_bounded(n_items: int, salt: int) -> None:
    """A frame of tens of thousands of keys (and a multi-MB string) keeps state bounded."""
    known = {"G0", "G1"}
    content: list[Any] = [
        {"key": f"K{salt}_{i}", F.EQ_BID: 1.0, F.EQ_ASK: 1.1, F.EQ_LAST: 1.05, F.EQ_VOLUME: i}
        for i in range(n_items)
    ]
    content.insert(n_items // 2, good_item("G1", 1))
    content.append({"key": "G0", F.EQ_BID: "x" * 2_000_000})
    c, rows = make_client([eq_frame(content), "[" * 100_000, eq_frame([good_item("G0", 2)])], known)
    pump_all(c, 3)
    assert [r[0] for r in rows] == ["G1", "G0"]
    assert c.decoder.symbols_with_state <= len(known)
    assert c.decoder.counters.unknown_symbol == n_items
    assert c.decoder.counters.malformed == 2  # the string price, the unparsable frame


@pytest.mark.parametrize(
    "override",
    [
        {F.EQ_VOLUME: 1e300},
        {F.EQ_VOLUME: 2**64},
        {F.EQ_LAST_SIZE: -(2**63) - 1},
        {F.EQ_QUOTE_TIME: 2**63},
    ],
)
def test_regression_equity_integers_beyond_int64_are_malformed(override: dict[str, Any]) -> None:
    """Found by the fuzzer: such a row made the publisher's msgpack encoder raise."""
    item = {**good_item("G0", 0), **override}
    c, rows = make_client([eq_frame([good_item("G1", 1)]), eq_frame([item, good_item("G1", 2)])])
    pump_all(c, 2)
    assert [r[0] for r in rows] == ["G1", "G1"]
    assert c.decoder.counters.malformed == 1
    assert_rows_travel(rows)


def test_regression_option_integers_beyond_int64_are_malformed() -> None:
    c, rows = make_client([eq_frame([{**GOOD_OPTION, F.OPT_VOLUME: 1e300}], F.LEVELONE_OPTIONS)])
    pump_all(c, 1)
    assert rows == [] and c.decoder.counters.malformed == 1
