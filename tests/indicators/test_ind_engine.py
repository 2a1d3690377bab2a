"""Engine vs independent NumPy references, flush independence and exact state round-trips."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import numpy as np
import pytest
from ind_ticksim import et_ms, option_ticks, reference, session_ticks

from streamdesk.models import EquityTick, OptionTick
from streamdesk_indicators.engine import Engine
from streamdesk_indicators.indicators import columns
from streamdesk_indicators.sessions import SessionCalendar

pytestmark = pytest.mark.unit

DAY = date(2026, 3, 10)  # a Tuesday, just after the US DST switch
SYMS = ["SPY", "AAPL"]

Table = dict[tuple[str, int], tuple[Any, ...]]


def _apply(rows: list[tuple[Any, ...]], table: Table) -> None:
    """What INSERT .. ON CONFLICT DO NOTHING / DO UPDATE (flag ``upd``) do with the rows."""
    for r in rows:
        key = (r[0], r[1])
        if not r[-1]:
            assert key not in table, f"DO NOTHING row would conflict: {key}"
        table[key] = r[:-1]


def _run(
    ticks: list[EquityTick | OptionTick],
    flush_every: list[int] | None,
    restore_every: int = 0,
    seed: int = 1,
) -> tuple[Table, Table, Table]:
    rng = random.Random(seed)
    cal = SessionCalendar()
    eng = Engine(cal, 60)
    secs: Table = {}
    opts: Table = {}
    bars: Table = {}
    states: dict[str, tuple[str, bytes]] = {}

    def take() -> None:
        nonlocal eng
        out, st = eng.take()
        _apply(out.seconds, secs)
        _apply(out.options, opts)
        for b in out.bars:
            bars[(b[0], b[1])] = b
        for sym, kind, blob in st:
            states[sym] = (kind, blob)

    next_flush = rng.choice(flush_every) if flush_every else None
    for i, t in enumerate(ticks):
        if isinstance(t, EquityTick):
            eng.on_equity(t)
        else:
            eng.on_option(t)
        if next_flush is not None and flush_every:
            next_flush -= 1
            if next_flush <= 0:
                take()
                next_flush = rng.choice(flush_every)
                if restore_every and i % restore_every < 50:
                    # a restart: a new engine from the committed states only
                    eng = Engine(cal, 60)
                    for sym, (kind, blob) in states.items():
                        eng.load_state(sym, kind, blob)
    take()
    return secs, opts, bars


@pytest.fixture(scope="module")
def full_session() -> list[EquityTick]:
    return session_ticks(SYMS, et_ms(DAY, 9, 0), et_ms(DAY, 16, 10), seed=42, rate=1.5)


def test_full_session_matches_numpy_references(full_session: list[EquityTick]) -> None:
    secs, _, _ = _run(list(full_session), flush_every=[1, 7, 50, 400])
    ind = columns()
    i_sma, i_vwap = 7 + ind.index("sma9"), 7 + ind.index("vwap")
    for sym in SYMS:
        ref = reference(full_session, sym)
        rows = sorted((k[1], v) for k, v in secs.items() if k[0] == sym)
        assert [r[0] for r in rows] == ref.sec.tolist()
        assert [r[1][2] for r in rows] == ref.price.tolist()
        assert [r[1][3] for r in rows] == ref.volume.tolist()
        sma = np.array([np.nan if r[1][i_sma] is None else r[1][i_sma] for r in rows])
        vwap = np.array([np.nan if r[1][i_vwap] is None else r[1][i_vwap] for r in rows])
        assert np.array_equal(np.isnan(sma), np.isnan(ref.sma9))
        assert np.nanmax(np.abs(sma - ref.sma9)) <= 1e-9
        assert np.array_equal(np.isnan(vwap), np.isnan(ref.vwap))
        assert np.nanmax(np.abs(vwap - ref.vwap)) <= 1e-9
        # the open: no VWAP before 09:30, one right after it
        pre = ref.sec < et_ms(DAY, 9, 30)
        assert pre.any() and np.isnan(vwap[pre]).all()
        assert not np.isnan(vwap[~pre]).any()
        # after the close the VWAP stays frozen at the closing value
        post = ref.sec >= et_ms(DAY, 16, 0)
        assert post.any() and np.unique(vwap[post]).size == 1
        # conflated volume adds up to the raw cumulative volume traded in the run
        ticks = [t for t in full_session if t.symbol == sym]
        assert sum(r[1][3] for r in rows) == ticks[-1].volume - ticks[0].volume


def test_output_does_not_depend_on_flush_points(full_session: list[EquityTick]) -> None:
    ticks = list(full_session[:20_000])
    once = _run(ticks, flush_every=None)
    often = _run(ticks, flush_every=[1, 2, 3, 500], seed=3)
    assert once == often


def test_restart_from_checkpointed_state_is_bit_identical(
    full_session: list[EquityTick],
) -> None:
    ticks: list[EquityTick | OptionTick] = list(full_session[:15_000])
    start, end = ticks[0].ts, ticks[-1].ts
    ticks += option_ticks("SPY", start, end)
    ticks.sort(key=lambda t: t.ts)
    plain = _run(ticks, flush_every=[5, 40])
    restarted = _run(ticks, flush_every=[5, 40], restore_every=300)
    assert plain == restarted
    assert len(plain[1]) > 100  # options were exercised


def test_vwap_resets_each_day_and_volume_counter_reset() -> None:
    d1, d2 = date(2026, 3, 10), date(2026, 3, 11)
    t1 = session_ticks(["SPY"], et_ms(d1, 15, 50), et_ms(d1, 16, 5), seed=1)
    last = t1[-1]
    t2 = session_ticks(
        ["SPY"], et_ms(d2, 9, 25), et_ms(d2, 9, 45), seed=2, start_price={"SPY": last.last}
    )  # counter restarts at 0 on day 2
    ticks = t1 + t2
    secs, _, _ = _run(list(ticks), flush_every=[3, 30])
    ref = reference(ticks, "SPY")
    rows = sorted((k[1], v) for k, v in secs.items())
    assert [r[1][3] for r in rows] == ref.volume.tolist()
    first_day2 = next(i for i, r in enumerate(rows) if r[0] >= t2[0].ts - t2[0].ts % 1000)
    # the first tick of day 2 (counter went down) counts its whole cumulative volume
    assert rows[first_day2][1][3] == ref.volume[first_day2]
    i_vwap = 7 + columns().index("vwap")
    assert rows[first_day2][1][i_vwap] is None  # day 2 before its open: reset, undefined
    vwap = np.array([np.nan if r[1][i_vwap] is None else r[1][i_vwap] for r in rows])
    assert np.nanmax(np.abs(vwap - ref.vwap)) <= 1e-9


def test_option_rows_only_for_seconds_with_a_change() -> None:
    base = et_ms(DAY, 10, 0)
    sym = "SPY   261218C00500000"

    def opt(ts: int, last: float) -> OptionTick:
        return OptionTick(
            sym,
            ts,
            last,
            last - 0.05,
            last + 0.05,
            10,
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

    ticks: list[EquityTick | OptionTick] = [
        opt(base, 1.0),
        opt(base + 300, 1.1),  # second 0: changed
        opt(base + 1200, 1.1),  # second 1: same values -> no row
        opt(base + 2100, 1.2),
        opt(base + 2500, 1.1),  # second 2: changed (back)
    ]
    _, opts, _ = _run(ticks, flush_every=[1])
    assert sorted(k[1] - base for k in opts) == [0, 2000]
    assert opts[(sym, base)][6] == 1.1 and opts[(sym, base + 2000)][6] == 1.1
    assert opts[(sym, base)][3] == "CALL"


def test_bars_1m_ohlcv() -> None:
    base = et_ms(DAY, 10, 0)
    prices = [10.0, 12.0, 9.0, 11.0, 20.0]
    ticks: list[EquityTick | OptionTick] = [
        EquityTick("X", base + i * 15_000, p, p, p, 100 * (i + 1), 100)
        for i, p in enumerate(prices)
    ]
    _, _, bars = _run(ticks, flush_every=[1, 2])
    b0 = bars[("X", base)]
    # first tick has no baseline volume; then 100 shares per tick
    assert b0[2:] == (10.0, 12.0, 9.0, 11.0, 300, (12.0 * 100 + 9.0 * 100 + 11.0 * 100) / 300)
    assert bars[("X", base + 60_000)][2:7] == (20.0, 20.0, 20.0, 20.0, 100)


def test_untraded_option_nan_fields_become_null_and_do_not_count_as_changes() -> None:
    base = et_ms(DAY, 10, 0)
    sym = "SPY   261218P00400000"
    nan = float("nan")

    def opt(ts: int, bid: float) -> OptionTick:
        return OptionTick(
            sym,
            ts,
            nan,
            bid,
            bid + 0.1,
            0,
            0,
            "SPY",
            "P",
            400.0,
            "2026-12-18",
            nan,
            nan,
            nan,
            nan,
            nan,
            nan,
            0,
            nan,
        )

    ticks: list[EquityTick | OptionTick] = [
        opt(base, 1.0),
        opt(base + 1000, 1.0),
        opt(base + 2000, 1.2),
    ]
    _, opts, _ = _run(ticks, flush_every=[1])
    assert sorted(k[1] - base for k in opts) == [0, 2000]
    row = opts[(sym, base)]
    assert row[6] is None and row[9] is None and row[7] == 1.0


def test_committed_message_is_valid_json_with_non_finite_values() -> None:
    import json

    from streamdesk_indicators.committed import committed_message
    from streamdesk_indicators.writer import Batch

    nan = float("nan")
    batch = Batch(seconds=[("SPY", 1000, 1.0, 5, nan, 1.1, 10, None, 1.0, 1.0, False)])
    msg = json.loads(committed_message(batch, 1, 2000, 10))
    assert msg["equity"] == [
        {
            "ticker": "SPY",
            "ts": 1000,
            "price": 1.0,
            "volume": 5,
            "bid": None,
            "ask": 1.1,
            "sma9": None,
            "vwap": 1.0,
            "ema9": 1.0,
        }
    ]
    assert msg["rows"] == {"equity": 1, "options": 0, "bars": 0}
