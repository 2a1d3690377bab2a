"""Duplicated stream entries (a retried publish) must not change any row.

Found by the stack-wide chaos harness (tests/chaos): when a connection to Redis is cut while
the streamer's XADD pipeline is in flight, the streamer re-sends the whole batch, so the
stream holds some ticks twice (at-least-once, by design). The engine took the replayed copy
of an older tick (lower cumulative volume) for a counter reset and added its whole
cumulative volume to the current second (and to VWAP and the 1-minute bar).
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from ind_ticksim import et_ms, session_ticks

from streamdesk.models import EquityTick
from streamdesk_indicators.engine import Engine
from streamdesk_indicators.sessions import SessionCalendar

pytestmark = pytest.mark.unit

DAY = date(2026, 3, 10)


def _rows(batches: list[list[EquityTick]], flush_between: bool) -> dict[str, Any]:
    eng = Engine(SessionCalendar(), 60)
    secs: dict[tuple[str, int], tuple[Any, ...]] = {}
    bars: dict[tuple[str, int], tuple[Any, ...]] = {}

    def take() -> None:
        out, _ = eng.take()
        for r in out.seconds:
            secs[(r[0], r[1])] = r[:-1]
        for b in out.bars:
            bars[(b[0], b[1])] = b

    for batch in batches:
        for t in batch:
            eng.on_equity(t)
        if flush_between:
            take()
    take()
    return {"seconds": secs, "bars": bars, "stale": eng.stale}


def test_a_batch_published_twice_gives_the_same_rows() -> None:
    start = et_ms(DAY, 9, 45)
    # no late ticks here (they are tested in test_ind_engine.py)
    ticks = session_ticks(
        ["SPY", "AAPL"], start, start + 120_000, seed=5, rate=6.0, late_fraction=0.0
    )
    rng = random.Random(3)
    cuts = sorted(rng.sample(range(1, len(ticks)), 20))
    batches = [ticks[a:b] for a, b in zip([0, *cuts], [*cuts, len(ticks)], strict=True)]
    # every other batch is sent again right after it (a publish retried after a cut)
    doubled: list[list[EquityTick]] = []
    for i, b in enumerate(batches):
        doubled.append(b)
        if i % 2:
            doubled.append(list(b))
    once = _rows(batches, flush_between=True)
    for flush in (True, False):
        twice = _rows(doubled, flush_between=flush)
        assert twice["seconds"] == once["seconds"]
        assert twice["bars"] == once["bars"]
        assert twice["stale"] > 0


def test_a_counter_reset_is_still_a_reset() -> None:
    start = et_ms(DAY, 10, 0)
    ticks = [
        EquityTick("SPY", start, 500.0, 499.9, 500.1, 1_000, 10),
        EquityTick("SPY", start + 400, 500.5, 500.4, 500.6, 1_200, 200),
        # the feed restarted: a newer tick with a lower cumulative volume
        EquityTick("SPY", start + 1_500, 501.0, 500.9, 501.1, 50, 50),
    ]
    rows = _rows([ticks], flush_between=False)
    secs = rows["seconds"]
    assert secs[("SPY", start)][3] == 200
    assert secs[("SPY", start + 1_000)][3] == 50
    assert rows["stale"] == 0
