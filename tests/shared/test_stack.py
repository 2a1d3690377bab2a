"""`make run`'s stack runner: Postgres + Redis + migrations, services supervised, clean stop."""

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
from types import SimpleNamespace
from typing import Any

import asyncpg
import psutil
import pytest
import redis
from supervisor.xmlrpc import SupervisorTransport

from streamdesk import stack
from streamdesk.localservers import PrerequisiteError, free_port

ROOT = Path(__file__).resolve().parents[2]


def _workdir(tmp_root: Path, name: str) -> Path:
    """A working directory for a stack under the session's ``tmp_root`` (conftest), which the
    postgres user can traverse when the tests run as root. Not under pytest's own temp dir:
    every pytest session resets /tmp/pytest-of-<user> to 0700, and a concurrent one would
    then lock PostgreSQL's ``pg_ctl stop`` out of its data directory."""
    path = tmp_root / name
    path.mkdir()
    if os.geteuid() == 0:
        path.chmod(0o755)
    return path


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


@pytest.mark.integration
def test_stack_up_migrated_and_stops_cleanly(tmp_root: Path) -> None:
    tmp_path = _workdir(tmp_root, "stack-none")
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


# --------------------------------------------------------------------------- supervision
# `make run` runs the services under supervisord (see streamdesk.stack): a killed service is
# restarted, a crash loop is reported and given up, Ctrl-C / SIGTERM stop everything.

#: program -> heartbeat service name (None: checked by its port instead)
HEARTBEATS = {
    "market-sim": None,
    "streamer": "streamer",
    "indicators": "indicators",
    "executor": "trade-executor",
    "health": None,
    "gateway": "gateway",
}


def _wait(what: str, check: Callable[[], Any], timeout: float, log: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log()[-6000:]}")
        time.sleep(0.2)


class Stack:
    """`python -m streamdesk.stack` in ``workdir`` on free ports, output in a log file."""

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
            [sys.executable, "-m", "streamdesk.stack"],
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

        match: re.Match[str] = _wait(repr(pattern), found, timeout, self.log)
        return match

    @property
    def rpc(self) -> Any:
        if self._rpc is None:
            conf = configparser.RawConfigParser()
            conf.read(self.workdir / ".data" / "supervisord.conf")
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
            assert not _listening(port), f"port {port} still open\n{self.log()[-4000:]}"
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
        workdir = _workdir(tmp_root, f"sv{next(_run_ids)}")
        started.append(Stack(workdir, **env))
        return started[-1]

    yield start
    for s in started:
        s.kill_all()


@pytest.mark.integration
@pytest.mark.slow
def test_killed_services_come_back_and_data_keeps_flowing(
    run_stack: Callable[..., Stack],
) -> None:
    s = run_stack()
    s.wait_log(r"stack: services: market-sim, streamer, indicators, executor, health, gateway", 90)
    rows = _wait("equity_data rows", s.equity_rows, 90, s.log)
    for name in HEARTBEATS:  # up for startsecs: a kill now is a crash, not a failed start
        _wait(f"{name} RUNNING", lambda n=name: s.serving(n, running=True), 60, s.log)
    assert re.search(r"^\d\d:\d\d:\d\d indicators +\| ", s.log(), re.M), "no prefixed output"

    for name in HEARTBEATS:  # kill -9 each service in turn
        old = s.info(name)["pid"]
        os.kill(old, signal.SIGKILL)
        new = _wait(f"{name} back, new pid", lambda n=name, o=old: s.serving(n, o), 10, s.log)
        assert new != old
        assert s.proc.poll() is None, s.log()
    log = s.log()
    for name in HEARTBEATS:
        assert f"stack: {name} crashed (terminated by SIGKILL); restarting it" in log, log
    # The others kept running: every service is up, each restarted exactly once by us.
    for name in HEARTBEATS:
        assert s.info(name)["statename"] in ("RUNNING", "STARTING"), s.info(name)
    assert "gave up" not in log
    after_kills = s.equity_rows()
    assert after_kills >= rows
    _wait("equity_data still growing", lambda: s.equity_rows() > after_kills, 30, s.log)

    assert s.stop(signal.SIGINT, group=True) == 0  # Ctrl-C
    log = s.log()
    assert "stack: stopping Redis" in log and "stack: stopping PostgreSQL" in log
    assert log.index("stopped: market-sim") < log.index("stack: stopping Redis")
    assert log.index("stack: stopping Redis") < log.index("stack: stopping PostgreSQL")
    assert not (s.workdir / ".data" / "pg" / "postmaster.pid").exists()


