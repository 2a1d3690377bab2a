"""Decoder: partial level-one updates become complete ticks; bad input is counted, not fatal."""

from __future__ import annotations

import math

import pytest

from streamdesk.codec import decode_ticks, encode_rows
from streamdesk.models import EquityTick, OptionTick
from streamdesk_streamer import fields as F
from streamdesk_streamer.decode import Decoder

pytestmark = pytest.mark.unit

T0 = 1_764_000_000_000
NOW = T0 + 1000
OCC = "SPY   251219C00600000"


def dec(**kw: object) -> Decoder:
    return Decoder(now_ms=lambda: NOW, **kw)  # type: ignore[arg-type]


def full_eq(sym: str = "AAPL", **over: object) -> dict[str, object]:
    item: dict[str, object] = {
        "key": sym,
        "delayed": False,
        "1": 190.0,
        "2": 190.2,
        "3": 190.1,
        "8": 1_000,
        "9": 100,
        "34": T0,
        "35": T0 - 5,
    }
    item.update(over)
    return item


def full_opt(sym: str = OCC, **over: object) -> dict[str, object]:
    item: dict[str, object] = {
        "key": sym,
        "2": 3.1,
        "3": 3.3,
        "4": 3.2,
        "8": 42,
        "9": 1000,
        "10": 18.5,
        "12": 2025,
        "18": 2,
        "20": 600.0,
        "21": "C",
        "22": "SPY",
        "23": 12,
        "26": 19,
        "28": 0.45,
        "29": 0.02,
        "30": -0.05,
        "31": 0.12,
        "32": 0.03,
        "35": 598.5,
        "38": T0,
        "39": T0 - 10,
    }
    item.update(over)
    return item


def test_full_snapshot_then_partial_updates_emit_complete_ticks() -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.equities([full_eq()], out)
    d.equities([{"key": "AAPL", "1": 190.05, "34": T0 + 7}], out)
    d.equities([{"key": "AAPL", "3": 190.15, "8": 1_300, "9": 300, "35": T0 + 9}], out)
    assert out == [
        ("AAPL", T0, 190.1, 190.0, 190.2, 1_000, 100),
        ("AAPL", T0 + 7, 190.1, 190.05, 190.2, 1_000, 100),
        ("AAPL", T0 + 9, 190.15, 190.05, 190.2, 1_300, 300),
    ]
    # The rows are exactly what the shared codec encodes as EquityTick.
    eq, _ = decode_ticks(encode_rows(out, []))
    assert eq[2] == EquityTick("AAPL", T0 + 9, 190.15, 190.05, 190.2, 1_300, 300)
    assert d.counters.ticks == 3


def test_incomplete_symbol_emits_nothing_and_volume_is_never_invented() -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.equities([{"key": "MSFT", "1": 400.0, "2": 400.1, "3": 400.05, "34": T0}], out)
    assert out == []
    assert d.counters.incomplete == 1
    d.equities([{"key": "MSFT", "8": 55, "34": T0 + 1}], out)
    assert out == [("MSFT", T0 + 1, 400.05, 400.0, 400.1, 55, 0)]


def test_item_without_tracked_fields_is_not_a_tick() -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.equities([full_eq()], out)
    d.equities([{"key": "AAPL", "33": 190.1, "delayed": False}], out)
    assert len(out) == 1
    assert d.counters.unchanged == 1
    # A new quote time alone is an update (Schwab sent it): one more tick with the new time.
    d.equities([{"key": "AAPL", "34": T0 + 1}], out)
    assert out[-1] == ("AAPL", T0 + 1, 190.1, 190.0, 190.2, 1_000, 100)


def test_snapshot_without_times_uses_the_message_timestamp() -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.equities([full_eq(**{"34": 0, "35": 0})], out, T0 + 50)
    assert out == [("AAPL", T0 + 50, 190.1, 190.0, 190.2, 1_000, 100)]
    d.equities([full_eq("MSFT", **{"34": 0, "35": 0})], out)  # and no message time either
    assert len(out) == 1 and d.counters.incomplete == 1


