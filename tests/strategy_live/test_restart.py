"""Restart idempotency: the process dies (as kill -9) after a signal and before its trade
row is inserted; the restarted service replays the signal from its resume point and inserts
exactly one trade; a third start inserts nothing more."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from helpers import HERE, T0, add_strategy, insert_bar, message, publish, wait_for

from streamdesk import constants

pytestmark = pytest.mark.integration


def start(db_url: str, redis_url: str, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATEGY_", "BACKFILL_"))}
    env.update(
        DATABASE_URL=db_url, REDIS_URL=redis_url, BACKFILL_ENABLED="false",
        STRATEGY_BLOCK_MS="50", STRATEGY_POLL_INTERVAL="0.1", HEARTBEAT_INTERVAL="0.2",
        LOG_FORMAT="text", PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
        **extra,
    )  # fmt: skip
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "streamdesk_strategy"], env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    finally:
        out.close()


async def beating(redis: aioredis.Redis, proc: subprocess.Popen[bytes]) -> None:
    """Until the process's heartbeat exists (it starts after the runners are built)."""

    async def probe() -> bool:
        async for key in redis.scan_iter(match=constants.heartbeat_key("strategy", "*")):
            if json.loads(await redis.get(key) or b"{}").get("pid") == proc.pid:
                return True
        assert proc.poll() is None, "the strategy service exited early"
        return False

    await wait_for(probe, bool, timeout=20)


async def test_kill_between_signal_and_insert_gives_one_trade(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(db_url)
    redis = aioredis.Redis.from_url(redis_url)
    log = tmp_path / "strategy.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await redis.delete(constants.COMMITTED_STREAM)
        await add_strategy(conn, "once", "live_strategies:BuyOnFirstBar", params='{"qty": 7}')
        await insert_bar(conn, "AAA", T0, 10.0)

        first = start(db_url, redis_url, log, STRATEGY_FAULT="exit_before_insert")
        procs.append(first)
        await beating(redis, first)
        await publish(redis, message(T0 + 5_000, 10.0))
        await publish(redis, message(T0 + 60_000, 10.2))  # finishes minute T0: the signal
        code = await asyncio.to_thread(first.wait, 20)
        assert code == 137, log.read_text()[-2000:]
        assert await conn.fetchval("SELECT count(*) FROM trades") == 0
        state = json.loads(await conn.fetchval("SELECT state FROM strategies"))
        assert state == {}  # the decision (state with the order) was never written

        second = start(db_url, redis_url, log)
        procs.append(second)
        rows = await wait_for(lambda: conn.fetch("SELECT * FROM trades"), lambda r: len(r) > 0)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 20) == 0, log.read_text()[-2000:]
        [trade] = rows
        assert trade["client_order_id"] == f"once:AAA:{T0 + 60_000}:entry"
        assert (trade["quantity"], trade["instruction"], trade["source"]) == (7, "BUY", "strategy")
        state = json.loads(await conn.fetchval("SELECT state FROM strategies"))
        assert state == {"bought": T0}

        # the same messages again (at-least-once publishing) and a third start: still one
        await publish(redis, message(T0 + 60_000, 10.2))
        third = start(db_url, redis_url, log)
        procs.append(third)
        await beating(redis, third)
        last = await publish(redis, message(T0 + 120_000, 10.3))
        await wait_for(
            lambda: conn.fetchval("SELECT runtime->>'cursor' FROM strategies"),
            lambda c: c == last,
        )
        third.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(third.wait, 20) == 0, log.read_text()[-2000:]
        assert await conn.fetchval("SELECT count(*) FROM trades") == 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        await conn.close()
        await redis.aclose()
