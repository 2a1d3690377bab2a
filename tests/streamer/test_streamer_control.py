"""The universe changed at run time and pause/resume, against market-sim through schwab-py.

The streamer keeps running (same task, same process) and keeps its websocket for universe
changes; what the simulator sent is read from its own log (/admin/sent) and its connections'
subscriptions from /admin/state.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from test_streamer_sim import EQ, OPT, make_settings, read_ticks, run_streamer

from streamdesk import control
from streamdesk.redisutil import create_redis

pytestmark = pytest.mark.integration
__all__ = ["run_streamer"]  # the fixture, imported so this module can use it


def sent_count(sim: Any, symbol: str, service: str = EQ) -> int:
    return int(sim.sent(symbol, service)["count"])


def subscriptions(sim: Any) -> dict[str, int]:
    conns = [c for c in sim.state()["connections"] if c["logged_in"]]
    assert len(conns) <= 1, conns
    return dict(conns[0]["subscriptions"]) if conns else {}


async def test_universe_change_at_run_time_without_restart(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any
) -> None:
    # A long poll: the change must arrive through the Redis announcement.
    settings = make_settings(
        market_sim,
        tmp_path,
        db_url,
        redis_url,
        tickers="AAPL,SPY",
        option_underlyings="",
        control_poll_interval=60,
    )
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(lambda: s.state.name == "streaming", 15, "streaming")
    conn = await asyncpg.connect(db_url)
    redis = create_redis(redis_url)
    try:
        # Seeded from the configuration on first start.
        assert await control.read_universe(conn) == control.UniverseSpec(("AAPL", "SPY"), ())
        assert sent_count(market_sim, "NVDA") == 0
        await control.add_symbol(conn, "equity", "NVDA", redis=redis)
        took = await r.wait_for(lambda: "NVDA" in s.subscriptions.tickers, 5, "NVDA subscribed")
        assert took < 3
        await r.wait_for(lambda: sent_count(market_sim, "NVDA") > 0, 5, "sim sends NVDA")
        await r.wait_for(lambda: s.publisher.ticks > 0, 5, "published")
        await asyncio.sleep(1.0)
        assert (await read_ticks(redis_url)).get("NVDA"), "no NVDA ticks in Redis"
        assert subscriptions(market_sim)[EQ] == 3

        # Remove: UNSUBS on the same socket; the simulator stops sending it.
        await control.remove_symbol(conn, "equity", "AAPL", redis=redis)
        await r.wait_for(lambda: "AAPL" not in s.subscriptions.tickers, 5, "AAPL unsubscribed")
        await r.wait_for(lambda: subscriptions(market_sim)[EQ] == 2, 5, "sim unsubscribed")
        stopped_at = sent_count(market_sim, "AAPL")
        await asyncio.sleep(1.5)
        assert sent_count(market_sim, "AAPL") == stopped_at
        assert sent_count(market_sim, "NVDA") > 0

        # An option underlying: its chain is resolved and its contracts streamed.
        await control.add_symbol(conn, "option", "SPY", redis=redis)
        await r.wait_for(lambda: len(s.subscriptions.options) > 0, 10, "SPY options")
        await r.wait_for(lambda: subscriptions(market_sim).get(OPT, 0) > 0, 5, "sim options")
        await control.remove_symbol(conn, "option", "SPY", redis=redis)
        await r.wait_for(lambda: not s.subscriptions.options, 5, "options dropped")

        assert s.supervisor.reconnects == 0 and not r.task.done() and s.state.name == "streaming"
        assert s.subscriptions.universe_changes == 4
    finally:
        await conn.close()
        await redis.aclose()


async def test_pause_and_resume_without_restart(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any
) -> None:
    settings = make_settings(
        market_sim, tmp_path, db_url, redis_url, tickers="MSFT", option_underlyings=""
    )
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(lambda: s.state.name == "streaming", 15, "streaming")
    conn = await asyncpg.connect(db_url)
    redis = create_redis(redis_url)
    try:
        await control.set_paused(conn, "streamer", True, redis=redis)
        await r.wait_for(lambda: s.state.name == "paused", 5, "paused")
        await r.wait_for(lambda: subscriptions(market_sim) == {}, 5, "logged out")
        published = s.publisher.ticks
        await asyncio.sleep(1.5)
        assert s.publisher.ticks == published  # nothing published while paused
        gap = await conn.fetchrow("SELECT reason, ended_at FROM stream_gaps ORDER BY id DESC")
        assert gap is not None and gap["reason"] == "paused by the operator"
        assert gap["ended_at"] is None

        await control.set_paused(conn, "streamer", False, redis=redis)
        await r.wait_for(lambda: s.state.name == "streaming", 10, "streaming again")
        await r.wait_for(lambda: s.publisher.ticks > published, 5, "publishing again")
        await r.wait_for(lambda: s.gaps.is_open is False, 5, "gap closed")
        assert not r.task.done() and s.supervisor.reconnects == 0
    finally:
        await conn.close()
        await redis.aclose()
