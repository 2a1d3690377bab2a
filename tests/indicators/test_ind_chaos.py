"""Restart equivalence: kill -9 (also between COMMIT and XACK) and a PostgreSQL crash mid-run.

Each test compares the final tables with those of an uninterrupted run of the same ticks
(same code, a separate database and Redis db): they must be identical, value for value.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from conftest import (
    SettingsFactory,
    drained,
    dump_tables,
    produce,
    run_service_until_drained,
    wait_drained,
)
from ind_ticksim import et_ms, option_ticks, session_ticks
from pg_databases import create_database, drop_database
from streamdesk_dev.localservers import PostgresServer

from streamdesk import constants
from streamdesk.migrate import migrate
from streamdesk.models import EquityTick, OptionTick
from streamdesk_indicators.runner import IndicatorsService

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = date(2026, 3, 10)
ROOT = Path(__file__).resolve().parents[2]


def _ticks(n_target: int, seed: int) -> list[EquityTick | OptionTick]:
    syms = ["SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA"]
    rate = 4.0
    seconds = n_target / (rate * len(syms))
    start = et_ms(DAY, 9, 25)
    eq = session_ticks(syms, start, start + int(seconds * 1000), seed=seed, rate=rate)
    opts = option_ticks("SPY", start, start + int(seconds * 1000), contracts=6, rate=1.0)
    return list(heapq.merge(eq, opts, key=lambda t: t.ts))


async def _reference_tables(
    make_settings: SettingsFactory,
    pg_dsn_factory: Any,
    ticks: Sequence[EquityTick | OptionTick],
    redis_url: str,
) -> dict[str, list[tuple[Any, ...]]]:
    """Uninterrupted run: fresh database, Redis db 1."""
    dsn = await pg_dsn_factory()
    ref_redis = redis_url.rsplit("/", 1)[0] + "/1"
    settings = make_settings(database_url=dsn, redis_url=ref_redis, instance_id="reference")
    await produce(ref_redis, ticks, settings.stream_partitions)
    await run_service_until_drained(settings, timeout=120)
    return await dump_tables(dsn)


@pytest.fixture
async def fresh_db(pg_server: Any, pg_template: str) -> AsyncIterator[Any]:
    """Factory of extra migrated databases on the session server (dropped afterwards)."""
    made: list[str] = []

    async def make() -> str:
        name = f"t_ind_ref_{os.getpid()}_{len(made)}_{random.randrange(10**6)}"
        await create_database(pg_server.dsn(), name, pg_template)
        made.append(name)
        return str(pg_server.dsn(name))

    yield make
    for name in made:
        await drop_database(pg_server.dsn(), name)


@pytest.fixture
def pg_dir(tmp_root: Path) -> Path:
    """A directory the ``postgres`` user can traverse (pytest's tmp_path is root-only)."""
    path = tmp_root / f"ind-pg-{os.getpid()}-{random.randrange(10**9)}"
    path.mkdir()
    return path


def _spawn(env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "streamdesk_indicators"],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    finally:
        out.close()


async def _produce_slowly(
    redis_url: str,
    ticks: Sequence[EquityTick | OptionTick],
    partitions: int,
    seconds: float,
    fast: asyncio.Event | None = None,
) -> None:
    """Feed ``ticks`` in 60 chunks over ``seconds`` (at once from when ``fast`` is set)."""
    chunks = 60
    size = len(ticks) // chunks + 1
    for i in range(chunks):
        await produce(redis_url, ticks[i * size : (i + 1) * size], partitions)
        if fast is None or not fast.is_set():
            await asyncio.sleep(seconds / chunks)


async def test_kill9_at_random_points_gives_identical_tables(
    make_settings: SettingsFactory,
    fresh_db: Any,
    db_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    ticks = _ticks(100_000, seed=99)
    assert len(ticks) >= 100_000
    expected = await _reference_tables(make_settings, fresh_db, ticks, redis_url)
    assert len(expected["equity_data"]) > 20_000

    settings = make_settings(instance_id="chaos", batch_interval=0.1)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "STREAM_PARTITIONS": str(settings.stream_partitions),
        "BATCH_INTERVAL": "0.1",
        "BATCH_SIZE": "3000",
        "INSTANCE_ID": "chaos",
        "LOG_FORMAT": "text",
        "HEARTBEAT_INTERVAL": "0.5",
    }
    log = tmp_path / "indicators.log"
    rng = random.Random(1234)
    fast = asyncio.Event()
    producer = asyncio.create_task(
        _produce_slowly(redis_url, ticks, settings.stream_partitions, seconds=40.0, fast=fast)
    )
    kills = hook_crashes = 0
    started = time.monotonic()
    try:
        while (kills < 8 or hook_crashes < 4) and time.monotonic() - started < 120:
            # while ticks are still arriving, crash deterministically between COMMIT and XACK
            # on every other run (the hook needs commits to happen); kill -9 at a random time
            # otherwise
            use_hook = not producer.done() and hook_crashes < 4 and (kills + hook_crashes) % 2
            run_env = dict(env)
            if use_hook:
                run_env["TEST_CRASH_AFTER_COMMIT"] = str(rng.randint(1, 4))
            proc = _spawn(run_env, log, tmp_path)
            if use_hook:
                try:
                    rc = await asyncio.to_thread(proc.wait, 8)
                except subprocess.TimeoutExpired:
                    rc = None
                if rc is not None:
                    assert rc == -signal.SIGKILL, f"hook run exited with {rc}"
                    hook_crashes += 1
                    continue
            else:
                await asyncio.sleep(rng.uniform(0.6, 1.6))
            assert proc.poll() is None, "service died on its own"
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
            kills += 1
        fast.set()
        await asyncio.wait_for(producer, 60)
        # final, uninterrupted run to the end, then a graceful SIGTERM
        r = aioredis.Redis.from_url(redis_url)
        hb_key = constants.heartbeat_key("indicators", "chaos")
        await r.delete(hb_key)  # left by the killed processes
        proc = _spawn(env, log, tmp_path)
        try:
            deadline = time.monotonic() + 30
            while not await r.exists(hb_key):  # up, with its signal handlers installed
                assert time.monotonic() < deadline and proc.poll() is None
                await asyncio.sleep(0.1)
            await r.aclose()
            await wait_drained(redis_url, settings.stream_partitions, timeout=90)
            # provisional rows are final only after one more flush
            await asyncio.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.to_thread(proc.wait, 20)
        assert rc == 0
    finally:
        if not producer.done():
            producer.cancel()
    text = log.read_text()
    assert text.count("test hook: crashing between COMMIT and XACK") == hook_crashes >= 4
    assert kills >= 8
    assert "replayed" in text  # restarts did go through the pending entries

    actual = await dump_tables(db_url)
    for table, rows in expected.items():
        assert len(actual[table]) == len(rows), table
        assert actual[table] == rows, table


async def test_postgres_crash_mid_run_loses_and_duplicates_nothing(
    make_settings: SettingsFactory,
    fresh_db: Any,
    redis_url: str,
    pg_dir: Path,
) -> None:
    ticks = _ticks(30_000, seed=7)
    expected = await _reference_tables(make_settings, fresh_db, ticks, redis_url)

    server = PostgresServer(pg_dir / "pgdata", durable=False)
    server.start()
    try:
        admin = await asyncpg.connect(server.url)
        await admin.execute("CREATE DATABASE streamdesk")
        await admin.close()
        dsn = server.dsn("streamdesk")
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, ROOT / "migrations")
        finally:
            await conn.close()
        settings = make_settings(database_url=dsn, instance_id="pgcrash", retry_max_delay=0.5)
        service = IndicatorsService(settings)
        task = asyncio.create_task(service.run())
        producer = asyncio.create_task(
            _produce_slowly(redis_url, ticks, settings.stream_partitions, seconds=4.0)
        )
        try:
            await asyncio.sleep(1.5)
            assert service.commits > 0
            await asyncio.to_thread(server.stop, "immediate")
            await asyncio.sleep(2.0)
            assert service.heartbeat.status == "degraded"
            assert service.db_errors > 0
            assert not await drained(redis_url, settings.stream_partitions)
            await asyncio.to_thread(server.start)
            await asyncio.wait_for(producer, 30)
            await wait_drained(redis_url, settings.stream_partitions, timeout=60)
            await asyncio.sleep(0.5)
            assert service.heartbeat.status == "ok"
        finally:
            service.shutdown.request("test")
            await asyncio.wait({task}, timeout=15)
            if not producer.done():
                producer.cancel()
        assert task.result() == 0
        actual = await dump_tables(dsn)
    finally:
        server.stop("immediate")
    for table, rows in expected.items():
        assert actual[table] == rows, table


