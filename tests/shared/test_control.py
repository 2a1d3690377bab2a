"""streamdesk.control and control_watch on a real Postgres and Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import redis.asyncio as aioredis

from streamdesk import control
from streamdesk.clock import ManualClock
from streamdesk.control import UniverseSpec
from streamdesk.control_watch import ControlWatcher

T0 = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kind", "raw", "want"),
    [("equity", " aapl ", "AAPL"), ("equity", "BRK.B", "BRK.B"), ("option", "$spx", "$SPX")],
)
def test_normalize_accepts(kind: str, raw: str, want: str) -> None:
    assert control.normalize_symbol(kind, raw) == want


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("equity", ""),
        ("equity", "$SPX"),
        ("equity", "A B"),
        ("equity", "TOOLONGTICKER1"),
        ("option", "SPY;DROP"),
        ("equity", "ÄPL"),
    ],
)
def test_normalize_refuses(kind: str, raw: str) -> None:
    with pytest.raises(control.InvalidSymbolError, match="invalid"):
        control.normalize_symbol(kind, raw)


@pytest.mark.unit
def test_unknown_kind_and_service() -> None:
    with pytest.raises(control.ControlError, match="kind must be one of"):
        control.normalize_symbol("future", "ES")
    with pytest.raises(control.UnknownServiceError, match="pausable: streamer, trade-executor"):
        control.check_service("indicators")


@contextlib.asynccontextmanager
async def pool_of(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=3)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


@pytest.mark.integration
async def test_universe_seeded_once_then_the_table_is_the_truth(db_url: str) -> None:
    defaults = UniverseSpec.of(["spy", "QQQ", "SPY"], ["SPY"])
    assert defaults == UniverseSpec(("QQQ", "SPY"), ("SPY",))
    async with pool_of(db_url) as pool:
        assert await control.read_universe(pool) == UniverseSpec((), ())  # never seeded
        assert await control.read_universe(pool, defaults=defaults) == defaults
        u = await control.add_symbol(pool, "equity", "aapl")
        assert u.equities == ("AAPL", "QQQ", "SPY")
        assert await control.add_symbol(pool, "equity", "AAPL") == u  # idempotent
        for sym in u.equities:
            u = await control.remove_symbol(pool, "equity", sym)
        u = await control.remove_symbol(pool, "option", "SPY")
        # Empty now, and other defaults do not re-seed it.
        other = UniverseSpec.of(["NVDA"], ["QQQ"])
        assert await control.read_universe(pool, defaults=other) == UniverseSpec((), ())
        with pytest.raises(control.SymbolNotFoundError, match="MSFT is not in the equity"):
            await control.remove_symbol(pool, "equity", "MSFT")
        with pytest.raises(control.InvalidSymbolError):
            await control.add_symbol(pool, "equity", "NOT A TICKER")


@pytest.mark.integration
async def test_universe_bound(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "MAX_OPTION_UNDERLYINGS", 2)
    async with pool_of(db_url) as pool:
        await control.add_symbol(pool, "option", "SPY")
        await control.add_symbol(pool, "option", "QQQ")
        await control.add_symbol(pool, "option", "QQQ")  # present: not refused
        with pytest.raises(control.UniverseFullError, match="already holds 2 option"):
            await control.add_symbol(pool, "option", "IWM")


@pytest.mark.integration
async def test_kill_switch_and_pause_flags(db_url: str) -> None:
    clock = ManualClock(T0)
    async with pool_of(db_url) as pool:
        ks = await control.read_kill_switch(pool)
        assert ks.engaged is False and ks.reason is None
        v0 = await control.read_version(pool)
        ks = await control.set_kill_switch(pool, True, "  runaway strategy ", clock=clock)
        assert (ks.engaged, ks.reason, ks.changed_at) == (True, "runaway strategy", T0)
        clock.advance(60)
        ks = await control.set_kill_switch(pool, True, "still", clock=clock)
        assert ks.changed_at == T0 and ks.reason == "still"  # no change of state: same time
        ks = await control.set_kill_switch(pool, False, clock=clock)
        assert (
            ks.engaged is False
            and ks.reason is None
            and ks.changed_at.timestamp() == (T0.timestamp() + 60)
        )
        assert await control.read_kill_switch(pool) == ks
        assert await control.read_version(pool) == v0 + 3

        assert await control.is_paused(pool, "streamer") is False
        await control.set_paused(pool, "streamer", True)
        assert await control.is_paused(pool, "streamer") is True
        assert await control.read_paused(pool) == {"streamer": True, "trade-executor": False}
        with pytest.raises(control.UnknownServiceError):
            await control.set_paused(pool, "gateway", True)
        snap = await control.read_snapshot(pool)
        assert snap.paused == frozenset({"streamer"}) and snap.kill_switch == ks


@pytest.mark.integration
async def test_watcher_hears_changes_within_a_second(db_url: str, redis_url: str) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    async with pool_of(db_url) as pool:
        # A long poll: only the pub/sub message can make it this fast.
        watcher = ControlWatcher(
            pool, redis, defaults=UniverseSpec.of(["SPY"], []), poll_interval=30
        )
        task = asyncio.create_task(watcher.run())
        try:
            async with asyncio.timeout(5):
                while watcher.snapshot is None:
                    await asyncio.sleep(0.02)
            assert watcher.snapshot.universe.equities == ("SPY",)
            await asyncio.sleep(0.2)  # subscribed
            watcher.changed.clear()
            await control.add_symbol(pool, "equity", "NVDA", redis=redis)
            async with asyncio.timeout(1.0):
                await watcher.changed.wait()
            assert watcher.snapshot.universe.equities == ("NVDA", "SPY")
            watcher.changed.clear()
            await control.set_kill_switch(pool, True, redis=redis)
            async with asyncio.timeout(1.0):
                await watcher.changed.wait()
            assert watcher.snapshot.kill_switch.engaged
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await redis.aclose()


@pytest.mark.integration
async def test_watcher_polls_without_redis(db_url: str) -> None:
    async with pool_of(db_url) as pool:
        watcher = ControlWatcher(pool, None, poll_interval=0.1)
        task = asyncio.create_task(watcher.run())
        try:
            await control.set_paused(pool, "streamer", True)  # no announcement
            async with asyncio.timeout(3):
                while watcher.snapshot is None or "streamer" not in watcher.snapshot.paused:
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
