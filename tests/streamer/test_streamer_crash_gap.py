"""A streamer killed -9 leaves no clean-stop gap; its successor must record the outage.

Found by the stack-wide chaos harness (tests/chaos): after ``kill -9`` of the streamer, the
ticks it had received but not yet published (and frames the simulator had already written to
the dead socket) were lost without any row in ``stream_gaps``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from streamdesk.constants import STREAMER_STATE_KEY

pytestmark = pytest.mark.integration


def _env(market_sim: Any, tmp_path: Path, db_url: str, redis_url: str) -> dict[str, str]:
    # TZ, LD_PRELOAD and FAKETIME pass through so `make test-clock` moves this process too.
    keep = ("PATH", "HOME", "LANG", "TZ", "LD_PRELOAD", "FAKETIME")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TICKERS": "AAPL,MSFT",
            "OPTION_UNDERLYINGS": "",
            "STREAM_PARTITIONS": "2",
            "MARKET_HOURS": "always",
            "TRADING_MODE": "paper",
            "SCHWAB_BASE_URL": market_sim.base_url,
            "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json"),
            "SCHWAB_API_KEY": "streamdesk-sim-key",
            "SCHWAB_APP_SECRET": "streamdesk-sim-secret",
            "HEARTBEAT_INTERVAL": "0.5",
            "LOG_FORMAT": "text",
        }
    )
    return env


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "streamdesk_streamer"], env=env, stdout=out, stderr=out
        )
    finally:
        out.close()


def _wait_streaming(
    r: redis.Redis, proc: subprocess.Popen[bytes], log: Path, after: float = 0.0
) -> dict[str, Any]:
    """The state key once ``proc`` wrote ``streaming`` (written after ``after``)."""
    deadline = time.monotonic() + 30
    while True:
        raw = r.get(STREAMER_STATE_KEY)
        state = json.loads(raw) if raw else {}
        if state.get("state") == "streaming" and state["since"] > after:
            return state
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, f"not streaming: {log.read_text()[-2000:]}"
        time.sleep(0.1)


async def test_restart_after_kill9_records_the_outage(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str
) -> None:
    env = _env(market_sim, tmp_path, db_url, redis_url)
    log = tmp_path / "streamer.log"
    r = redis.Redis.from_url(redis_url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_spawn(env, log))
        _wait_streaming(r, procs[0], log)
        time.sleep(1.2)  # a few state writes while streaming
        last = json.loads(r.get(STREAMER_STATE_KEY) or b"{}")
        killed_at = datetime.now(UTC)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        procs.append(_spawn(env, log))
        _wait_streaming(r, procs[1], log, after=killed_at.timestamp())
        time.sleep(1.5)  # the gap closes once data flows again (checked every second)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        r.close()
    conn = await asyncpg.connect(db_url)
    try:
        gaps = await conn.fetch("SELECT * FROM stream_gaps ORDER BY id")
    finally:
        await conn.close()
    crash = [g for g in gaps if "without a clean shutdown" in g["reason"]]
    assert len(crash) == 1, [dict(g) for g in gaps]
    gap = crash[0]
    # dated from the dead process's last sign of life, so it covers what it lost
    assert gap["started_at"] <= killed_at
    assert gap["started_at"].timestamp() <= last["ts"] + 1e-3
    assert gap["ended_at"] is not None and gap["ended_at"] > killed_at
    assert sorted(gap["symbols"]) == ["AAPL", "MSFT"]
