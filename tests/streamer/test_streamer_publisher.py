"""Publisher against a real Redis: batching, partitions, latest quotes."""

from __future__ import annotations

import asyncio

import pytest

from streamdesk.codec import decode_ticks
from streamdesk.constants import (
    TICK_FIELD,
    last_quote_key,
    partition_for,
    tick_stream,
)
from streamdesk.redisutil import create_redis
from streamdesk_streamer.publisher import Publisher

pytestmark = pytest.mark.integration

T0 = 1_764_000_000_000
OCC = "SPY   251219C00600000"


def eq(sym: str, i: int) -> tuple[object, ...]:
    return (sym, T0 + i, 100.0 + i, 99.9 + i, 100.1 + i, 1000 + i, 10)


def opt(i: int) -> tuple[object, ...]:
    return (OCC, T0 + i, 3.0, 2.9, 3.1, i, 1, "SPY", "C", 600.0, "2025-12-19",
            0.5, 0.02, -0.05, 0.1, 0.01, 20.0, 100, 598.0)  # fmt: skip


async def read_all(redis: object, partitions: int) -> dict[str, list[tuple[object, ...]]]:
    got: dict[str, list[tuple[object, ...]]] = {}
    for p in range(partitions):
        for _id, fields in await redis.xrange(tick_stream(p)):  # type: ignore[attr-defined]
            eqs, opts = decode_ticks(fields[TICK_FIELD])
            for t in [*eqs, *opts]:
                assert partition_for(t.symbol, partitions) == p
                got.setdefault(t.symbol, []).append(t)
    return got


async def test_publish_batches_partitions_and_quotes(redis_url: str) -> None:
    redis = create_redis(redis_url)
    try:
        pub = Publisher(redis, partitions=4, max_ticks_per_entry=50)
        syms = ["AAPL", "MSFT", "SPY", "QQQ", "NVDA", "TSLA"]
        rows = [eq(s, i) for i in range(100) for s in syms] + [opt(i) for i in range(30)]
        await pub.publish(rows)
        got = await read_all(redis, 4)
        for s in syms:
            assert [t.ts for t in got[s]] == [T0 + i for i in range(100)]
        assert [t.volume for t in got[OCC]] == list(range(30))
        assert pub.ticks == len(rows)
        # One entry carries many ticks: far fewer entries than ticks.
        assert pub.entries < len(rows) / 20
        quote = await redis.hgetall(last_quote_key("AAPL"))
        assert float(quote[b"last"]) == 199.0
        assert int(quote[b"ts"]) == T0 + 99
        assert set(quote) == {b"last", b"bid", b"ask", b"ts"}
        assert await redis.exists(last_quote_key(OCC))
    finally:
        await redis.aclose()


async def test_publish_survives_a_script_cache_flush(redis_url: str) -> None:
    redis = create_redis(redis_url)
    try:
        pub = Publisher(redis, partitions=1, quote_interval=0)  # quotes with every publish
        await pub.publish([eq("AAPL", 0)])
        await redis.script_flush()  # what a Redis restart does to loaded scripts
        await pub.publish([eq("AAPL", 1)])
        got = await read_all(redis, 1)
        assert [t.ts for t in got["AAPL"]] == [T0, T0 + 1]  # once each, in order
        quote = await redis.hgetall(last_quote_key("AAPL"))
        assert int(quote[b"ts"]) == T0 + 1
    finally:
        await redis.aclose()


async def test_option_quote_without_last_omits_it(redis_url: str) -> None:
    redis = create_redis(redis_url)
    try:
        pub = Publisher(redis, partitions=1)
        row = list(opt(1))
        row[2] = float("nan")  # the contract has not traded yet
        await pub.publish([tuple(row)])
        quote = await redis.hgetall(last_quote_key(OCC))
        assert set(quote) == {b"bid", b"ask", b"ts"}
        assert float(quote[b"bid"]) == 2.9
    finally:
        await redis.aclose()


async def test_quotes_are_written_at_most_every_interval_with_the_newest_tick(
    redis_url: str,
) -> None:
    redis = create_redis(redis_url)

    async def quote_ts(sym: str) -> int | None:
        raw = await redis.hget(last_quote_key(sym), "ts")
        return None if raw is None else int(raw)

    try:
        pub = Publisher(redis, partitions=2, quote_interval=0.3)
        await pub.publish([eq("AAPL", 0)])
        assert await quote_ts("AAPL") == T0  # the first quote at once
        await pub.publish([eq("AAPL", 1), eq("MSFT", 1), eq("AAPL", 2)])
        assert await quote_ts("AAPL") == T0 and await quote_ts("MSFT") is None
        due = pub.quotes_due_in()
        assert due is not None and 0 < due <= 0.3
        assert await pub.flush_quotes() == 0  # not due yet
        await asyncio.sleep(due + 0.01)
        assert pub.quotes_due_in() == 0.0
        assert await pub.flush_quotes() == 2
        assert await quote_ts("AAPL") == T0 + 2 and await quote_ts("MSFT") == T0 + 1
        assert pub.quotes_due_in() is None and pub.quotes == 3
        await pub.publish([eq("MSFT", 3)])
        assert await pub.flush_quotes(force=True) == 1  # shutdown: no waiting
        assert await quote_ts("MSFT") == T0 + 3
        # Every tick reached the streams regardless of the quote throttle.
        got = await read_all(redis, 2)
        assert [t.ts for t in got["AAPL"]] == [T0, T0 + 1, T0 + 2]
    finally:
        await redis.aclose()
