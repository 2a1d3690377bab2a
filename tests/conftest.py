"""Session-wide real PostgreSQL and Redis for the test-suite.

With a reachable Docker engine the servers come from testcontainers; otherwise they are
started from local binaries in a temp dir on free ports (see ``streamdesk_dev.localservers``) and
torn down at the end. Each test gets its own database cloned from a migrated template, and an
empty Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis
from pg_databases import create_database, drop_database
from streamdesk_dev.localservers import terminate

from streamdesk.migrate import migrate
from streamdesk.partitions import ensure_partitions

#: ``market_clock``: tests pinned inside and outside market hours (see tests/market_clock.py).
pytest_plugins = ["market_clock", "stack_harness"]

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
TEMPLATE_DB = "sd_template"


def _docker_reachable() -> bool:
    if os.environ.get("STREAMDESK_TEST_NO_DOCKER") or not shutil.which("docker"):
        return False
    try:
        res = subprocess.run(["docker", "info"], capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


@dataclass
class PgHandle:
    """A running PostgreSQL for tests: admin DSN, DSN factory, and (local only) the server."""

    host: str
    port: int
    server: object | None = None  # streamdesk_dev.localservers.PostgresServer when local

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"


@dataclass
class RedisHandle:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="streamdesk-test-"))
    if os.geteuid() == 0:
        path.chmod(0o755)  # the postgres user must traverse it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(tmp_root: Path) -> Iterator[PgHandle]:
    if _docker_reachable():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15", username="postgres", password="postgres") as c:
            host, port = c.get_container_host_ip(), int(c.get_exposed_port(5432))
            os.environ.setdefault("PGPASSWORD", "postgres")
            yield PgHandle(host, port)
        return
    from streamdesk_dev.localservers import PostgresServer

    server = PostgresServer(tmp_root / "pg", durable=False)
    server.start()
    try:
        yield PgHandle("127.0.0.1", server.port, server)
    finally:
        server.stop("immediate")


@pytest.fixture(scope="session")
def redis_server(tmp_root: Path) -> Iterator[RedisHandle]:
    if _docker_reachable():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as c:
            yield RedisHandle(c.get_container_host_ip(), int(c.get_exposed_port(6379)))
        return
    from streamdesk_dev.localservers import RedisServer

    server = RedisServer(tmp_root / "redis")
    server.start()
    try:
        yield RedisHandle("127.0.0.1", server.port)
    finally:
        server.stop()


async def _build_template(pg: PgHandle) -> None:
    admin = await asyncpg.connect(pg.dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(pg.dsn(TEMPLATE_DB))
    try:
        await migrate(conn, MIGRATIONS)
        await ensure_partitions(conn, days_ahead=3, days_behind=2)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template(pg_server: PgHandle) -> str:
    """Name of a migrated template database; clone it for each test."""
    asyncio.run(_build_template(pg_server))
    return TEMPLATE_DB


_db_counter = itertools.count()


async def _create_db(pg: PgHandle, name: str, template: str | None) -> None:
    await create_database(pg.dsn(), name, template)


async def _drop_db(pg: PgHandle, name: str) -> None:
    await drop_database(pg.dsn(), name)


@pytest.fixture
def empty_db_url(pg_server: PgHandle) -> Iterator[str]:
    """DSN of a fresh, empty (unmigrated) database, dropped after the test."""
    name = f"t_empty_{os.getpid()}_{next(_db_counter)}"
    asyncio.run(_create_db(pg_server, name, None))
    try:
        yield pg_server.dsn(name)
    finally:
        asyncio.run(_drop_db(pg_server, name))


@pytest.fixture
def db_url(pg_server: PgHandle, pg_template: str) -> Iterator[str]:
    """DSN of a fresh, migrated database cloned from the template, dropped after the test."""
    name = f"t_{os.getpid()}_{next(_db_counter)}"
    asyncio.run(_create_db(pg_server, name, pg_template))
    try:
        yield pg_server.dsn(name)
    finally:
        asyncio.run(_drop_db(pg_server, name))


@pytest.fixture
def redis_url(redis_server: RedisHandle) -> Iterator[str]:
    """URL of the session's Redis, emptied before the test."""
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        client.flushall()
    finally:
        client.close()
    yield redis_server.url


# --------------------------------------------------------------------------- market-sim
# Appended by the market-sim area. Importing streamdesk.schwab here imports schwab-py once
# with its dependencies' import-time deprecation warnings silenced (pytest runs with
# filterwarnings=error), so any test may then import schwab modules directly.
import json as _json  # noqa: E402
import sys as _sys  # noqa: E402
import time as _time  # noqa: E402
import urllib.request as _urlrequest  # noqa: E402
from typing import Any as _Any  # noqa: E402

import streamdesk.schwab  # noqa: E402, F401