@pytest.mark.integration
def test_crash_loop_is_reported_and_given_up_while_others_run(
    run_stack: Callable[..., Stack],
) -> None:
    # BATCH_SIZE=0 is an invalid configuration that only indicators reads: it exits 2 at once.
    s = run_stack(
        STACK_SERVICES="indicators,health,gateway", BATCH_SIZE="0", STACK_START_RETRIES="2"
    )
    s.wait_log(r"stack: services: indicators, health, gateway", 90)
    others = {
        n: _wait(f"{n} serving", lambda n=n: s.serving(n), 60, s.log) for n in ("health", "gateway")
    }
    s.wait_log(
        r"stack: indicators is crash-looping \(exit status 2\): gave up after 3 failed "
        r"starts in a row",
        60,
    )
    log = s.log()
    assert "stack: indicators exited (exit status 2) within 10s of its start; retry 1 of 2" in log
    assert "retry 2 of 2 in 2s" in log
    assert log.count("spawned: 'indicators'") == 3, log
    assert "indicators | " in log and "BATCH_SIZE" in log  # its own error reached the terminal
    assert s.info("indicators")["statename"] == "FATAL"
    for name, pid in others.items():
        # supervisord calls a program RUNNING once it has stayed up STACK_START_SECS (10 s),
        # which the give-up above may beat: wait for it, and check it was never restarted.
        _wait(f"{name} RUNNING", lambda n=name: s.info(n)["statename"] == "RUNNING", 30, s.log)
        assert s.info(name)["pid"] == pid
        assert s.alive(name, pid)
    assert s.stop(signal.SIGTERM, group=False) == 0


# --------------------------------------------------------------------------- unit


@pytest.mark.unit
def test_supervisord_config_restart_policy(tmp_path: Path) -> None:
    programs = [stack.Program("indicators", ["/venv/bin/indicators"], 200)]
    policy = stack.Policy(start_secs=10, start_retries=5, stop_wait_secs=15)
    conf = configparser.RawConfigParser()
    conf.read_string(stack.supervisord_config(programs, tmp_path, policy, password="pw"))
    assert conf["supervisord"]["nodaemon"] == "true"
    prog = conf["program:indicators"]
    assert prog["command"] == "/venv/bin/indicators"
    assert (prog["autorestart"], prog["startsecs"], prog["startretries"]) == ("true", "10", "5")
    assert (prog["stopasgroup"], prog["killasgroup"], prog["stopwaitsecs"]) == (
        "true",
        "true",
        "15",
    )
    assert prog["stdout_events_enabled"] == "true"
    assert prog["stdout_logfile"] == str(tmp_path.resolve() / "logs" / "indicators.log")
    assert conf["unix_http_server"]["chmod"] == "0700"
    assert conf["supervisorctl"]["password"] == "pw"
    listener = conf[f"eventlistener:{stack.LISTENER}"]
    assert listener["result_handler"] == "streamdesk.stack:print_log_event"


@pytest.mark.unit
def test_policy_from_env() -> None:
    assert stack.policy_from_env({}) == stack.Policy(10, 5, 15)
    env = {"STACK_START_SECS": "3", "STACK_START_RETRIES": "0", "SHUTDOWN_TIMEOUT": "2"}
    assert stack.policy_from_env(env) == stack.Policy(3, 0, 7)
    with pytest.raises(PrerequisiteError, match="STACK_START_RETRIES"):
        stack.policy_from_env({"STACK_START_RETRIES": "many"})


@pytest.mark.unit
def test_crash_reporter_lines() -> None:
    r = stack.CrashReporter(stack.Policy(start_secs=10, start_retries=2))
    feed = [
        "2026-01-02 09:30:00,000 INFO spawned: 'indicators' with pid 10",
        "2026-01-02 09:30:10,000 INFO success: indicators entered RUNNING state, process has "
        "stayed up for > than 10 seconds (startsecs)",
        "2026-01-02 09:30:20,000 WARN exited: indicators (terminated by SIGKILL; not expected)",
        "2026-01-02 09:30:21,000 INFO spawned: 'indicators' with pid 11",
        "2026-01-02 09:30:22,000 WARN exited: indicators (exit status 2; not expected)",
        "2026-01-02 09:30:23,000 INFO spawned: 'indicators' with pid 12",
        "2026-01-02 09:30:24,000 WARN exited: indicators (exit status 2; not expected)",
        "2026-01-02 09:30:26,000 INFO spawned: 'indicators' with pid 13",
        "2026-01-02 09:30:27,000 WARN exited: indicators (exit status 2; not expected)",
        "2026-01-02 09:30:27,000 INFO gave up: indicators entered FATAL state, too many start "
        "retries too quickly",
        "09:30:27 indicators | exited: indicators (exit status 9; not expected)",
        "2026-01-02 09:30:28,000 WARN exited: stack-log (terminated by SIGTERM; not expected)",
    ]
    out = [m for line in feed if (m := r.feed(line))]
    assert out[0] == "stack: indicators crashed (terminated by SIGKILL); restarting it"
    assert out[1] == (
        "stack: indicators exited (exit status 2) within 10s of its start; retry 1 of 2 in 1s"
    )
    assert out[2].endswith("retry 2 of 2 in 2s")
    assert out[3].startswith(
        "stack: indicators is crash-looping (exit status 2): gave up after 3 failed starts"
    )
    assert "supervisorctl -c .data/supervisord.conf start indicators" in out[3]
    assert len(out) == 4  # a service's own output and the log listener are not reported


@pytest.mark.unit
def test_print_log_event_prefixes_whole_lines(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    process = SimpleNamespace(config=SimpleNamespace(name="gateway"))

    def event(data: bytes) -> SimpleNamespace:
        return SimpleNamespace(process=process, channel="stdout", data=data)

    stack.print_log_event(event(b"one\ntw"), b"OK")
    stack.print_log_event(event(b"o\r\n"), b"OK")
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert [re.sub(r"^\d\d:\d\d:\d\d ", "", ln) for ln in lines] == [
        "gateway    | one",
        "gateway    | two",
    ]
