"""`make run`'s stack runner: Postgres + Redis + migrations, services supervised, clean stop."""

from __future__ import annotations

import configparser
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from stack_harness import HEARTBEATS, Stack, listening, wait_for, workdir_under
from streamdesk_dev import stack
from streamdesk_dev.localservers import PrerequisiteError, free_port

ROOT = Path(__file__).resolve().parents[2]


def _run_stack(cwd: Path, pg_port: int, redis_port: int) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "STACK_SERVICES": "none",
        "STACK_PG_PORT": str(pg_port),
        "STACK_REDIS_PORT": str(redis_port),
        "MIGRATIONS_DIR": str(ROOT / "migrations"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdesk_dev.stack"],
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
    assert listening(pg_port) and listening(redis_port), "".join(out)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    return proc.returncode, "".join(out) + rest


@pytest.mark.integration
def test_stack_up_migrated_and_stops_cleanly(tmp_root: Path) -> None:
    tmp_path = workdir_under(tmp_root, "stack-none")
    pg_port, redis_port = free_port(), free_port()
    code, out = _run_stack(tmp_path, pg_port, redis_port)
    assert code == 0, out
    assert "applied" in out and "0004_security" in out
    # The servers we started are gone (postmaster.pid is removed only after a clean stop).
    assert not (tmp_path / ".data" / "pg" / "postmaster.pid").exists(), out
    assert not listening(redis_port), out
    assert (tmp_path / ".data" / "pg" / "PG_VERSION").exists()
    # Second run: data kept, nothing to migrate.
    code, out = _run_stack(tmp_path, pg_port, redis_port)
    assert code == 0, out
    assert "nothing to apply" in out


# --------------------------------------------------------------------------- supervision
# `make run` runs the services under supervisord (see streamdesk_dev.stack): a killed service is
# restarted, a crash loop is reported and given up, Ctrl-C / SIGTERM stop everything.


@pytest.mark.integration
@pytest.mark.slow
def test_killed_services_come_back_and_data_keeps_flowing(
    run_stack: Callable[..., Stack],
) -> None:
    s = run_stack()
    s.wait_log(
        r"stack: services: market-sim, streamer, indicators, executor, strategy, health, gateway",
        90,
    )
    rows = wait_for("equity_data rows", s.equity_rows, 90, s.log)
    for name in HEARTBEATS:  # up for startsecs: a kill now is a crash, not a failed start
        wait_for(f"{name} RUNNING", lambda n=name: s.serving(n, running=True), 60, s.log)
    assert re.search(r"^\d\d:\d\d:\d\d indicators +\| ", s.log(), re.M), "no prefixed output"

    for name in HEARTBEATS:  # kill -9 each service in turn
        old = s.info(name)["pid"]
        os.kill(old, signal.SIGKILL)
        new = wait_for(f"{name} back, new pid", lambda n=name, o=old: s.serving(n, o), 10, s.log)
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
    wait_for("equity_data still growing", lambda: s.equity_rows() > after_kills, 30, s.log)

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
        n: wait_for(f"{n} serving", lambda n=n: s.serving(n), 60, s.log)
        for n in ("health", "gateway")
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
        wait_for(f"{name} RUNNING", lambda n=name: s.info(n)["statename"] == "RUNNING", 30, s.log)
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
    assert listener["result_handler"] == "streamdesk_dev.stack:print_log_event"


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
