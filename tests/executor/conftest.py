"""Fixtures of the trade-executor tests: market-sim, settings pointed at the test's stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from executor_helpers import TEST_DEFAULTS, SettingsFactory, SimHandle

from streamdesk.config import load_settings
from streamdesk.localservers import free_port
from streamdesk_executor.config import Settings


@pytest.fixture(scope="session")
def market_sim_process(tmp_root: Path) -> Iterator[SimHandle]:
    """market-sim started from this checkout (fast ticks so market orders fill quickly)."""
    port = free_port()
    env = {
        **os.environ,
        "SIM_PORT": str(port),
        "SIM_TICK_INTERVAL": "0.05",
        "SIM_LOG_LEVEL": "WARNING",
        "SIM_LOG_FORMAT": "text",
    }
    log = (tmp_root / f"market-sim-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdesk_sim"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    handle = SimHandle(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{handle.url}/admin/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "market-sim exited"
            assert time.monotonic() < deadline, "market-sim did not start"
            time.sleep(0.1)
        yield handle
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture
def market_sim(market_sim_process: SimHandle) -> Iterator[SimHandle]:
    """The session's market-sim with a fresh paper account and no faults."""
    market_sim_process.admin("faults/clear")
    market_sim_process.admin("broker/reset", {"cash": 1_000_000})
    yield market_sim_process
    market_sim_process.admin("faults/clear")


@pytest.fixture
def make_settings(db_url: str, redis_url: str, market_sim: Any, tmp_path: Path) -> SettingsFactory:
    """Build executor Settings pointed at this test's DB, Redis and market-sim."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": db_url,
            "redis_url": redis_url,
            "schwab_base_url": market_sim.url,
            "schwab_token_path": tmp_path / "schwab-token.json",
            **TEST_DEFAULTS,
        }
        values.update(overrides)
        return load_settings(Settings, **values)

    return make
