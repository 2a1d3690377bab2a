"""The whole local stack as a test sees it: `python -m streamdesk_dev.stack` (what `make run`
runs: PostgreSQL, Redis, migrations, every service under supervisord, market-sim as market and
broker) on free ports in a fresh working directory, with its log, supervisord's RPC and the
probes the tests use. Registered as a plugin in tests/conftest.py (fixture ``run_stack``).
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
import redis
from streamdesk_dev.localservers import free_port
from supervisor.xmlrpc import SupervisorTransport

ROOT = Path(__file__).resolve().parents[1]


def workdir_under(tmp_root: Path, name: str) -> Path:
    """A working directory for a stack under the session's ``tmp_root`` (conftest), which the
    postgres user can traverse when the tests run as root. Not under pytest's own temp dir:
    every pytest session resets /tmp/pytest-of-<user> to 0700, and a concurrent one would
    then lock PostgreSQL's ``pg_ctl stop`` out of its data directory."""
    path = tmp_root / name
    path.mkdir()
    if os.geteuid() == 0:
        path.chmod(0o755)
    return path


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.3):
            return True
    except OSError:
        return False


#: program -> heartbeat service name (None: checked by its port instead)
HEARTBEATS = {
    "market-sim": None,
    "streamer": "streamer",
    "indicators": "indicators",
    "executor": "trade-executor",
    "health": None,
    "gateway": "gateway",
}


def wait_for(what: str, check: Callable[[], Any], timeout: float, log: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log()[-6000:]}")
        time.sleep(0.2)


class Stack:
    """`python -m streamdesk_dev.stack` in ``workdir`` on free ports, output in a log file."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.workdir = workdir
        self.ports = {k: free_port() for k in ("pg", "redis", "sim", "gateway", "health")}
        drop = ("DATABASE_URL", "REDIS_URL", "SCHWAB_BASE_URL", "TRADING_MODE")
        self.env = {k: v for k, v in os.environ.items() if k not in drop} | {
            "STACK_PG_PORT": str(self.ports["pg"]),
            "STACK_REDIS_PORT": str(self.ports["redis"]),
            "SIM_PORT": str(self.ports["sim"]),
            "GATEWAY_PORT": str(self.ports["gateway"]),
            "HEALTH_PORT": str(self.ports["health"]),
            "MIGRATIONS_DIR": str(ROOT / "migrations"),
            **env,
        }
        self.log_path = workdir / f"stack-{self.ports['pg']}.log"
        log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed below, the child keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamdesk_dev.stack"],
            cwd=workdir,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a Ctrl-C is sent to it
        )
        log_file.close()
        self.redis = redis.Redis(port=self.ports["redis"], socket_timeout=2)
        self._rpc: xmlrpc.client.ServerProxy | None = None
        self._transport: SupervisorTransport | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            log = self.log()
            if self.proc.poll() is not None:
                raise AssertionError(f"the stack exited ({self.proc.returncode})\n{log[-6000:]}")
            return re.search(pattern, log)

        match: re.Match[str] = wait_for(repr(pattern), found, timeout, self.log)
        return match

    @property
    def rpc(self) -> Any:
        if self._rpc is None:
            conf = configparser.RawConfigParser()
            path = self.workdir / ".data" / "supervisord.conf"
            conf.read(path)
            if not conf.has_section("supervisorctl"):
                # The stack writes its config after it starts: polled before that (a slow
                # start), it is "not listening yet" like a refused socket, not an error.
                raise FileNotFoundError(f"{path} is not written yet")
            ctl = conf["supervisorctl"]
            self._transport = SupervisorTransport(
                ctl["username"], ctl["password"], ctl["serverurl"]
            )
            self._rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=self._transport)
        return self._rpc

    def info(self, name: str) -> dict[str, Any]:
        """supervisord's getProcessInfo(name) over its unix socket."""
        try:
            info: dict[str, Any] = self.rpc.supervisor.getProcessInfo(name)
        except OSError:
            self.close_rpc()  # its half-open socket, and retry afresh next time
            raise
        return info

    def close_rpc(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._rpc = self._transport = None

    def answers(self, path: str, port: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[port]}{path}", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answered (e.g. /health says 503 while a component is down)
        except OSError:
            return False

    def alive(self, name: str, pid: int) -> bool:
        """``name``'s process ``pid`` serves: its heartbeat is in Redis, or its port answers."""
        if name == "market-sim":
            return self.answers("/admin/health", "sim")
        if name == "health":
            return self.answers("/health", "health")
        for key in self.redis.scan_iter(f"sd:hb:{HEARTBEATS[name]}:*"):
            raw = self.redis.get(key)
            if raw and json.loads(raw).get("pid") == pid:
                return True
        return False

    def serving(self, name: str, not_pid: int = 0, *, running: bool = False) -> int:
        """``name``'s pid if it is alive and serving (and not ``not_pid``), else 0; with
        ``running``, only once supervisord counts it as started (up for ``startsecs``)."""
        try:
            info = self.info(name)
        except OSError:  # supervisord not listening yet
            return 0
        if running and info["statename"] != "RUNNING":
            return 0
        pid = int(info["pid"])
        return pid if pid not in (0, not_pid) and self.alive(name, pid) else 0

    def equity_rows(self) -> int:
        async def count() -> int:
            dsn = f"postgresql://postgres@127.0.0.1:{self.ports['pg']}/streamdesk"
            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                return int(await conn.fetchval("SELECT count(*) FROM equity_data"))
            finally:
                await conn.close()

        return asyncio.run(count())

    def tree(self) -> list[psutil.Process]:
        """Every process of the stack: the runner's descendants and the postmaster."""
        procs = [psutil.Process(self.proc.pid)]
        procs += procs[0].children(recursive=True)
        pidfile = self.workdir / ".data" / "pg" / "postmaster.pid"
        if pidfile.exists():
            procs.append(psutil.Process(int(pidfile.read_text().split()[0])))
        return procs

    def stop(self, sig: signal.Signals, *, group: bool) -> int:
        tree = self.tree()
        self.close_rpc()
        if group:
            os.killpg(self.proc.pid, sig)  # as a terminal's Ctrl-C does
        else:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=90)
        _, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, f"left behind: {alive}\n{self.log()[-4000:]}"
        for port in self.ports.values():
            assert not listening(port), f"port {port} still open\n{self.log()[-4000:]}"
        return rc

    def kill_all(self) -> None:
        """Teardown after a failed test: stop whatever of this stack still runs."""
        if self.proc.poll() is None:
            tree = self.tree()
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
            _, alive = psutil.wait_procs(tree, timeout=5)
            for proc in alive:
                proc.kill()
        self.close_rpc()
        self.redis.close()


_run_ids = itertools.count()


@pytest.fixture
def run_stack(tmp_root: Path) -> Iterator[Callable[..., Stack]]:
    """``start(**env) -> Stack`` in a fresh working directory; stopped at the end."""
    started: list[Stack] = []

    def start(**env: str) -> Stack:
        # short: PostgreSQL's socket path (in .data/pg) is limited to 107 bytes
        workdir = workdir_under(tmp_root, f"sv{next(_run_ids)}")
        started.append(Stack(workdir, **env))
        return started[-1]

    yield start
    for s in started:
        s.kill_all()
