"""Property-based bad input for the tick-stream entries the indicators read.

``decode_entry`` (indicators) and ``decode_ticks`` (shared codec) either decode an entry or
raise :class:`CodecError` - nothing else - and accept exactly the same entries. Whatever they
accept, the engine can process and take rows from without raising: an entry that decodes
but then crashes the engine would be retried forever and block its partition.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from fuzz_helpers import collect, fuzz_settings, wild_numbers
from hypothesis import given
from hypothesis import strategies as st

from streamdesk.codec import (
    MAX_COUNT,
    MAX_TS,
    MIN_TS,
    VERSION,
    CodecError,
    decode_entry,
    decode_ticks,
    encode_rows,
)
from streamdesk_indicators.engine import Engine
from streamdesk_indicators.sessions import SessionCalendar

T0 = 1_764_000_000_000
OCC = "SPY   251219C00600000"

msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=25,
)


#: Wild numbers that msgpack can hold (it has no integers beyond 64 bits).
mp_numbers = wild_numbers.filter(
    lambda v: type(v) is not int or -(2**63) <= v < 2**64
) | st.sampled_from([-1, 0, 2**63 - 1, 2**64 - 1, 253_402_300_800_000, -62_135_596_800_000])


def good_eq(i: int = 0) -> list[Any]:
    return ["AAPL", T0 + i, 100.0 + i / 100, 99.9, 100.1, 1_000 + i, 10]


def good_opt(i: int = 0) -> list[Any]:
    return [OCC, T0 + i, 1.1, 1.0, 1.2, 10, 1, "SPY", "C", 600.0, "2025-12-19",
            0.5, 0.01, -0.1, 0.2, 0.01, 0.2, 100, 600.5]  # fmt: skip


def packed(eq: list[Any], opt: list[Any], version: Any = VERSION) -> bytes:
    return msgpack.packb([version, eq, opt], use_bin_type=True)


def wild_row(base: list[Any]) -> st.SearchStrategy[list[Any]]:
    """``base`` with a few positions replaced by wild values (or truncated / extended)."""
    n = len(base)
    return st.one_of(
        # the event time alone: the field every later computation keys on
        st.one_of(st.integers(-(2**63), 2**64 - 1), mp_numbers).map(
            lambda ts: [base[0], ts, *base[2:]]
        ),
        st.dictionaries(st.integers(0, n - 1), mp_numbers, max_size=3).map(
            lambda o: [o.get(i, v) for i, v in enumerate(base)]
        ),
        st.integers(0, n + 2).map(lambda k: (base * 2)[:k]),
    )


def outcome(fn: Any, payload: bytes) -> Any:
    try:
        return fn(payload)
    except CodecError:
        return CodecError


def run_engine(eq_rows: list[Any], options: list[Any]) -> None:
    engine = Engine(SessionCalendar(), 60)
    engine.process_equities(eq_rows)
    for o in options:
        engine.on_option(o)
    engine.take()


@pytest.mark.unit
@fuzz_settings(600)
@given(st.one_of(st.binary(max_size=200), msgpack_values.map(msgpack.packb)))
def test_arbitrary_entries_decode_or_raise_codec_error(payload: bytes) -> None:
    mine = outcome(decode_entry, payload)
    shared = outcome(decode_ticks, payload)
    assert (mine is CodecError) == (shared is CodecError)
    if mine is not CodecError:
        run_engine(mine[0], mine[1])


@pytest.mark.unit
@fuzz_settings(800)
@given(
    st.lists(wild_row(good_eq()), max_size=5),
    st.lists(wild_row(good_opt()), max_size=3),
    st.sampled_from([VERSION, VERSION, 2, 0, "1", None]),
)
def test_corrupt_rows_are_rejected_or_dropped_never_crash(
    eq: list[Any], opt: list[Any], version: Any
) -> None:
    payload = packed([good_eq(0), *eq, good_eq(1)], opt, version)
    mine = outcome(decode_entry, payload)
    shared = outcome(decode_ticks, payload)
    assert (mine is CodecError) == (shared is CodecError)
    if mine is CodecError:
        return
    rows, options, dropped = mine
    assert len(rows) + len(options) + dropped == len(eq) + 2 + len(opt)
    for r in rows:  # what the engine gets is clean
        assert math.isfinite(r[2]) and 0 <= r[5] < MAX_COUNT and MIN_TS <= r[1] < MAX_TS
    for o in options:
        assert MIN_TS <= o.ts < MAX_TS
    run_engine(rows, options)


@pytest.mark.unit
@fuzz_settings(300)
@given(st.lists(st.integers(0, 1_000_000), min_size=1, max_size=400))
def test_well_formed_batches_round_trip(offsets: list[int]) -> None:
    eq = [tuple(good_eq(i)) for i in offsets]
    opt = [tuple(good_opt(i)) for i in offsets[:20]]
    rows, options, dropped = decode_entry(encode_rows(eq, opt))
    assert dropped == 0 and [tuple(r) for r in rows] == eq and len(options) == len(opt)


@pytest.mark.unit
@pytest.mark.parametrize("ts", [2**63 - 1, 253_402_300_800_000, 4_102_444_800_000, -1, -(2**63)])
def test_regression_absurd_event_times_are_dropped(ts: int) -> None:
    """Found by the fuzzer: a far-future tick crashed the engine (session calendar), and
    event time only moves forward, so every later tick of the symbol was swallowed."""
    bad = [good_eq(0)[0], ts, *good_eq(0)[2:]]
    opt_bad = [good_opt(0)[0], ts, *good_opt(0)[2:]]
    rows, options, dropped = decode_entry(packed([good_eq(0), bad, good_eq(1)], [opt_bad]))
    assert [r[1] for r in rows] == [T0, T0 + 1] and options == [] and dropped == 2
    run_engine(rows, options)


@pytest.mark.unit
@pytest.mark.parametrize("column", [5, 6, 17])
def test_regression_huge_option_counts_are_dropped(column: int) -> None:
    """Found by the fuzzer: a float volume of 1e300 became a 300-digit int, and the engine's
    checkpoint (msgpack) then failed at every flush: the partition was blocked."""
    bad = good_opt(0)
    bad[column] = 1e300
    eq_bad = [*good_eq(0)[:5], 1e300, 1]
    rows, options, dropped = decode_entry(packed([eq_bad, good_eq(1)], [bad, good_opt(2)]))
    assert [r[1] for r in rows] == [T0 + 1] and [o.ts for o in options] == [T0 + 2]
    assert dropped == 2
    run_engine(rows, options)


# --------------------------------------------------------------------------- real Redis + PG

DAY_T0 = 1_773_153_000_000  # 2026-03-10 14:30 UTC = 10:30 New York, a regular session
SYMBOLS = ("AAPL", "MSFT", "SPY", "QQQ")
TICK_FIELD = b"d"


def _dropped_entry(ts: int, vol: int) -> tuple[str, dict[bytes, bytes]]:
    return "dropped", {TICK_FIELD: packed([["AAPL", ts, 1.0, 1.0, 1.0, vol, 1]], [])}


garbage_entry = st.one_of(
    st.builds(lambda b: ("codec", {TICK_FIELD: b}), st.binary(max_size=64)),
    st.builds(lambda v: ("codec", {TICK_FIELD: msgpack.packb(v)}), msgpack_values),
    st.builds(
        lambda k, b: ("no_field", {k: b}),
        st.sampled_from([b"x", b"data", b"D", b"dd"]),
        st.binary(max_size=16),
    ),
    st.builds(  # decodes, but every row is dropped (absurd time or volume)
        _dropped_entry,
        st.sampled_from([2**63 - 1, 5_000_000_000_000, -5]),
        st.sampled_from([10, 2**41, -1]),
    ),
)
TICK_FIELD = b"d"


@pytest.mark.integration
async def test_garbage_interleaved_with_good_entries_on_real_redis(
    db_url: str, redis_url: str, tmp_path: Any
) -> None:
    """Every good tick is written; every garbage entry is counted and acknowledged; nothing
    stays pending, so no partition is blocked."""
    import asyncio
    import random
    import time

    import asyncpg
    import redis.asyncio as aioredis

    from streamdesk import constants
    from streamdesk.config import load_settings
    from streamdesk_indicators.config import Settings
    from streamdesk_indicators.runner import IndicatorsService

    assert constants.TICK_FIELD == TICK_FIELD
    partitions = 2
    settings = load_settings(
        Settings,
        database_url=db_url,
        redis_url=redis_url,
        stream_partitions=partitions,
        batch_interval=0.2,
        heartbeat_interval=0.2,
        instance_id="fuzz-indicators",
        shutdown_timeout=10.0,
        log_format="text",
    )
    garbage = collect(garbage_entry, 150)
    rng = random.Random(15)
    # good ticks: one per symbol and second for 40 s, 4 ticks per entry
    good: dict[int, list[dict[bytes, bytes]]] = {p: [] for p in range(partitions)}
    expected: set[tuple[str, int]] = set()
    for sym in SYMBOLS:
        p = constants.partition_for(sym, partitions)
        rows = [
            (sym, DAY_T0 + s * 1000 + 17, 100.0 + s / 10, 99.9, 100.2, 1_000 + 10 * s, 10)
            for s in range(40)
        ]
        expected |= {(sym, DAY_T0 + s * 1000) for s in range(40)}
        for i in range(0, len(rows), 4):
            good[p].append({TICK_FIELD: encode_rows(rows[i : i + 4], [])})
    streams: dict[int, list[tuple[str, dict[Any, Any]]]] = {
        p: [("good", e) for e in good[p]] for p in range(partitions)
    }
    for kind, fields in garbage:  # interleave: random positions, order of good ones kept
        p = rng.randrange(partitions)
        streams[p].insert(rng.randrange(len(streams[p]) + 1), (kind, fields))
    r = aioredis.Redis.from_url(redis_url)
    try:
        for p, entries in streams.items():
            for _kind, fields in entries:
                await r.xadd(constants.tick_stream(p), fields)
    finally:
        await r.aclose()

    service = IndicatorsService(settings)
    task = asyncio.create_task(service.run())
    r = aioredis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert not task.done(), f"service stopped: {task.exception() if task.done() else ''}"
            pending = 0
            for p in range(partitions):
                groups = await r.xinfo_groups(constants.tick_stream(p))
                g = [g for g in groups if g["name"] == constants.INDICATORS_GROUP.encode()]
                pending += 1 if not g else g[0]["pending"] + (g[0]["lag"] or 0)
            if pending == 0:
                break
            assert time.monotonic() < deadline, "garbage blocked a partition (entries pending)"
            await asyncio.sleep(0.1)
        service.shutdown.request("test")
        assert await asyncio.wait_for(task, 15.0) == 0
    finally:
        await r.aclose()
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=5)

    kinds = [k for k, _ in garbage]
    assert service.malformed == kinds.count("codec") + kinds.count("no_field")
    assert service.bad_ticks == kinds.count("dropped")
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch('SELECT ticker, "timestamp" FROM equity_data')
        got = {(row["ticker"], int(row["timestamp"].timestamp() * 1000)) for row in rows}
        ind = await conn.fetchval("SELECT count(*) FROM indicators")
    finally:
        await conn.close()
    assert got == expected
    assert ind == len(expected)
