"""Partition ownership: dead consumers' pending entries are claimed; instances hand over."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import numpy as np
import pytest
import redis.asyncio as aioredis
from conftest import SettingsFactory, drained, dump_tables, produce, run_service_until_drained
from ind_ticksim import et_ms, reference, session_ticks

from streamdesk import constants
from streamdesk_indicators.runner import IndicatorsService

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 10)
SYMS = ["SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN"]


def _check_against_reference(
    tables: dict[str, list[tuple[object, ...]]], ticks: list, syms: list[str]
) -> None:  # type: ignore[type-arg]
    for sym in syms:
        ref = reference(ticks, sym)
        eq = [r for r in tables["equity_data"] if r[0] == sym]
        ind = [r for r in tables["indicators"] if r[0] == sym]
        assert [int(r[1].timestamp() * 1000) for r in eq] == ref.sec.tolist()  # type: ignore[attr-defined]
        assert [r[3] for r in eq] == ref.volume.tolist()
        vwap = np.array([np.nan if r[3] is None else r[3] for r in ind], dtype=float)
        assert np.array_equal(np.isnan(vwap), np.isnan(ref.vwap))
        assert np.nanmax(np.abs(vwap - ref.vwap)) <= 1e-9


async def test_pending_entries_of_a_dead_consumer_are_claimed_in_order(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(stream_partitions=1)
    ticks = session_ticks(SYMS[:2], et_ms(DAY, 9, 28), et_ms(DAY, 9, 34), seed=8)
    await produce(settings.redis_url, ticks, 1, per_entry=20)
    stream = constants.tick_stream(0)
    r = aioredis.Redis.from_url(settings.redis_url)
    try:
        await r.xgroup_create(stream, constants.INDICATORS_GROUP, id="0")
        # a consumer that read the first entries and died before acknowledging them
        got = await r.xreadgroup(constants.INDICATORS_GROUP, "ghost", {stream: ">"}, count=15)
        assert len(got[0][1]) == 15
    finally:
        await r.aclose()
    service = await run_service_until_drained(settings)
    assert service.ticks == len(ticks)
    _check_against_reference(await dump_tables(settings.database_url), ticks, SYMS[:2])


async def test_two_instances_share_partitions_and_hand_over(
    make_settings: SettingsFactory,
) -> None:
    ticks = session_ticks(SYMS, et_ms(DAY, 9, 28), et_ms(DAY, 9, 40), seed=9, rate=2.0)
    half = len(ticks) // 2
    a_settings = make_settings(
        stream_partitions=4, instance_id="a", max_partitions=2, lease_ttl=1.0
    )
    b_settings = make_settings(stream_partitions=4, instance_id="b", lease_ttl=1.0)
    a, b = IndicatorsService(a_settings), IndicatorsService(b_settings)
    ta = asyncio.create_task(a.run())
    await asyncio.sleep(0.5)
    tb = asyncio.create_task(b.run())
    try:
        await asyncio.sleep(0.5)
        parts_a = {w.partition for w in a.workers.values()}
        parts_b = {w.partition for w in b.workers.values()}
        assert len(parts_a) == 2 and parts_a.isdisjoint(parts_b)
        assert parts_a | parts_b == {0, 1, 2, 3}
        await produce(a_settings.redis_url, ticks[:half], 4)
        deadline = time.monotonic() + 30
        while not await drained(a_settings.redis_url, 4):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert a.ticks > 0 and b.ticks > 0
        a.shutdown.request("test")  # graceful: flush, ack, release its leases
        assert await asyncio.wait_for(ta, 15) == 0
        deadline = time.monotonic() + 10
        while len(b.workers) != 4:  # b notices the free partitions and takes them over
            assert time.monotonic() < deadline, "b did not take over"
            await asyncio.sleep(0.1)
        await produce(a_settings.redis_url, ticks[half:], 4)
        deadline = time.monotonic() + 30
        while not await drained(a_settings.redis_url, 4):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # one more flush: provisional rows become final
    finally:
        b.shutdown.request("test")
        a.shutdown.request("test")
        await asyncio.wait({ta, tb}, timeout=15)
    assert tb.result() == 0
    assert a.ticks + b.ticks >= len(ticks)
    _check_against_reference(await dump_tables(a_settings.database_url), ticks, SYMS)
