"""Broadcast payloads: merging flushes per degrade level, the size limit, the reference sizes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamdesk.realtime_budget import FREE_PLAN, GREEK_FIELDS, LADDER, level
from streamdesk_indicators.broadcast_payload import Shaper, encode, fit
from streamdesk_indicators.reference_universe import (
    reference_batch,
    reference_message,
    reference_sizes,
)

pytestmark = pytest.mark.unit


def _msg(seq: int, ts: int, price: float, options: int = 2) -> dict[str, Any]:
    return {
        "v": 1,
        "seq": seq,
        "committed_at": ts + 500,
        "rows": {"equity": 2, "options": options, "bars": 1},
        "from_ts": ts,
        "to_ts": ts,
        "equity": [{"ticker": "SPY", "ts": ts, "price": price}],
        "options": [
            {"ticker": f"SPY C{i}", "ts": ts, "last": price / 100, "delta": 0.5, "iv": 20.1}
            for i in range(options)
        ],
        "options_truncated": False,
    }


def test_level_0_is_the_committed_message_plus_three_fields() -> None:
    msg = json.loads(reference_message())
    shaper = Shaper(500)
    shaper.add(msg)
    assert shaper.due(level(0))
    payload = shaper.take(level(0))
    assert payload.pop("degrade") == 0
    assert payload.pop("flushes") == 1
    assert payload.pop("options_included") is True
    assert payload == msg
    assert not shaper.due(level(0))


def test_higher_level_merges_flushes_and_holds_options() -> None:
    step = level(5)  # every 2nd flush, options every 30 flushes, no greeks
    shaper = Shaper(500)
    shaper.add(_msg(1, 1000, 500.0))
    assert not shaper.due(step)
    shaper.add(_msg(2, 2000, 501.0))
    assert shaper.due(step)
    p = shaper.take(step)
    assert p["degrade"] == 5 and p["flushes"] == 2 and p["seq"] == 2
    assert p["equity"] == [{"ticker": "SPY", "ts": 2000, "price": 501.0}]  # the latest
    assert p["rows"] == {"equity": 4, "options": 4, "bars": 2}  # summed
    assert (p["from_ts"], p["to_ts"]) == (1000, 2000)
    assert p["options"] == [] and p["options_included"] is False
    for seq in range(3, 31):
        shaper.add(_msg(seq, seq * 1000, 500.0 + seq))
        if shaper.due(step):
            p = shaper.take(step)
    assert p["seq"] == 30 and p["options_included"] is True
    assert [o["last"] for o in p["options"]] == [5.3, 5.3]  # latest of flush 30
    assert all(not set(GREEK_FIELDS) & set(o) for o in p["options"])


def test_conflated_flushes_count_and_seq_restart() -> None:
    shaper = Shaper(500)
    shaper.add(_msg(10, 1000, 1.0))
    shaper.add(_msg(14, 2000, 2.0))  # 11..13 were replaced in the slot
    assert shaper.take(level(7))["flushes"] == 5
    shaper.add(_msg(1, 3000, 3.0))  # the writer restarted
    assert shaper.take(level(0))["flushes"] == 1


def test_restore_keeps_newer_rows() -> None:
    shaper = Shaper(500)
    shaper.add(_msg(1, 1000, 1.0))
    failed = shaper.take(level(0))
    shaper.add(_msg(2, 2000, 2.0, options=1))
    shaper.restore(failed)
    p = shaper.take(level(0))
    assert p["equity"] == [{"ticker": "SPY", "ts": 2000, "price": 2.0}]
    assert {o["ticker"]: o["ts"] for o in p["options"]} == {"SPY C0": 2000, "SPY C1": 1000}
    assert p["flushes"] == 2 and p["rows"]["equity"] == 4


def test_options_are_capped_like_the_committed_message() -> None:
    shaper = Shaper(3)
    shaper.add(_msg(1, 1000, 1.0, options=2))
    shaper.add(_msg(2, 2000, 1.0, options=5))
    p = shaper.take(level(0))
    assert len(p["options"]) == 3 and p["options_truncated"] is True


def test_fit_trims_options_then_equity_to_the_limit() -> None:
    big = json.loads(reference_message(5, 3000, max_options=5000))
    shaper = Shaper(5000)
    shaper.add(big)
    payload = shaper.take(level(0))
    assert len(encode(payload)) > FREE_PLAN.payload_bytes  # 3,000 rows ~ 410 KB
    data, trimmed = fit(payload, FREE_PLAN.payload_bytes)
    assert len(data) <= FREE_PLAN.payload_bytes
    assert trimmed > 0 and len(payload["options"]) == 3000 - trimmed
    assert json.loads(data)["options_truncated"] is True
    untouched = shaper.take(level(0))
    assert fit(untouched, FREE_PLAN.payload_bytes) == (encode(untouched), 0)
    small = _msg(1, 1000, 1.0)
    small["equity"] = small["equity"] * 50
    data, trimmed = fit(small, 2000)
    assert len(data) <= 2000 and small["options"] == [] and small["equity_truncated"] is True
    with pytest.raises(ValueError):
        fit(_msg(1, 1000, 1.0, options=0), 50)


def test_reference_universe_is_the_real_committed_message() -> None:
    batch = reference_batch()
    assert len(batch.seconds) == 5 and len(batch.options) == 200
    msg = json.loads(reference_message())
    assert msg["v"] == 1 and len(msg["equity"]) == 5 and len(msg["options"]) == 200
    # the indicators are defined, as in a running session (ten minutes of bars)
    assert all(e["sma9"] and e["vwap"] and e["ema9"] for e in msg["equity"])
    sizes = reference_sizes()
    assert set(sizes) == {s.number for s in LADDER}
    full, no_greeks = sizes[0], sizes[1]
    assert full.with_options > no_greeks.with_options > 20 * no_greeks.equity_only
    assert full.equity_only == no_greeks.equity_only  # greeks live only in option rows
    # measured, not guessed: the size of the encoded payload itself
    shaper = Shaper(500)
    shaper.add(msg)
    assert len(encode(shaper.take(level(0)))) == full.with_options