async def test_redis_data_waits_while_database_is_down_at_start(
    make_settings: SettingsFactory,
    redis_url: str,
    pg_dir: Path,
) -> None:
    """The service starts with the DB unreachable: degraded, nothing acked, then catches up."""
    server = PostgresServer(pg_dir / "pgdown", durable=False)
    server.start()
    admin = await asyncpg.connect(server.url)
    await admin.execute("CREATE DATABASE streamdesk")
    await admin.close()
    conn = await asyncpg.connect(server.dsn("streamdesk"))
    await migrate(conn, ROOT / "migrations")
    await conn.close()
    server.stop("fast")
    try:
        settings = make_settings(database_url=server.dsn("streamdesk"), retry_max_delay=0.3)
        ticks = _ticks(2_000, seed=3)
        await produce(redis_url, ticks, settings.stream_partitions)
        service = IndicatorsService(settings)
        task = asyncio.create_task(service.run())
        try:
            await asyncio.sleep(1.5)
            assert service.heartbeat.status == "degraded"
            r = aioredis.Redis.from_url(redis_url)
            hb = await r.get(service.heartbeat.key)
            await r.aclose()
            assert hb is not None and b'"degraded"' in hb
            await asyncio.to_thread(server.start)
            await wait_drained(redis_url, settings.stream_partitions, timeout=30)
        finally:
            service.shutdown.request("test")
            await asyncio.wait({task}, timeout=15)
        assert task.result() == 0
        assert service.ticks == len(ticks)
    finally:
        server.stop("immediate")


async def test_degraded_clears_when_the_database_returns_without_traffic(
    make_settings: SettingsFactory,
    redis_url: str,
    pg_dir: Path,
) -> None:
    server = PostgresServer(pg_dir / "pgidle", durable=False)
    server.start()
    admin = await asyncpg.connect(server.url)
    await admin.execute("CREATE DATABASE streamdesk")
    await admin.close()
    conn = await asyncpg.connect(server.dsn("streamdesk"))
    await migrate(conn, ROOT / "migrations")
    await conn.close()
    try:
        settings = make_settings(database_url=server.dsn("streamdesk"), retry_max_delay=0.3)
        service = IndicatorsService(settings)
        task = asyncio.create_task(service.run())
        try:
            await asyncio.sleep(1.0)
            assert service.heartbeat.status == "ok"
            await asyncio.to_thread(server.stop, "immediate")
            deadline = time.monotonic() + 10
            while service.heartbeat.status == "ok":  # noticed without any tick arriving
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await asyncio.to_thread(server.start)
            deadline = time.monotonic() + 15
            while service.heartbeat.status != "ok":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        finally:
            service.shutdown.request("test")
            await asyncio.wait({task}, timeout=15)
        assert task.result() == 0
    finally:
        server.stop("immediate")
