"""Gateway test fixtures: settings on the test's Postgres and Redis, authenticated clients.

- ``gateway_token``: the token the settings below configure (``GATEWAY_TOKEN``).
- ``gateway_settings(**overrides)``: gateway ``Settings`` on this test's database and Redis.
- ``gateway_client``: a started ``TestClient`` sending ``Authorization: Bearer <token>`` to
  ``http://127.0.0.1:8080`` (an allowed Host).
- ``make_gateway_client(settings, clock=..., authenticated=True)``: an unstarted client for
  other settings or clocks (``with make_gateway_client(s) as c:``); ``authenticated=False``
  for the refusal tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

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
