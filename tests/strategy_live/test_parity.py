"""Parity: SmaVwapCross live against market-sim, then the backtester over the recording.

market-sim runs an accelerated clock (60 sim seconds per second, from a fixed session open);
the real streamer, indicators writer and trade-executor run as processes; the strategy
service runs in this process while a recorder writes every committed message it reads to a
JSON-lines file. Afterwards the core's backtester replays that recording with the finished
bars read as the live runtime reads them (``bars_1m`` and the indicators of the bar's last
second, through the service's own reader). The orders must be the same: the same keys (a key
holds the signal's time: the committed row that finished the bar), sides and quantities, in
the same order. Fill prices differ and are not compared: live fills come from market-sim's
paper broker a poll later at its touch, backtest fills from the next recorded row's touch
(docs/strategies.md, "Parity").
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from helpers import wait_for

from streamdesk import constants
from streamdesk.config import load_settings
from streamdesk.strategy.api import Bar, Indicators
from streamdesk.strategy.backtest import Backtester
from streamdesk.strategy.examples.sma_vwap import SmaVwapCross
from streamdesk.strategy.replay import read_recording
from streamdesk_strategy.config import Settings
from streamdesk_strategy.runner import stream_id
from streamdesk_strategy.service import StrategyService

pytestmark = pytest.mark.integration

PARAMS = {"quantity": 10, "indicators": ["ema9"]}
MIN_BARS, MIN_ORDERS, MAX_BARS = 8, 3, 45  # bars are ~1 s each


def _env(db_url: str, redis_url: str, sim: Any, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "EXECUTOR_"))}
    env.update(
        DATABASE_URL=db_url, REDIS_URL=redis_url, TICKERS="AAPL", OPTION_UNDERLYINGS="",
        MARKET_HOURS="always", TRADING_MODE="paper", SCHWAB_BASE_URL=sim.base_url,
        SCHWAB_TOKEN_PATH=str(tmp / "schwab-token.json"), SCHWAB_API_KEY="streamdesk-sim-key",
        SCHWAB_APP_SECRET="streamdesk-sim-secret", LOG_FORMAT="text", HEARTBEAT_INTERVAL="1",
        BATCH_INTERVAL="0.5", EXECUTOR_POLL_INTERVAL="0.1", EXECUTOR_SYNC_INTERVAL="0.2",
        RISK_ALLOW_MARKET_ORDERS="true", RISK_DUPLICATE_WINDOW="0",
        # the sim's session is a fixed one in the past: its quotes are days "old" by the wall
        RISK_QUOTE_MAX_AGE="1e10",
        SHUTDOWN_TIMEOUT="5",
    )  # fmt: skip
    return env


def _start(script: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    try:
        exe = Path(sys.executable).parent / script
        return subprocess.Popen([str(exe)], env=env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()


async def _record(redis: aioredis.Redis, start: str, path: Path, stop: asyncio.Event) -> str:
    """Append every committed message after ``start`` to ``path``; return the last id."""
    last = start
    with path.open("ab") as fh:
        while not stop.is_set():
            got: Any = await redis.xread({constants.COMMITTED_STREAM: last}, count=100, block=100)
            for _, entries in got or []:
                for raw_id, fields in entries:
                    fh.write(fields[b"d"] + b"\n")
                    last = raw_id.decode()
    return last


async def test_live_orders_equal_the_backtest_of_the_recording(
    db_url: str, redis_url: str, start_market_sim: Any, tmp_path: Path
) -> None:
    sim = start_market_sim(
        tmp_path / "sim", seed=4, volatility=3.0, tick_interval=0.05, heartbeat_interval=1,
        clock="accelerated", clock_speed=60, clock_start="2026-11-30T09:30:00-05:00",
        initial_cash=100_000_000, option_underlyings="",
    )  # fmt: skip
    env = _env(db_url, redis_url, sim, tmp_path)
    log = tmp_path / "services.log"
    procs: list[subprocess.Popen[bytes]] = []
    conn = await asyncpg.connect(db_url)
    redis = aioredis.Redis.from_url(redis_url)
    recording = tmp_path / "recording.jsonl"
    pool: asyncpg.Pool | None = None
    task: asyncio.Task[None] | None = None
    try:
        await conn.execute(
            "INSERT INTO strategies (id, module, params, tickers, enabled) VALUES ('parity', "
            "'streamdesk.strategy.examples.sma_vwap:SmaVwapCross', $1::jsonb, '{AAPL}', true)",
            __import__("json").dumps(PARAMS),
        )
        procs.append(_start("trade-executor", env, log))
        procs.append(_start("indicators", env, log))
        settings = load_settings(
            Settings, database_url=db_url, redis_url=redis_url, backfill_enabled=False,
            strategy_poll_interval=0.1, strategy_block_ms=50, strategy_control_interval=1.0,
        )  # fmt: skip
        pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
        svc = StrategyService(settings, pool, redis)
        await svc.start()
        stop = asyncio.Event()
        recorder = asyncio.create_task(_record(redis, svc.stream_tail, recording, stop))
        task = asyncio.create_task(svc.run())
        procs.append(_start("streamer", env, log))
        runner = svc.runners["parity"]
        started = time.monotonic()
        # at least MIN_BARS bars and MIN_ORDERS orders (the sim's path depends on when the
        # stream starts), at most MAX_BARS bars
        while not (runner.counters["bars"] >= MIN_BARS and runner.counters["orders"] >= MIN_ORDERS):
            assert runner.counters["bars"] < MAX_BARS, (runner.counters, runner.state)
            assert time.monotonic() - started < 90, (runner.counters, log.read_text()[-3000:])
            assert not task.done(), task
            await asyncio.sleep(0.2)
        sim.pause_stream()  # no more ticks: the committed stream ends
        length = -1
        while length != (length := await redis.xlen(constants.COMMITTED_STREAM)):
            await asyncio.sleep(1.0)
        tail: Any = await redis.xrevrange(constants.COMMITTED_STREAM, count=1)
        last_id = tail[0][0].decode()
        await wait_for(lambda: asyncio.sleep(0, runner.cursor), lambda c: c == last_id, 10)
        await wait_for(
            lambda: conn.fetchval(
                "SELECT count(*) FROM trades WHERE status NOT IN ('filled', 'rejected', "
                "'cancelled', 'expired')"
            ),
            lambda n: n == 0,
            15,
        )
        svc.stop()
        await asyncio.wait_for(task, 10)
        stop.set()
        recorded_last = await asyncio.wait_for(recorder, 5)
        assert stream_id(recorded_last) >= stream_id(last_id)
        await svc.aclose()

        live = await conn.fetch(
            "SELECT client_order_id, instruction, quantity, status, avg_fill_price, error "
            "FROM trades WHERE strategy_id = 'parity' ORDER BY id"
        )
        assert len(live) >= MIN_ORDERS, runner.counters
        assert all(r["status"] == "filled" for r in live), [(r["status"], r["error"]) for r in live]

        # the finished bars as the live runtime read them (its own reader), for the backtest
        buckets = await conn.fetch("SELECT bucket FROM bars_1m WHERE ticker = 'AAPL'")
        stored: dict[int, tuple[Bar, Indicators]] = {}
        for b in buckets:
            minute = int(b["bucket"].astimezone(UTC).timestamp() * 1000)
            bar, ind = await svc._fetch_bar("AAPL", minute)
            if bar is not None:
                stored[minute] = (bar, ind)
        await pool.close()

        bt = Backtester(
            SmaVwapCross, PARAMS, tickers=["AAPL"],
            bar_source=lambda ticker, minute: stored.get(minute),
        )  # fmt: skip
        for tick, ind in read_recording(recording):
            bt.feed_tick(tick, ind)
        result = bt.finish()
        # an order whose signal is the recording's last row has no later row to fill at in the
        # backtest, while market-sim's broker still fills it live: it counts with its request
        pending = sorted(bt.orders.values(), key=lambda o: o.seq)
        assert [o.req.key for o in pending] == result.unfilled
        last_ts = max(t.ts for t, _ in read_recording(recording))
        assert all(int(o.req.key.split(":")[1]) == last_ts for o in pending), (pending, last_ts)
        backtest = [(f.key, f.side, f.quantity) for f in result.fills] + [
            (o.req.key, o.req.side, o.req.quantity) for o in pending
        ]
        got = [(r["client_order_id"].removeprefix("parity:"), r["instruction"], r["quantity"])
               for r in live]  # fmt: skip
        assert got == backtest, (got, backtest, runner.counters)
        # the signal times are those of committed rows of the recording
        ts = {int(k.split(":")[1]) for k, _, _ in got}
        assert ts <= {t.ts for t, _ in read_recording(recording)}
        print(
            f"parity: {len(got)} orders over {runner.counters['bars']} bars; live fills "
            f"{[float(r['avg_fill_price']) for r in live]} backtest fills "
            f"{[f.price for f in result.fills]}"
        )
    finally:
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if pool is not None:
            pool.terminate()
        for p in procs:  # everything is checked: no drain needed
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait(10)
        sim.stop()
        await conn.close()
        await redis.aclose()
