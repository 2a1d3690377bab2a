"""Backfill against market-sim through the real schwab-py client: idempotent, never over a
streamed bar, a streamed update makes a backfilled minute streamed, a recorded gap healed at
minute resolution; the console entry point; the rate limiter."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from streamdesk.cli_backfill import (
    BackfillSettings,
    RateLimiter,
    backfill_ticker,
    heal_gaps,
)
from streamdesk.config import load_settings
from streamdesk.schwab import ensure_paper_token, make_client

pytestmark = pytest.mark.integration
NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 30, 16, 30, tzinfo=NY)  # a Monday after the close


async def test_backfill_idempotent_and_gap_healed(
    db_url: str, market_sim_module: Any, tmp_path: Path
) -> None:
    settings = load_settings(
        BackfillSettings, database_url=db_url, **market_sim_module.settings_overrides(tmp_path)
    )
    await asyncio.to_thread(ensure_paper_token, settings)
    client = make_client(settings, asyncio=True)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    limiter = RateLimiter(50)
    try:
        streamed = datetime(2026, 11, 30, 10, 15, tzinfo=NY)
        await pool.execute(
            "INSERT INTO bars_1m (ticker, bucket, open, high, low, close, volume) "
            "VALUES ('AAPL', $1, 1, 1, 1, 1, 1)",
            streamed,
        )
        first = await backfill_ticker(
            client, pool, "AAPL", now=NOW, days=1, daily_days=10, limiter=limiter
        )
        n_min = await pool.fetchval("SELECT count(*) FROM bars_1m WHERE source = 'backfill'")
        assert first.minute_fetched >= 390 and first.minute_inserted == first.minute_fetched - 1
        assert n_min == first.minute_inserted
        assert first.daily_inserted == first.daily_fetched > 0
        again = await backfill_ticker(
            client, pool, "AAPL", now=NOW, days=1, daily_days=10, limiter=limiter
        )
        assert (again.minute_inserted, again.daily_inserted) == (0, 0)
        assert again.minute_fetched == first.minute_fetched
        kept = await pool.fetchrow("SELECT close, source FROM bars_1m WHERE bucket = $1", streamed)
        assert (kept["close"], kept["source"]) == (1.0, "stream")
        day = await pool.fetchval("SELECT max(day) FROM bars_1d")
        assert day < NOW.date()  # today's unfinished daily bar is not stored
        assert await pool.fetchval("SELECT minute_rows FROM backfill_tickers") == n_min

        # the writer's upsert of a backfilled minute makes it a streamed bar
        minute = datetime(2026, 11, 30, 11, 0, tzinfo=NY)
        await pool.execute(
            "INSERT INTO bars_1m_hot (ticker, bucket, open, high, low, close, volume, vwap) "
            "VALUES ('AAPL', $1, 2, 2, 2, 2, 2, 2) ON CONFLICT (ticker, bucket) DO UPDATE SET "
            "open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, "
            "close = EXCLUDED.close, volume = EXCLUDED.volume, vwap = EXCLUDED.vwap",
            minute,
        )
        assert (
            await pool.fetchval(
                "SELECT source FROM bars_1m WHERE ticker = 'AAPL' AND bucket = $1", minute
            )
            == "stream"
        )

        # a recorded gap of MSFT, 10:01:30 .. 10:04:10, between streamed minutes
        for m in (0, 1, 5):
            await pool.execute(
                "INSERT INTO bars_1m (ticker, bucket, open, high, low, close, volume) "
                "VALUES ('MSFT', $1, 5, 5, 5, 5, 5)",
                datetime(2026, 11, 25, 10, m, tzinfo=NY),
            )
        await pool.execute(
            "INSERT INTO stream_gaps (started_at, ended_at, symbols, reason) "
            "VALUES ($1, $2, '{MSFT}', 'test')",
            datetime(2026, 11, 25, 10, 1, 30, tzinfo=NY),
            datetime(2026, 11, 25, 10, 4, 10, tzinfo=NY),
        )
        healed = await heal_gaps(client, pool, ["AAPL"], limiter)
        assert (healed.gaps_healed, healed.minute_fetched, healed.minute_inserted) == (1, 4, 3)
        rows = await pool.fetch(
            "SELECT bucket, source, close FROM bars_1m WHERE ticker = 'MSFT' ORDER BY bucket"
        )
        got = [(r["bucket"].astimezone(NY).minute, r["source"]) for r in rows]
        assert got == [(0, "stream"), (1, "stream"), (2, "backfill"), (3, "backfill"),
                       (4, "backfill"), (5, "stream")]  # fmt: skip
        assert await pool.fetchval("SELECT healed_at IS NOT NULL FROM stream_gaps")
        assert (await heal_gaps(client, pool, ["AAPL"], limiter)).gaps_healed == 0
    finally:
        await client.close_async_session()
        await pool.close()


def test_entry_point(db_url: str, market_sim_module: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHWAB_", "TRADING_"))}
    for key, value in market_sim_module.settings_overrides(tmp_path).items():
        env[key.upper()] = str(value)
    env["DATABASE_URL"] = db_url
    cmd = [sys.executable, "-m", "streamdesk.cli", "backfill", "--tickers", "SPY", "--days", "1",
           "--daily-days", "3", "--gaps", "--json"]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["minute_inserted"] == result["minute_fetched"] > 0
    bad = subprocess.run([*cmd[:-1], "--days", "0"], env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "outside 1..60" in bad.stderr


async def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(20)
    start = time.monotonic()
    for _ in range(4):
        await limiter.wait()
    assert time.monotonic() - start >= 3 / 20 - 0.01


async def test_the_strategy_service_backfills_new_tickers_and_heals_gaps(
    db_url: str, redis_url: str, market_sim_module: Any, tmp_path: Path
) -> None:
    import redis.asyncio as aioredis

    from streamdesk import control
    from streamdesk.clock import ManualClock
    from streamdesk_strategy.config import Settings
    from streamdesk_strategy.service import StrategyService

    settings = load_settings(
        Settings, database_url=db_url, redis_url=redis_url, tickers="AAPL",
        option_underlyings="", backfill_enabled=True, backfill_days=1, backfill_daily_days=5,
        **market_sim_module.settings_overrides(tmp_path),
    )  # fmt: skip
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    redis = aioredis.Redis.from_url(redis_url)
    svc = StrategyService(settings, pool, redis, clock=ManualClock(NOW))
    try:
        await svc._backfill_once(RateLimiter(50))
        first = await pool.fetchval("SELECT count(*) FROM bars_1m WHERE ticker = 'AAPL'")
        assert first >= 390 and svc.counters["backfill_rows"] > first  # minutes and days
        await svc._backfill_once(RateLimiter(50))  # nothing new: no request at all
        assert svc.counters["backfill_requests"] == 2
        # a ticker added to the universe at run time, and a gap recorded by the streamer
        await control.add_symbol(pool, "equity", "MSFT", defaults=control.UniverseSpec.of(
            ["AAPL"], []))  # fmt: skip
        await pool.execute(
            "INSERT INTO stream_gaps (started_at, ended_at, symbols) VALUES ($1, $2, '{AAPL}')",
            datetime(2026, 11, 24, 10, 0, 30, tzinfo=NY),
            datetime(2026, 11, 24, 10, 2, 0, tzinfo=NY),
        )
        await svc._backfill_once(RateLimiter(50))
        assert await pool.fetchval("SELECT count(*) FROM bars_1m WHERE ticker = 'MSFT'") >= 390
        healed = await pool.fetch(
            "SELECT bucket FROM bars_1m WHERE ticker = 'AAPL' AND bucket < $1 ORDER BY bucket",
            datetime(2026, 11, 25, tzinfo=NY),
        )
        assert [r["bucket"].astimezone(NY).minute for r in healed] == [0, 1]
        assert svc.counters["gaps_healed"] == 1
    finally:
        await svc.aclose()
        await pool.close()
        await redis.aclose()
