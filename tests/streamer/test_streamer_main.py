"""The ``streamer`` entry point as a process: heartbeat with counters, SIGTERM = bounded stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from streamdesk.constants import HEARTBEAT_PATTERN, STREAMER_STATE_KEY

pytestmark = pytest.mark.integration


def test_process_streams_beats_and_stops_on_sigterm(
    market_sim: Any, tmp_path: Path, db_url: str, redis_url: str
) -> None:
    env = {k: v for k, v in os.environ.items()}
    env.update(
        {
            "REDIS_URL": redis_url,
            "DATABASE_URL": db_url,
            "SCHWAB_BASE_URL": market_sim.base_url,
            "SCHWAB_TOKEN_PATH": str(tmp_path / "token.json"),
            "TICKERS": "AAPL,MSFT",
            "OPTION_UNDERLYINGS": "SPY",
            "OPTION_STRIKES": "2",
            "OPTION_EXPIRATIONS": "1",
            "HEARTBEAT_INTERVAL": "0.5",
            "LOG_FORMAT": "json",
        }
    )
    log_path = tmp_path / "streamer.log"
    with open(log_path, "wb") as log_file:  # a file, not a pipe: logging must never block
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamdesk_streamer"],
            env=env,
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    r = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 30
        beat: dict[str, Any] = {}
        while time.monotonic() < deadline:
            keys = list(r.scan_iter(match=HEARTBEAT_PATTERN))
            if keys:
                beat = json.loads(r.get(keys[0]) or b"{}")
                c = beat.get("counters", {})
                if (
                    c.get("ticks_published", 0) > 20
                    and c.get("state") == "streaming"
                    and beat.get("status") == "ok"
                ):
                    break
            assert proc.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.2)
        counters = beat.get("counters", {})
        assert counters.get("ticks_published", 0) > 20, beat
        assert beat["service"] == "streamer" and beat["status"] == "ok", beat["reason"]
        for name in ("messages_per_s", "ticks_per_s", "reconnects", "last_message_age_s",
                     "queue_depth", "conflated", "malformed"):  # fmt: skip
            assert name in counters
        assert counters["options"] == 4 and counters["state"] == "streaming"
        assert json.loads(r.get(STREAMER_STATE_KEY) or b"{}")["state"] == "streaming"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        out = log_path.read_bytes()
        assert proc.returncode == 0, out[-3000:]
        assert time.monotonic() - started < 15  # SHUTDOWN_TIMEOUT 10 s + process exit
        assert not list(r.scan_iter(match=HEARTBEAT_PATTERN))  # removed on a clean stop
        assert json.loads(r.get(STREAMER_STATE_KEY) or b"{}")["state"] == "stopped"
        lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        assert any("logged in and subscribed" in rec["msg"] for rec in lines)
        assert not any("access_token" in line for line in out.decode().splitlines())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        r.close()
