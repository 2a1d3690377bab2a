"""Option universe selection and re-centring."""

from __future__ import annotations

import pytest

from streamdesk.models import format_occ
from streamdesk_streamer.universe import Chain, Universe, parse_chain

pytestmark = pytest.mark.unit


def chain_body(spot: float, strikes: list[float], exps: list[str]) -> dict[str, object]:
    from datetime import date

    def side(cp: str) -> dict[str, object]:
        return {
            f"{e}:{i + 1}": {
                f"{k:.1f}": [{"symbol": format_occ("SPY", date.fromisoformat(e), cp, k)}]
                for k in strikes
            }
            for i, e in enumerate(exps)
        }

    return {"symbol": "SPY", "underlyingPrice": spot, "callExpDateMap": side("C"),
            "putExpDateMap": side("P")}  # fmt: skip


def test_picks_next_expirations_and_strikes_nearest_the_money() -> None:
    body = chain_body(
        503.0,
        [490.0, 495.0, 500.0, 505.0, 510.0, 515.0],
        ["2026-12-18", "2026-11-27", "2026-12-04"],
    )
    c = parse_chain("SPY", body, strikes=2, expirations=2)
    assert c.expirations == ["2026-11-27", "2026-12-04"]
    assert c.strikes == [500.0, 505.0]
    assert len(c.symbols) == 2 * 2 * 2
    assert "SPY   261127C00505000" in c.symbols and "SPY   261204P00500000" in c.symbols


def test_recenter_when_spot_leaves_inner_half() -> None:
    u = Universe({"SPY": Chain("SPY", [], [490.0, 495.0, 500.0, 505.0, 510.0, 515.0], [])})
    assert not u.needs_recenter("SPY", 503.0)
    assert not u.needs_recenter("SPY", None)
    assert u.needs_recenter("SPY", 511.0)
    assert u.needs_recenter("SPY", 480.0)
    assert u.needs_recenter("QQQ", 400.0)  # never resolved


def test_bad_chain_shapes_raise() -> None:
    with pytest.raises(ValueError):
        parse_chain("SPY", [], 2, 2)
    with pytest.raises(ValueError):
        parse_chain("SPY", {"callExpDateMap": []}, 2, 2)
