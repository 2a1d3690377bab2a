"""Acceptance: the streamer against market-sim through the real schwab-py, real Redis and Postgres.

What the simulator sent is read back from its ``/admin/sent`` log, so "every tick arrived, in
order" is checked against the sender's own record, not against our decoder.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from streamdesk.codec import decode_ticks
from streamdesk.constants import STREAMER_STATE_KEY, TICK_FIELD, tick_streams
from streamdesk.redisutil import create_redis
from streamdesk_streamer.config import Settings
from streamdesk_streamer.streamer import Streamer

pytestmark = pytest.mark.integration

EQ = "LEVELONE_EQUITIES"
OPT = "LEVELONE_OPTIONS"


def make_settings(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, **kw: Any
) -> Settings:
    from streamdesk.config import load_settings

    base: dict[str, Any] = {
        **market_sim.settings_overrides(tmp_path),
        "database_url": db_url,
        "redis_url": redis_url,
        "tickers": "AAPL,MSFT,SPY",
        "option_underlyings": "SPY",
        "option_strikes": 2,
        "option_expirations": 1,
        "stream_partitions": 2,
        "heartbeat_interval": 0.5,
        "heartbeat_timeout": 6.0,
        "backoff_initial": 0.1,
        "backoff_max": 1.0,
        "token_poll_interval": 0.2,
        "publish_linger": 0.002,
        "market_hours": "always",
    }
    base.update(kw)
    return load_settings(Settings, **base)


class Running:
    def __init__(self, streamer: Streamer, task: asyncio.Task[int]) -> None:
        self.streamer = streamer
        self.task = task

    async def wait_for(self, cond: Any, timeout: float, what: str) -> float:
        start = time.monotonic()
        while not cond():
            if self.task.done():
                raise AssertionError(f"streamer exited while waiting for {what}: {self.task}")
            if time.monotonic() - start > timeout:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    async def settled(self, timeout: float = 5.0) -> None:
        """Wait until everything received has been published."""
        s = self.streamer
        await self.wait_for(
            lambda: (
                len(s.queue) == 0 and s.publisher.ticks + s.queue.conflated >= s.flusher.ticks_in
            ),
            timeout,
            "queue drained",
        )


@pytest.fixture
async def run_streamer() -> AsyncIterator[Any]:
    started: list[Running] = []

    async def start(settings: Settings) -> Running:
        redis = create_redis(settings.redis_url)
        streamer = Streamer(settings, redis)
        task = asyncio.create_task(streamer.run(), name="test-streamer")
        r = Running(streamer, task)
        started.append(r)
        return r

    yield start
    for r in started:
        r.streamer.shutdown.request("test end")
        await asyncio.wait_for(asyncio.gather(r.task, return_exceptions=True), 20)
        await r.streamer.redis.aclose()


async def read_ticks(redis_url: str, partitions: int = 2) -> dict[str, list[Any]]:
    redis = create_redis(redis_url)
    out: dict[str, list[Any]] = {}
    try:
        for stream in tick_streams(partitions):
            for _id, fields in await redis.xrange(stream):
                eqs, opts = decode_ticks(fields[TICK_FIELD])
                for t in [*eqs, *opts]:
                    out.setdefault(t.symbol, []).append(t)
    finally:
        await redis.aclose()
    return out


def replay(updates: list[dict[str, Any]], keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Merge the sim's partial updates independently of the streamer's decoder."""
    state: dict[str, Any] = {}
    out = []
    for u in updates:
        state.update(u["fields"])
        out.append(tuple(state.get(k) for k in keys))
    return out


