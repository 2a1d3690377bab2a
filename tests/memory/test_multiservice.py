"""``streamdesk-stack``: several services in one interpreter, fate-shared.

Unit tests drive :func:`run_services` with small services on the real event loop and the
real :class:`GracefulShutdown`; one integration test runs the real health and gateway
services in one process against the real Postgres and Redis of the fixtures.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from streamdesk_dev import stack
from streamdesk_dev.localservers import PrerequisiteError, free_port

from streamdesk import multiservice
from streamdesk.config import CommonSettings
from streamdesk.multiservice import COMPONENT, ComponentFilter, Service, parse_names, run_services
from streamdesk.shutdown import GracefulShutdown, request_all

ROOT = Path(__file__).resolve().parents[2]


def _service(name: str, entry: Callable[[CommonSettings], Awaitable[int]]) -> Service:
    return Service(name, CommonSettings(shutdown_timeout=2.0), entry)


class Waiter:
    """A service that runs until its own GracefulShutdown is requested, then returns 0."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.started = asyncio.Event()

    async def __call__(self, settings: CommonSettings) -> int:
        shutdown = GracefulShutdown(settings.shutdown_timeout)
        shutdown.install()
        self.started.set()
        await shutdown.wait()
        self.reason = shutdown.signal_name
        return 0


@pytest.mark.unit
def test_names_are_checked() -> None:
    assert parse_names(" streamer, Indicators ,health") == ["streamer", "indicators", "health"]
    for spec, word in [
        ("streamer,trade-executor", "places orders"),
        ("executor", "places orders"),
        ("market-sim", "market"),
        ("streamer,nope", "unknown service"),
        ("health,health", "twice"),
        (" , ", "at least one"),
    ]:
        with pytest.raises(ValueError, match=word):
            parse_names(spec)


@pytest.mark.unit
async def test_a_service_that_ends_stops_the_others_and_sets_the_exit_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waiter = Waiter()

    async def quits(settings: CommonSettings) -> int:
        await waiter.started.wait()
        return 3

    code = await run_services([_service("health", waiter), _service("streamer", quits)])
    assert code == 3
    assert waiter.reason == "streamer exited"  # the sibling was asked to stop, and did
    assert "streamer exited on its own (exit code 3): stopping health" in caplog.text


@pytest.mark.unit
async def test_a_crash_is_logged_with_its_service_and_exits_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waiter = Waiter()

    async def crashes(settings: CommonSettings) -> int:
        await waiter.started.wait()
        raise RuntimeError("boom in the flusher")

    code = await run_services([_service("indicators", crashes), _service("health", waiter)])
    assert code == 1
    assert waiter.reason == "indicators exited"
    crash = [r for r in caplog.records if r.getMessage() == "indicators crashed"]
    assert crash and crash[0].exc_info and "boom in the flusher" in str(crash[0].exc_info[1])
    # An early exit with code 0 is still a failure of the group (its supervisor restarts it).
    waiter2 = Waiter()

    async def done(settings: CommonSettings) -> int:
        await waiter2.started.wait()
        return 0

    assert await run_services([_service("health", waiter2), _service("gateway", done)]) == 1


@pytest.mark.unit
async def test_a_stop_signal_stops_every_service_and_exits_0() -> None:
    waiters = [Waiter(), Waiter()]
    task = asyncio.create_task(
        run_services([_service("streamer", waiters[0]), _service("indicators", waiters[1])])
    )
    await asyncio.wait_for(asyncio.gather(*(w.started.wait() for w in waiters)), 5)
    request_all("SIGTERM")  # what the one signal handler of the process calls
    assert await asyncio.wait_for(task, 10) == 0
    assert [w.reason for w in waiters] == ["SIGTERM", "SIGTERM"]


@pytest.mark.unit
async def test_a_service_that_does_not_stop_is_cancelled(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(multiservice, "STOP_GRACE", 0.1)
    started = asyncio.Event()

    async def deaf(settings: CommonSettings) -> int:
        started.set()
        await asyncio.sleep(3600)
        return 0

    services = [Service("gateway", CommonSettings(shutdown_timeout=0.2), deaf)]
    task = asyncio.create_task(run_services(services))
    await asyncio.wait_for(started.wait(), 5)
    request_all("SIGTERM")
    assert await asyncio.wait_for(task, 5) == 1
    assert "gateway did not stop within" in caplog.text


@pytest.mark.unit
async def test_log_records_carry_the_service_that_logged() -> None:
    seen: list[tuple[str, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.getMessage(), str(getattr(record, "component", ""))))

    handler = Keep()
    handler.addFilter(ComponentFilter())
    logger = logging.getLogger("tests.memory.component")
    logger.addHandler(handler)
    try:

        async def talks(settings: CommonSettings) -> int:
            async def child() -> None:  # a task the service starts inherits its component
                logger.warning("from a child task")

            await asyncio.create_task(child())
            logger.warning("from %s", COMPONENT.get())
            return 0

        await run_services([_service("streamer", talks)])
    finally:
        logger.removeHandler(handler)
    assert ("from a child task", "streamer") in seen
    assert ("from streamer", "streamer") in seen


@pytest.mark.unit
def test_stack_runner_groups_the_combined_services() -> None:
    env = {"STACK_COMBINE": "streamer,indicators,health,gateway"}
    programs = {p.name: p for p in stack._programs(env, use_sim=True, sim_port=8090)}
    assert "stack" in programs and "executor" in programs and "market-sim" in programs
    assert not {"streamer", "indicators", "health", "gateway"} & set(programs)
    argv = programs["stack"].argv
    # The streamer waits for market-sim, so the group does.
    assert argv[-3:] == ["-m", "streamdesk.multiservice", "streamer,indicators,health,gateway"]
    assert "streamdesk.waitfor" in argv
    with pytest.raises(PrerequisiteError, match="places orders"):
        stack._programs({"STACK_COMBINE": "health,executor"}, use_sim=True, sim_port=8090)
    plain = {p.name for p in stack._programs({}, use_sim=True, sim_port=8090)}
    assert "stack" not in plain and {"streamer", "health", "gateway"} <= plain


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # answered (e.g. 503 while a component is missing)
    except OSError:
        return False


@pytest.mark.integration
def test_health_and_gateway_in_one_process(db_url: str, redis_url: str, tmp_path: Path) -> None:
    health, gateway = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("SUPABASE_URL",)},
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "HEALTH_PORT": str(health),
        "GATEWAY_PORT": str(gateway),
        "GATEWAY_TOKEN_PATH": str(tmp_path / "gateway-token"),
        "LOG_FORMAT": "json",
        "SHUTDOWN_TIMEOUT": "3",
    }
    argv = [sys.executable, "-m", "streamdesk.multiservice", "health,gateway"]
    log = tmp_path / "stack.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (
            _answers(f"http://127.0.0.1:{health}/livez")
            and _answers(f"http://127.0.0.1:{gateway}/livez")
        ):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert '"component": "health"' in text and '"component": "gateway"' in text
    assert not _answers(f"http://127.0.0.1:{health}/livez")

    # The gateway cannot bind its port: the process does not run on without it.
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        busy.bind(("127.0.0.1", gateway))
        busy.listen()
        done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, timeout=60)
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode != 0, out[-3000:]
    assert "gateway exited on its own" in out and "stopping health" in out, out[-3000:]
