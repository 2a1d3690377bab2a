"""Session-wide real PostgreSQL and Redis for the test-suite.

With a reachable Docker engine the servers come from testcontainers; otherwise they are
started from local binaries in a temp dir on free ports (see ``streamdesk.localservers``) and
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis

from streamdesk.migrate import migrate
from streamdesk.partitions import ensure_partitions

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
    server: object | None = None  # streamdesk.localservers.PostgresServer when local

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
    from streamdesk.localservers import PostgresServer

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
    from streamdesk.localservers import RedisServer

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
    admin = await asyncpg.connect(pg.dsn())
    try:
        tpl = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{tpl}')
    finally:
        await admin.close()


async def _drop_db(pg: PgHandle, name: str) -> None:
    admin = await asyncpg.connect(pg.dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


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