async def test_every_sent_tick_arrives_in_order(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any
) -> None:
    settings = make_settings(market_sim, tmp_path, db_url, redis_url)
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(lambda: s.state.name == "streaming", 15, "streaming")
    await r.wait_for(lambda: s.publisher.ticks > 200, 15, "ticks")
    # Stop the sender, let everything in flight land, then compare with the sim's log.
    market_sim.pause_stream()
    await asyncio.sleep(0.5)
    await r.settled()
    got = await read_ticks(redis_url)
    assert s.queue.conflated == 0
    assert s.decoder.counters.malformed == 0
    options = sorted(s.subscriptions.options)
    assert len(options) == 4  # 2 strikes x call/put x 1 expiration
    for sym in ["AAPL", "MSFT", "SPY"]:
        sent = market_sim.sent(sym, EQ)
        assert sent["complete"], "sim log truncated; raise SIM_SENT_LOG_SIZE"
        expected = replay(sent["updates"], ("3", "1", "2", "8"))
        ticks = got[sym]
        assert len(ticks) == sent["count"] > 10
        assert [(t.last, t.bid, t.ask, t.volume) for t in ticks] == expected
        assert all(a.ts <= b.ts for a, b in itertools.pairwise(ticks))
        assert all(a.volume <= b.volume for a, b in itertools.pairwise(ticks))
    for sym in options:
        sent = market_sim.admin_get(f"sent/{OPT}/{quote(sym)}")
        ticks = got[sym]
        assert len(ticks) == sent["count"] > 0
        expected = replay(sent["updates"], ("4", "2", "3", "28"))
        # No last price before the contract's first trade: NaN in the tick, absent in the sim.
        mine = [(None if math.isnan(t.last) else t.last, t.bid, t.ask, t.delta) for t in ticks]
        assert mine == expected
        assert ticks[0].underlying == "SPY" and ticks[0].put_call in ("C", "P")
    counters = s.counters()
    assert counters["ticks_published"] == sum(len(v) for v in got.values())
    state = json.loads(await s.redis.get(STREAMER_STATE_KEY))
    assert state["state"] == "streaming" and state["gap_open"] is False
    assert state["symbols"] == ["AAPL", "MSFT", "SPY"] and state["options"] == 4
    market_sim.resume_stream()


async def test_drop_reconnects_resubscribes_and_records_gap(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any
) -> None:
    settings = make_settings(market_sim, tmp_path, db_url, redis_url)
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(lambda: s.state.name == "streaming" and s.publisher.ticks > 50, 15, "flowing")
    assert market_sim.drop_websockets() == 1
    dropped_at = time.monotonic()
    await r.wait_for(lambda: s.supervisor.reconnects >= 1, 5, "drop noticed")
    before = s.publisher.ticks
    took = await r.wait_for(
        lambda: s.state.name == "streaming" and s.publisher.ticks > before + 20, 5, "flowing again"
    )
    assert time.monotonic() - dropped_at < 5.0, took
    conns = market_sim.state()["connections"]
    assert len(conns) == 1
    assert conns[0]["subscriptions"][EQ] == 3 and conns[0]["subscriptions"][OPT] == 4
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT * FROM stream_gaps ORDER BY id")
    finally:
        await conn.close()
    assert len(rows) == 1
    assert rows[0]["ended_at"] is not None and rows[0]["ended_at"] > rows[0]["started_at"]
    assert "AAPL" in rows[0]["symbols"] and len(rows[0]["symbols"]) == 7
    assert (rows[0]["ended_at"] - rows[0]["started_at"]).total_seconds() < 5


async def test_refused_login_is_counted_and_recovers(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any, caplog: Any
) -> None:
    settings = make_settings(market_sim, tmp_path, db_url, redis_url, option_underlyings="")
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(lambda: s.state.name == "streaming", 15, "streaming")
    # Revoke the access token (the refresh token stays valid) and cut the socket: the next
    # login is refused, the streamer refreshes its token and comes back.
    market_sim.expire_tokens(access=True, refresh=False)
    market_sim.drop_websockets()
    await r.wait_for(lambda: s.supervisor.login_refused >= 1, 10, "refusal")
    before = s.publisher.ticks
    await r.wait_for(lambda: s.state.name == "streaming" and s.publisher.ticks > before, 10, "back")
    assert not r.task.done()


