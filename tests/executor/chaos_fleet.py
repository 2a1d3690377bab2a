"""Executor processes for the chaos tests: started as the console entry point, killed -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from executor_helpers import TEST_DEFAULTS


class Fleet:
    """Executor subprocesses; kill -9 and restart."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.generation = 0
        self.kills = 0

    def start(self, slot: int) -> None:
        self.generation += 1
        env = {**self.env, "EXECUTOR_INSTANCE": f"chaos-{slot}-{self.generation}"}
        log = (self.cwd / f"executor-{slot}-{self.generation}.log").open("wb")
        self.procs[slot] = subprocess.Popen(
            [sys.executable, "-m", "streamdesk_executor"],
            env=env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill9(self, slot: int) -> None:
        proc = self.procs[slot]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            self.kills += 1

    def alive(self) -> int:
        return sum(1 for p in self.procs.values() if p.poll() is None)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def fleet_env(settings: Any, extra: dict[str, Any]) -> dict[str, str]:
    """The environment of an executor process pointed at ``settings``' stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXECUTOR_", "RISK_"))}
    values = {
        **TEST_DEFAULTS,
        "database_url": settings.database_url,
        "redis_url": settings.redis_url,
        "schwab_base_url": settings.schwab_base_url,
        "schwab_token_path": str(settings.schwab_token_path),
        "schwab_api_key": settings.schwab_api_key,
        "schwab_app_secret": settings.schwab_app_secret,
        "trading_mode": "paper",
        "log_level": "WARNING",
        "log_format": "text",
        **extra,
    }
    env.update({k.upper(): str(v) for k, v in values.items()})
    return env
