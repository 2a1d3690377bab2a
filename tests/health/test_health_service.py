"""The ``health`` process and ``streamdesk health-check`` end to end (real processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from streamdesk_dev.localservers import free_port

from streamdesk.heartbeat import Heartbeat

pytestmark = pytest.mark.integration


def _env(db_url: str, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTH_", "TICKERS"))}
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        TICKERS="SPY",
        STREAM_PARTITIONS="1",
        MARKET_HOURS="always",
        SCHWAB_TOKEN_PATH=str(tmp_path / "token.json"),
        HEALTH_EXPECTED_SERVICES="indicators",
        HEALTH_CHECK_INTERVAL="0.2",
        HEALTH_FRESHNESS_MAX_AGE_S="600",
        HEARTBEAT_TTL="3",
        LOG_FORMAT="json",
        **extra,
    )
    return env


def _check(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamdesk.cli", "health-check", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "health exited early"
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("health never became ready")


async def test_health_process_cli_exit_codes_and_sigterm(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO equity_data (ticker, \"timestamp\", price) VALUES ('SPY', $1, 1)",
            datetime.now(UTC),
        )
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(redis_url)
    hb = Heartbeat(client, "indicators", instance="i1", ttl=60)
    await hb.beat()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(db_url, redis_url, tmp_path, HEALTH_PORT=str(port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdesk_health"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await asyncio.to_thread(_wait_ready, url, proc)
        res = await asyncio.to_thread(_check, env, tmp_path, "--url", url)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "OVERALL" in res.stdout and "indicators" in res.stdout
        res = await asyncio.to_thread(_check, env, tmp_path, "--url", url, "--self")
        assert res.returncode == 0 and "alive" in res.stdout

        hb.set_status("degraded", "writer slow")
        await hb.beat()
        await asyncio.sleep(0.6)
        res = await asyncio.to_thread(
            _check, env, tmp_path, "--url", url, "--component", "indicators"
        )
        assert res.returncode == 1, res.stdout + res.stderr
        assert "DEGRADED" in res.stdout and "writer slow" in res.stdout

        await client.delete(hb.key)
        await asyncio.sleep(0.6)
        res = await asyncio.to_thread(_check, env, tmp_path, "--url", url)
        assert res.returncode == 2, res.stdout + res.stderr

        res = await asyncio.to_thread(_check, env, tmp_path, "--url", url, "--component", "nope")
        assert res.returncode == 2 and "unknown component" in res.stderr

        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        rc = await asyncio.to_thread(proc.wait, 15)
        assert rc == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        assert proc.stderr is not None
        proc.stderr.close()
        await hb.stop()
        await client.aclose()


async def test_cli_falls_back_to_the_heartbeat_when_health_is_unreachable(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = _env(db_url, redis_url, tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"
    client = aioredis.Redis.from_url(redis_url)
    hb = Heartbeat(client, "streamer", instance="s1", ttl=60)
    try:
        res = await asyncio.to_thread(
            _check, env, tmp_path, "--url", dead, "--component", "streamer"
        )
        assert res.returncode == 2 and "no live heartbeat" in res.stdout
        await hb.beat()
        res = await asyncio.to_thread(
            _check, env, tmp_path, "--url", dead, "--component", "streamer"
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert "read from Redis" in res.stdout
        res = await asyncio.to_thread(
            _check, env, tmp_path, "--url", dead, "--component", "streamer", "--no-fallback"
        )
        assert res.returncode == 2 and "unreachable" in res.stderr
        res = await asyncio.to_thread(_check, env, tmp_path, "--url", dead)
        assert res.returncode == 2 and "unreachable" in res.stderr
        res = await asyncio.to_thread(_check, env, tmp_path, "--url", dead, "--self")
        assert res.returncode == 2 and "NOT alive" in res.stdout
    finally:
        await hb.stop()
        await client.aclose()