@pytest.mark.parametrize(
    "content",
    [
        [{"key": "AAPL", "1": "190.0"}],
        [{"key": "AAPL", "8": True}],
        [{"key": "AAPL", "34": 1.5}],
        [{"1": 190.0}],
        [{"key": 5, "1": 190.0}],
        ["AAPL"],
    ],
)
def test_malformed_items_are_counted_and_leave_state_alone(content: list[object]) -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.equities([full_eq()], out)
    d.equities(content, out)
    assert d.counters.malformed == 1
    d.equities([{"key": "AAPL", "9": 7, "35": T0 + 3}], out)
    assert out[-1] == ("AAPL", T0 + 3, 190.1, 190.0, 190.2, 1_000, 7)


def test_content_that_is_not_a_list_is_malformed() -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.equities({"key": "AAPL"}, out)
    d.options(None, out)
    assert d.counters.malformed == 2 and out == []


def test_unsubscribed_symbols_are_counted_not_emitted() -> None:
    d = dec(known_symbols=lambda s: s == "AAPL")
    out: list[tuple[object, ...]] = []
    d.equities([full_eq("ZZZZ"), full_eq("AAPL")], out)
    assert [r[0] for r in out] == ["AAPL"]
    assert d.counters.unknown_symbol == 1


def test_self_check_refuses_equity_times_that_are_not_epoch_ms() -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.equities([full_eq(**{"34": T0 // 1000, "35": T0 // 1000})], out)
    assert out == []
    assert F.LEVELONE_EQUITIES in d.refused
    d.equities([full_eq("MSFT")], out)
    assert out == [] and d.counters.refused == 2


def test_option_tick_carries_contract_terms_from_the_occ_symbol() -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.options([full_opt()], out)
    d.options([{"key": OCC, "2": 3.15, "28": 0.46, "38": T0 + 5}], out)
    assert len(out) == 2
    _, opts = decode_ticks(encode_rows([], out))
    assert opts[1] == OptionTick(
        OCC, T0 + 5, 3.2, 3.15, 3.3, 42, 2, "SPY", "C", 600.0, "2025-12-19",
        0.46, 0.02, -0.05, 0.12, 0.03, 18.5, 1000, 598.5,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"20": 605.0}, "strike"),
        ({"21": "P"}, "contract type"),
        ({"23": 11}, "expiration"),
        ({"22": "QQQ"}, "underlying"),
        ({"28": -0.4}, "delta"),
    ],
)
def test_option_self_check_refuses_mislabelled_fields(over: dict[str, object], why: str) -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.options([full_opt(**over)], out)
    assert out == []
    assert why in d.refused[F.LEVELONE_OPTIONS]
    # Equities are unaffected.
    d.equities([full_eq()], out)
    assert len(out) == 1


def test_option_without_greeks_yet_uses_nan_not_zero() -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.options([{"key": OCC, "2": 1.0, "3": 1.2, "4": 1.1, "8": 0, "38": T0}], out)
    assert len(out) == 1
    assert math.isnan(out[0][11]) and out[0][17] == 0


def test_non_occ_option_key_is_malformed() -> None:
    d = dec()
    out: list[tuple[object, ...]] = []
    d.options([full_opt("SPY_121925C600")], out)
    assert out == [] and d.counters.malformed == 1


def test_field_map_agrees_with_schwab_py() -> None:
    F.check_against_schwab_py()
    assert [f.value for f in F.equity_fields()] == [0, 1, 2, 3, 8, 9, 34, 35]


def test_field_map_check_catches_a_wrong_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(F.EQUITY_FIELD_NAMES, "BID_PRICE", "2")
    with pytest.raises(F.FieldMapError, match="BID_PRICE"):
        F.check_against_schwab_py()
