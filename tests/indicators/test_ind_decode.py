"""The fast decoder accepts and rejects exactly what the shared codec does."""

from __future__ import annotations

import math
import random

import msgpack
import pytest

from streamdesk.codec import CodecError, decode_entry, decode_ticks, encode_rows, encode_ticks
from streamdesk.models import EquityTick, OptionTick

pytestmark = pytest.mark.unit

OPT = OptionTick(
    "SPY   261218C00500000",
    1,
    1.0,
    0.9,
    1.1,
    5,
    1,
    "SPY",
    "C",
    500.0,
    "2026-12-18",
    0.5,
    0.01,
    -0.02,
    0.1,
    0.01,
    0.3,
    100,
    500.0,
)


def test_valid_payloads_decode_identically() -> None:
    rng = random.Random(3)
    eq = [
        EquityTick(f"S{i}", 1_700_000_000_000 + i, 10 + rng.random(), 9.9, 10.1, i * 10, 5)
        for i in range(50)
    ]
    for payload in (
        encode_ticks(eq),
        encode_ticks(eq, [OPT]),
        encode_ticks([], [OPT]),
        encode_rows([("X", 1.7e12, 10, 9, 11, 100.0, 1)], []),  # ints/floats mixed
    ):
        rows, opts, dropped = decode_entry(payload)
        ref_eq, ref_opt = decode_ticks(payload)
        assert dropped == 0
        assert [EquityTick(*r) for r in rows] == ref_eq
        assert opts == ref_opt
        for r, t in zip(rows, ref_eq, strict=True):
            assert [type(v) for v in r] == [type(getattr(t, f)) for f in EquityTick.__slots__]


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1",
        msgpack.packb({"a": 1}),
        msgpack.packb([2, [], []]),
        msgpack.packb([1, {}, []]),
        msgpack.packb([1, [["X", 1, 2.0, 1.0, 3.0, 10]], []]),  # short row
        msgpack.packb([1, [[1, 1, 2.0, 1.0, 3.0, 10, 1]], []]),  # symbol not a str
        msgpack.packb([1, [["X", 1, "2", 1.0, 3.0, 10, 1]], []]),  # price not a number
        msgpack.packb([1, [["X", 1, True, 1.0, 3.0, 10, 1]], []]),  # bool is not a number
        msgpack.packb([1, [], [["bad"]]]),
    ],
)
def test_malformed_payloads_raise_like_the_codec(payload: bytes) -> None:
    with pytest.raises(CodecError):
        decode_ticks(payload)
    with pytest.raises(CodecError):
        decode_entry(payload)


def test_non_finite_price_or_negative_volume_rows_are_dropped() -> None:
    payload = encode_rows(
        [
            ("A", 1, math.nan, 1.0, 2.0, 10, 1),
            ("B", 1, math.inf, 1.0, 2.0, 10, 1),
            ("C", 1, 5.0, 1.0, 2.0, -1, 1),
            ("D", 1, 5.0, 4.9, 5.1, 10, 1),
            ("E", 1, 5.0, 4.9, 5.1, math.inf, 1),
        ],
        [],
    )
    rows, _, dropped = decode_entry(payload)
    assert [r[0] for r in rows] == ["D"]
    assert dropped == 4


@pytest.mark.parametrize(
    ("overrides", "var"),
    [
        ({"session_open": "9:30"}, "SESSION_OPEN"),
        ({"session_close": "09:00"}, "SESSION_CLOSE"),
        ({"session_timezone": "Mars/Olympus"}, "SESSION_TIMEZONE"),
        ({"batch_interval": 0}, "BATCH_INTERVAL"),
        ({"batch_size": 0}, "BATCH_SIZE"),
    ],
)
def test_bad_settings_name_the_variable(overrides: dict[str, object], var: str) -> None:
    from streamdesk.config import ConfigError, load_settings
    from streamdesk_indicators.config import Settings

    with pytest.raises(ConfigError, match=var):
        load_settings(Settings, **overrides)
    assert load_settings(Settings, batch_interval=2.0).batch_interval == 2.0
