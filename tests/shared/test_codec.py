"""Tick batch codec: round trip, and clear errors on malformed payloads."""

from __future__ import annotations

import msgpack
import pytest

from streamdesk.codec import CodecError, decode_ticks, encode_rows, encode_ticks
from streamdesk.constants import partition_for, tick_stream
from streamdesk.models import EquityTick, OptionTick, TradeRequest, format_occ, parse_occ

pytestmark = pytest.mark.unit

EQ = EquityTick("AAPL", 1_700_000_000_123, 190.5, 190.49, 190.51, 1_234_567, 100)
OPT = OptionTick(
    "AAPL  251219C00200000",
    1_700_000_000_456,
    3.2,
    3.1,
    3.3,
    420,
    5,
    "AAPL",
    "C",
    200.0,
    "2025-12-19",
    0.45,
    0.02,
    -0.05,
    0.12,
    0.03,
    0.28,
    1500,
    190.5,
)


EQ_ROW = tuple(getattr(EQ, f) for f in EquityTick.__slots__)
OPT_ROW = tuple(getattr(OPT, f) for f in OptionTick.__slots__)


def test_encoding_is_plain_msgpack() -> None:
    """Consumers may decode with any msgpack library: the bytes are msgpack-python's."""
    nan_last = (*OPT_ROW[:2], float("nan"), *OPT_ROW[3:])
    eq_rows = [EQ_ROW, ("MSFT", 1, 0.0, -1.5, 1e300, 2**63 - 1, 0)]
    payload = encode_rows(eq_rows, [OPT_ROW, nan_last])
    assert payload == msgpack.packb([1, eq_rows, [OPT_ROW, nan_last]], use_bin_type=True)
    assert encode_ticks([EQ], [OPT]) == msgpack.packb([1, [EQ_ROW], [OPT_ROW]], use_bin_type=True)


def test_round_trip() -> None:
    eq, opt = decode_ticks(encode_ticks([EQ, EQ], [OPT]))
    assert eq == [EQ, EQ] and opt == [OPT]


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1garbage",
        msgpack.packb({"not": "a list"}),
        msgpack.packb([2, [], []]),
        msgpack.packb([1, [["AAPL", 1, 2.0]], []]),
        msgpack.packb([1, [["AAPL", "t", 1.0, 1.0, 1.0, 1, 1]], []]),
        msgpack.packb(
            [
                1,
                [],
                [
                    [
                        "X",
                        1,
                        1.0,
                        1.0,
                        1.0,
                        1,
                        1,
                        "X",
                        "Z",
                        1.0,
                        "2025-01-01",
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                    ]
                ],
            ]
        ),
    ],
)
def test_malformed_payloads_raise_codec_error(payload: bytes) -> None:
    with pytest.raises(CodecError):
        decode_ticks(payload)


def test_partitioning_is_stable() -> None:
    assert partition_for("AAPL", 4) == partition_for("AAPL", 4)
    assert {partition_for(s, 4) for s in ("AAPL", "MSFT", "SPY", "QQQ", "NVDA", "TSLA")} <= {
        0,
        1,
        2,
        3,
    }
    assert tick_stream(3) == "sd:ticks:3"


def test_occ_round_trip() -> None:
    occ = parse_occ("AAPL  251219C00200000")
    assert occ.root == "AAPL" and occ.put_call == "C" and float(occ.strike) == 200.0
    assert str(occ) == "AAPL  251219C00200000"
    assert format_occ("SPY", occ.expiration, "P", 512.5) == "SPY   251219P00512500"
    with pytest.raises(ValueError):
        parse_occ("AAPL251219C200")


def test_trade_request_validation() -> None:
    TradeRequest(
        symbol="aapl",
        asset_type="EQUITY",
        instruction="BUY",
        quantity=1,
        order_type="LIMIT",
        limit_price=10,
    )
    with pytest.raises(ValueError, match="not an equity instruction"):
        TradeRequest(
            symbol="AAPL",
            asset_type="EQUITY",
            instruction="BUY_TO_OPEN",
            quantity=1,
            order_type="MARKET",
        )
    with pytest.raises(ValueError, match="needs limit_price"):
        TradeRequest(
            symbol="AAPL", asset_type="EQUITY", instruction="BUY", quantity=1, order_type="LIMIT"
        )
    with pytest.raises(ValueError):
        TradeRequest(
            symbol="AAPL",
            asset_type="OPTION",
            instruction="BUY_TO_OPEN",
            quantity=1,
            order_type="MARKET",
        )
