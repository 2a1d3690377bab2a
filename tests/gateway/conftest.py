"""Gateway test fixtures: settings on the test's Postgres and Redis, authenticated clients.

- ``gateway_token``: the token the settings below configure (``GATEWAY_TOKEN``).
- ``gateway_settings(**overrides)``: gateway ``Settings`` on this test's database and Redis.
- ``gateway_client``: a started ``TestClient`` sending ``Authorization: Bearer <token>`` to
  ``http://127.0.0.1:8080`` (an allowed Host).
- ``make_gateway_client(settings, clock=..., authenticated=True)``: an unstarted client for
  other settings or clocks (``with make_gateway_client(s) as c:``); ``authenticated=False``
  for the refusal tests.
- ``jwks_server``: a real HTTP server on 127.0.0.1 serving a Supabase project's JWKS;
  ``supabase_project``: that project's keys (ES256 and RS256 published, an HS256 secret),
  signing real access tokens (``supabase_project.py``).
- ``add_operator(user_id)`` / ``remove_operator(user_id)``: plain SQL on ``operators`` as
  the owner.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient
from supabase_project import JwksServer, Project

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.config import load_settings
from streamdesk_gateway.app import create_app
from streamdesk_gateway.config import Settings

GATEWAY_TEST_TOKEN = "test-gateway-token-0123456789"
BASE_URL = "http://127.0.0.1:8080"
AUTH = {"Authorization": f"Bearer {GATEWAY_TEST_TOKEN}"}


def _make_client(
    settings: Settings,
    *,
    clock: Clock = SYSTEM_CLOCK,
    authenticated: bool = True,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    **app_kwargs: Any,
) -> TestClient:
    """A TestClient for ``create_app(settings)`` (use it as a context manager to start it);
    ``client`` is the peer address the app sees, ``app_kwargs`` go to ``create_app``."""
    return TestClient(
        create_app(settings, clock=clock, **app_kwargs),
        base_url=BASE_URL,
        headers=dict(AUTH) if authenticated else None,
        client=client,
    )


@pytest.fixture
def gateway_token() -> str:
    """The gateway token ``gateway_settings`` configures."""
    return GATEWAY_TEST_TOKEN


@pytest.fixture
def make_gateway_client() -> Callable[..., TestClient]:
    """Factory: ``make_gateway_client(settings, *, clock=..., authenticated=True, client=...)``."""
    return _make_client


@pytest.fixture
def gateway_settings(db_url: str, redis_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Factory: gateway Settings on this test's database and Redis, plus ``overrides``."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": db_url,
            "redis_url": redis_url,
            "tickers": "AAPL,SPY",
            "heartbeat_interval": 0.5,
            "gateway_token": GATEWAY_TEST_TOKEN,
            "schwab_token_path": tmp_path / "schwab-token.json",
            **overrides,
        }
        return load_settings(Settings, _env_file=None, **values)

    return build


@pytest.fixture
def gateway_client(gateway_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """A started, authenticated TestClient of the gateway (default settings)."""
    with _make_client(gateway_settings()) as client:
        yield client


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    """A started JWKS server (no keys yet); stopped after the test."""
    server = JwksServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def supabase_project(jwks_server: JwksServer) -> Project:
    """A project at ``jwks_server.url`` whose JWKS publishes its ES256 and RS256 keys."""
    project = Project(jwks_server.url)
    jwks_server.keys = [project.es256.jwk, project.rs256.jwk]
    return project


async def _operators(db_url: str, sql: str, user_id: uuid.UUID) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(sql, user_id)
    finally:
        await conn.close()


@pytest.fixture
def add_operator(db_url: str) -> Callable[[uuid.UUID], Awaitable[None]]:
    """``await add_operator(user_id)``: an INSERT into ``operators`` as the owner."""
    return lambda user_id: _operators(
        db_url, "INSERT INTO operators (user_id, note) VALUES ($1, 'test')", user_id
    )


@pytest.fixture
def remove_operator(db_url: str) -> Callable[[uuid.UUID], Awaitable[None]]:
    """``await remove_operator(user_id)``: a DELETE from ``operators`` as the owner."""
    return lambda user_id: _operators(db_url, "DELETE FROM operators WHERE user_id = $1", user_id)