async def test_token_expiry_stops_cleanly_without_crash_loop(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any, caplog: Any
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(market_sim, tmp_path, db_url, redis_url, option_underlyings="")
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(lambda: s.state.name == "streaming", 15, "streaming")
    market_sim.expire_tokens(access=True, refresh=True)
    market_sim.drop_websockets()
    await r.wait_for(lambda: s.state.name == "auth_expired", 10, "auth_expired")
    reconnects = s.supervisor.reconnects
    await asyncio.sleep(1.0)
    # Stopped, still alive, not retrying in a loop.
    assert s.state.name == "auth_expired" and not r.task.done()
    assert s.supervisor.reconnects == reconnects and s.supervisor.auth_stops == 1
    assert any(
        rec.levelno == logging.CRITICAL and "streamdesk auth" in rec.getMessage()
        for rec in caplog.records
    )
    state = json.loads(await s.redis.get(STREAMER_STATE_KEY))
    assert state["state"] == "auth_expired" and state["gap_open"] is True


async def test_unknown_symbol_is_counted_and_logged(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any, caplog: Any
) -> None:
    expired = "SPY   200117C00300000"  # market-sim ignores contracts it does not list
    settings = make_settings(
        market_sim, tmp_path, db_url, redis_url, option_underlyings="",
        option_symbols=expired, silent_symbol_seconds=1.0,
    )  # fmt: skip
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(lambda: s.subscriptions.silent_symbols == 1, 15, "silent symbol noticed")
    assert any(expired in rec.getMessage() for rec in caplog.records)
    before = s.publisher.ticks
    await r.wait_for(lambda: s.publisher.ticks > before + 10, 5, "still flowing")
    assert s.state.name == "streaming" and s.supervisor.reconnects == 0
    assert s.counters()["silent_symbols"] == 1


async def test_conflation_when_redis_stalls_is_exactly_as_documented(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any
) -> None:
    tickers = [f"C{i:02d}" for i in range(20)]
    settings = make_settings(
        market_sim, tmp_path, db_url, redis_url, tickers=",".join(tickers),
        option_underlyings="", queue_max_ticks=100,
    )  # fmt: skip
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(lambda: s.state.name == "streaming" and s.publisher.ticks > 100, 15, "flowing")
    admin = create_redis(redis_url)
    try:
        await admin.execute_command("CLIENT", "PAUSE", 2500, "WRITE")  # Redis stalls
        await r.wait_for(lambda: s.queue.conflated > 0, 5, "conflation")
        assert len(s.queue) <= 100 + len(tickers)  # bounded: FIFO part + one per symbol
        await asyncio.sleep(2.6)
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()
    market_sim.pause_stream()
    await asyncio.sleep(0.5)
    await r.settled()
    got = await read_ticks(redis_url)
    total_sent = total_got = 0
    for sym in tickers:
        sent = market_sim.sent(sym, EQ)
        assert sent["complete"]
        expected = replay(sent["updates"], ("3", "1", "2", "8"))
        mine = [(t.last, t.bid, t.ask, t.volume) for t in got[sym]]
        # In order, a subsequence of what was sent, and the newest state always arrives.
        it = iter(expected)
        assert all(any(m == e for e in it) for m in mine), sym
        assert mine[-1] == expected[-1]
        total_sent += sent["count"]
        total_got += len(mine)
    assert s.queue.conflated > 0
    assert total_sent - total_got == s.queue.conflated
    market_sim.resume_stream()


async def test_silent_connection_is_detected_and_replaced(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any
) -> None:
    # market-sim sends a heartbeat every 2 s and data many times a second: 3 s of silence
    # means the connection is dead even though the socket is open.
    settings = make_settings(
        market_sim, tmp_path, db_url, redis_url, option_underlyings="", heartbeat_timeout=3.0
    )
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(lambda: s.state.name == "streaming", 15, "streaming")
    market_sim.pause_stream(4.0)
    await r.wait_for(lambda: s.supervisor.reconnects >= 1, 6, "silence noticed")
    # The reason is checked on the recorded gap below: the in-memory state reason is cleared
    # as soon as the reconnect succeeds, so reading it here raced the reconnect.
    before = s.publisher.ticks
    await r.wait_for(lambda: s.state.name == "streaming" and s.publisher.ticks > before, 10, "back")
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow("SELECT * FROM stream_gaps ORDER BY id LIMIT 1")
    finally:
        await conn.close()
    assert row["ended_at"] is not None and "missing heartbeat" in row["reason"]


async def test_option_universe_recentres_while_streaming(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any
) -> None:
    settings = make_settings(
        market_sim, tmp_path, db_url, redis_url, tickers="SPY", option_recenter_interval=0.5
    )
    r = await run_streamer(settings)
    s = r.streamer
    await r.wait_for(
        lambda: s.state.name == "streaming" and len(s.subscriptions.options) == 4, 15, "up"
    )
    old = set(s.subscriptions.options)
    spot = s.decoder.last_price("SPY")
    assert spot is not None
    market_sim.set_price("SPY", round(spot * 1.15, 2))
    await r.wait_for(lambda: s.subscriptions.recenters >= 1, 10, "re-centre")
    new = set(s.subscriptions.options)
    assert len(new) == 4 and new != old
    conns = market_sim.state()["connections"]
    assert conns[0]["subscriptions"][OPT] == 4  # ADD + UNSUBS applied on the live socket
    before = {sym: len((await read_ticks(redis_url)).get(sym, [])) for sym in new}
    await r.wait_for(lambda: s.publisher.ticks > 0, 1, "ticks")
    await asyncio.sleep(1.5)
    after = await read_ticks(redis_url)
    assert any(len(after.get(sym, [])) > before[sym] for sym in new)  # new contracts flow
    assert s.state.name == "streaming" and s.supervisor.reconnects == 0


async def test_market_hours_from_schwab_endpoint(
    market_sim: Any, tmp_path: Path, market_sim_factory: Any
) -> None:
    from datetime import UTC, datetime

    from streamdesk.config import MarketHoursMode
    from streamdesk.market_calendar import is_market_open
    from streamdesk.schwab import ensure_paper_token, make_client
    from streamdesk_streamer.hours import MarketHours

    nyse = market_sim_factory(seed=2, clock="nyse", tick_interval=0.5)
    try:
        for sim, always in ((market_sim, True), (nyse, False)):
            settings = make_settings(
                sim, tmp_path / str(sim.port), "postgresql://x@h/d", "redis://h"
            )
            await asyncio.to_thread(ensure_paper_token, settings)
            client = make_client(settings, asyncio=True)
            try:
                now = datetime.now(UTC)
                regular = MarketHours(MarketHoursMode.REGULAR)
                extended = MarketHours(MarketHoursMode.EXTENDED)
                reg_open = await regular.is_open(client, now)
                ext_open = await extended.is_open(client, now)
                assert regular.fetch_errors == extended.fetch_errors == 0
                # The endpoint's sessions are the shared NYSE calendar's (one answer).
                assert reg_open == (True if always else is_market_open(now)), always
                ext_expected = is_market_open(now, MarketHoursMode.EXTENDED)
                assert ext_open == (True if always else ext_expected), always
                assert ext_open or not reg_open
            finally:
                await client.close_async_session()
    finally:
        nyse.stop()


async def test_idles_outside_market_hours(
    tmp_path: Path, db_url: str, redis_url: str, run_streamer: Any, market_sim_factory: Any
) -> None:
    from datetime import UTC, datetime

    from streamdesk.market_calendar import is_market_open

    sim = market_sim_factory(seed=3, clock="nyse", tick_interval=0.05)
    try:
        settings = make_settings(
            sim, tmp_path, db_url, redis_url, option_underlyings="", market_hours="regular"
        )
        r = await run_streamer(settings)
        s = r.streamer
        if is_market_open(datetime.now(UTC)):
            await r.wait_for(lambda: s.state.name == "streaming", 15, "streaming in market hours")
        else:
            await r.wait_for(lambda: s.state.name == "idle", 15, "idle outside market hours")
            await asyncio.sleep(1.0)
            assert s.state.name == "idle" and s.supervisor.reconnects == 0 and not s.gaps.is_open
            assert sim.state()["connections"] == []  # no websocket held while closed
            state = json.loads(await s.redis.get(STREAMER_STATE_KEY))
            assert state["state"] == "idle" and state["reason"] == "market closed"
    finally:
        sim.stop()
