"""The service against real Redis streams and a real PostgreSQL."""

from __future__ import annotations

import heapq
import json
from datetime import UTC, date, datetime

import asyncpg
import numpy as np
import pytest
import redis.asyncio as aioredis
from conftest import SettingsFactory, dump_tables, produce, run_service_until_drained
from ind_ticksim import et_ms, option_ticks, reference, session_ticks

from streamdesk import constants
from streamdesk.codec import encode_ticks
from streamdesk.models import EquityTick

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 10)
SYMS = ["SPY", "QQQ", "AAPL"]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


async def test_session_through_redis_and_postgres_matches_references(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    ticks = session_ticks(SYMS, et_ms(DAY, 9, 20), et_ms(DAY, 9, 50), seed=5, rate=3.0)
    opts = option_ticks("SPY", ticks[0].ts, ticks[-1].ts)
    # heapq.merge keeps each input's own (arrival) order, including the late ticks
    merged = list(heapq.merge(ticks, opts, key=lambda t: t.ts))
    entries = await produce(settings.redis_url, merged, settings.stream_partitions)
    service = await run_service_until_drained(settings)
    assert service.ticks == len(merged)
    assert service.malformed == 0

    tables = await dump_tables(settings.database_url)
    for sym in SYMS:
        ref = reference(ticks, sym)
        eq = [r for r in tables["equity_data"] if r[0] == sym]
        ind = [r for r in tables["indicators"] if r[0] == sym]
        assert [_ms(r[1]) for r in eq] == ref.sec.tolist()
        assert [_ms(r[1]) for r in ind] == ref.sec.tolist()
        assert [r[2] for r in eq] == ref.price.tolist()
        assert [r[3] for r in eq] == ref.volume.tolist()
        sma = np.array([np.nan if r[2] is None else r[2] for r in ind])
        vwap = np.array([np.nan if r[3] is None else r[3] for r in ind])
        assert np.array_equal(np.isnan(sma), np.isnan(ref.sma9))
        assert np.nanmax(np.abs(sma - ref.sma9)) <= 1e-9
        assert np.array_equal(np.isnan(vwap), np.isnan(ref.vwap))
        assert np.nanmax(np.abs(vwap - ref.vwap)) <= 1e-9
        bars = [r for r in tables["bars_1m"] if r[0] == sym]
        assert [_ms(b[1]) for b in bars] == sorted({s - s % 60_000 for s in ref.sec.tolist()})
        assert sum(b[6] for b in bars) == sum(ref.volume.tolist())
    assert len(tables["option_prices"]) > 100
    assert {r[3] for r in tables["option_prices"]} == {"CALL", "PUT"}

    conn = await asyncpg.connect(settings.database_url)
    r = aioredis.Redis.from_url(settings.redis_url)
    try:
        offsets = {
            row[0]: row[1]
            for row in await conn.fetch("SELECT stream, last_id FROM indicator_offsets")
        }
        for p in range(settings.stream_partitions):
            stream = constants.tick_stream(p)
            last = await r.xrevrange(stream, count=1)
            assert offsets[stream] == last[0][0].decode()
        msgs = await r.xrange(constants.COMMITTED_STREAM)
        assert len(msgs) == service.commits
        body = json.loads(msgs[-1][1][b"d"])
        assert body["v"] == 1 and body["seq"] == service.commits
        total = sum(json.loads(m[1][b"d"])["rows"]["equity"] for m in msgs)
        # every committed second row is counted once (provisional rows are rewritten later)
        assert total >= len(tables["equity_data"])
        assert {e["ticker"] for e in json.loads(msgs[0][1][b"d"])["equity"]} <= set(SYMS)
        assert entries == sum(
            [await r.xlen(constants.tick_stream(p)) for p in range(settings.stream_partitions)]
        )
    finally:
        await conn.close()
        await r.aclose()


async def test_malformed_entries_are_acked_as_poison_and_do_not_block(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(stream_partitions=1)
    stream = constants.tick_stream(0)
    base = et_ms(DAY, 10, 0)
    r = aioredis.Redis.from_url(settings.redis_url)
    try:
        await r.xadd(
            stream,
            {
                constants.TICK_FIELD: encode_ticks(
                    [EquityTick("SPY", base, 500.0, 499.9, 500.1, 1000, 100)]
                )
            },
        )
        await r.xadd(stream, {constants.TICK_FIELD: b"\xc1garbage"})
        await r.xadd(stream, {b"other": b"x"})
        await r.xadd(
            stream,
            {
                constants.TICK_FIELD: encode_ticks(
                    [EquityTick("SPY", base + 1000, 501.0, 500.9, 501.1, 1300, 300)]
                )
            },
        )
    finally:
        await r.aclose()
    service = await run_service_until_drained(settings)
    assert service.malformed == 2
    tables = await dump_tables(settings.database_url)
    assert [(r[2], r[3]) for r in tables["equity_data"]] == [(500.0, 0), (501.0, 300)]
    assert tables["equity_data"][0][1] == datetime.fromtimestamp(base / 1000, UTC)