class MarketSim:
    """A running market-sim subprocess: ``base_url``, ``port`` and admin helpers.

    ``settings_overrides(tmp_path)`` gives the kwargs a service's ``load_settings`` needs to
    talk to this simulator in paper mode (base URL, a token path in ``tmp_path``, app key and
    secret); call ``streamdesk.schwab.ensure_paper_token(settings)`` to log in.
    """

    def __init__(self, port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.port = port
        self.proc = proc
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"

    def settings_overrides(self, tmp_path: Path) -> dict[str, _Any]:
        return {
            "schwab_base_url": self.base_url,
            "schwab_token_path": tmp_path / "schwab-token.json",
            "schwab_api_key": "streamdesk-sim-key",
            "schwab_app_secret": "streamdesk-sim-secret",
            "trading_mode": "paper",
        }

    def _call(self, method: str, path: str, body: dict[str, _Any] | None = None) -> _Any:
        data = None if body is None else _json.dumps(body).encode()
        req = _urlrequest.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with _urlrequest.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return _json.loads(raw) if raw else None

    def admin_get(self, path: str) -> _Any:
        """GET ``/admin/<path>``."""
        return self._call("GET", "/admin/" + path.lstrip("/"))

    def admin_post(self, path: str, body: dict[str, _Any] | None = None) -> _Any:
        """POST JSON to ``/admin/<path>``."""
        return self._call("POST", "/admin/" + path.lstrip("/"), body or {})

    def state(self) -> _Any:
        return self.admin_get("state")

    def sent(self, symbol: str, service: str = "LEVELONE_EQUITIES", since: int = 0) -> _Any:
        """What the sim sent for ``symbol`` (see docs/market-sim.md, /admin/sent)."""
        return self.admin_get(f"sent/{service}/{symbol}?since={since}")

    def clear_faults(self) -> None:
        self.admin_post("faults/clear")

    def drop_websockets(self) -> int:
        return int(self.admin_post("faults/ws/drop")["dropped"])

    def pause_stream(self, seconds: float | None = None) -> None:
        self.admin_post("faults/ws/pause", {"seconds": seconds})

    def resume_stream(self) -> None:
        self.admin_post("faults/ws/resume")

    def order_fault(self, mode: str, count: int | None = 1) -> None:
        """mode: 500_after_accept | no_location | drop_after_accept | hang_after_accept."""
        self.admin_post("faults/orders", {"mode": mode, "count": count})

    def http_fault(
        self,
        *,
        delay: float = 0.0,
        hang: bool = False,
        path_prefix: str = "",
        count: int | None = None,
    ) -> None:
        self.admin_post(
            "faults/http",
            {"delay": delay, "hang": hang, "path_prefix": path_prefix, "count": count},
        )

    def expire_tokens(self, *, access: bool = True, refresh: bool = False) -> None:
        self.admin_post("faults/tokens/expire", {"access": access, "refresh": refresh})

    def set_price(self, symbol: str, price: float) -> _Any:
        return self.admin_post(f"market/{symbol}/price", {"price": price})

    def reset_broker(self, cash: float | None = None) -> None:
        self.admin_post("broker/reset", {"cash": cash})

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.proc, timeout)


def start_market_sim(tmp_dir: Path, **env: _Any) -> MarketSim:
    """Start ``market-sim`` on a free port with ``SIM_*`` settings given as kwargs.

    Example: ``start_market_sim(tmp, seed=7, tick_interval=0.05)``. Waits until it answers.
    """
    from streamdesk_dev.localservers import free_port

    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    child_env.update({"SIM_PORT": str(port), "SIM_HOST": "127.0.0.1", "SIM_LOG_FORMAT": "text"})
    for key, value in env.items():
        child_env[f"SIM_{key.upper()}"] = (
            ",".join(value) if isinstance(value, list | tuple) else str(value)
        )
    tmp_dir.mkdir(parents=True, exist_ok=True)
    log_path = tmp_dir / f"market-sim-{port}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [_sys.executable, "-m", "streamdesk_sim"],
        env=child_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=tmp_dir,
    )
    log_file.close()
    sim = MarketSim(port, proc, log_path)
    deadline = _time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"market-sim exited: {log_path.read_text()[-2000:]}")
            try:
                sim.admin_get("health")
                return sim
            except OSError as exc:
                if _time.monotonic() > deadline:
                    raise RuntimeError(
                        f"market-sim did not start: {log_path.read_text()[-2000:]}"
                    ) from exc
                _time.sleep(0.1)
    except BaseException:
        # Whatever interrupts the wait (a timeout, Ctrl-C, a failing sleep), the child goes too:
        # an interrupted start used to leave an orphaned simulator behind.
        sim.stop()
        raise


@pytest.fixture(scope="session", name="start_market_sim")
def start_market_sim_fixture() -> Callable[..., MarketSim]:
    """:func:`start_market_sim` for test modules that need their own settings. Test files
    must not ``from conftest import ...`` it: with a conftest.py per directory the name
    ``conftest`` means whichever was imported last when the whole suite is collected."""
    return start_market_sim


@pytest.fixture
def market_sim(tmp_path: Path) -> Iterator[MarketSim]:
    """A fresh market-sim (seed 1, fast 50 ms market steps) for one test."""
    sim = start_market_sim(
        tmp_path / "market-sim",
        seed=1,
        tick_interval=0.05,
        option_interval=0.2,
        heartbeat_interval=2,
    )
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def market_sim_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarketSim]:
    """One market-sim shared by a test module (reset its broker/faults between tests)."""
    sim = start_market_sim(
        tmp_path_factory.mktemp("market-sim"),
        seed=1,
        tick_interval=0.05,
        option_interval=0.2,
        heartbeat_interval=2,
    )
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def market_sim_factory(tmp_path: Path) -> Iterator[_Any]:
    """``start(**sim_settings) -> MarketSim`` for tests needing special settings; all stopped
    at the end. Example: ``market_sim_factory(seed=3, chart_interval=0.5)``."""
    started: list[MarketSim] = []

    def start(**env: _Any) -> MarketSim:
        env.setdefault("tick_interval", 0.05)
        sim = start_market_sim(tmp_path / f"market-sim-{len(started)}", **env)
        started.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            sim.stop()
