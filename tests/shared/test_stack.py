"""`make run`'s stack runner: brings up Postgres + Redis + migrations and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamdesk.localservers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.3):
            return True
    except OSError:
        return False


def _run_stack(cwd: Path, pg_port: int, redis_port: int) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "STACK_SERVICES": "none",
        "STACK_PG_PORT": str(pg_port),
        "STACK_REDIS_PORT": str(redis_port),
        "MIGRATIONS_DIR": str(ROOT / "migrations"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdesk.stack"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "Ctrl-C to stop" in line:
            break
    assert _listening(pg_port) and _listening(redis_port), "".join(out)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    return proc.returncode, "".join(out) + rest


def test_stack_up_migrated_and_stops_cleanly(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        tmp_path.chmod(0o755)
        for parent in tmp_path.parents:
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o005)
    pg_port, redis_port = free_port(), free_port()
    code, out = _run_stack(tmp_path, pg_port, redis_port)
    assert code == 0, out
    assert "applied" in out and "0004_security" in out
    # The servers we started are gone (postmaster.pid is removed only after a clean stop).
    assert not (tmp_path / ".data" / "pg" / "postmaster.pid").exists(), out
    assert not _listening(redis_port), out
    assert (tmp_path / ".data" / "pg" / "PG_VERSION").exists()
    # Second run: data kept, nothing to migrate.
    code, out = _run_stack(tmp_path, pg_port, redis_port)
    assert code == 0, out
    assert "nothing to apply" in out
