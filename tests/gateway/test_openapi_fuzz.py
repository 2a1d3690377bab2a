"""The gateway's OpenAPI document tells the truth: schemathesis against every operation.

A real gateway (uvicorn on a loopback port, in a thread of this process) on a real Postgres
database and Redis of its own for the module; schemathesis reads the app's ``/openapi.json``
(built at import: ``schema.parametrize`` needs it at collection) and sends generated valid
and invalid requests, authenticated with the token. No 5xx, every status documented, every
body as documented, and what the schema calls invalid gets a 4xx. It covers every route that
exists, the other areas' too, as they land.

Left out: nothing of the gateway's own; operations that leave the machine (the ops area's
Schwab re-authentication) are excluded below when they exist.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from pg_databases import create_database, drop_database
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from streamdesk.config import load_settings
from streamdesk_gateway.app import create_app
from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.integration

TOKEN = "fuzz-gateway-token-0123456789"
EXAMPLES_PER_OPERATION = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _openapi() -> dict[str, Any]:
    return create_app(load_settings(Settings, _env_file=None, gateway_token=TOKEN)).openapi()


schema = schemathesis.openapi.from_dict(_openapi()).exclude(path_regex=r"^/api/ops/auth/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO trades (symbol, asset_type, instruction, quantity, limit_price, status) "
            "VALUES ('AAPL', 'EQUITY', 'BUY', 1, 100, 'pending'), "
            "('AAPL', 'EQUITY', 'BUY', 1, 100, 'working'), "
            "('SPY', 'EQUITY', 'SELL', 2, 500, 'filled')"
        )
        await conn.execute(
            "INSERT INTO account_balances (account_hash, cash, buying_power) "
            "VALUES ('H', 100000, 100000)"
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def gateway_url(pg_server: Any, pg_template: str, redis_server: Any) -> Iterator[str]:
    name = "t_gateway_fuzz"
    admin = pg_server.dsn()
    asyncio.run(drop_database(admin, name))
    asyncio.run(create_database(admin, name, pg_template))
    asyncio.run(_seed(pg_server.dsn(name)))
    port = _free_port()
    settings = load_settings(
        Settings,
        _env_file=None,
        database_url=pg_server.dsn(name),
        redis_url=f"redis://{redis_server.host}:{redis_server.port}/7",
        gateway_token=TOKEN,
        tickers="AAPL,SPY",
        heartbeat_interval=1.0,
        log_level="WARNING",
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway-fuzz", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        asyncio.run(drop_database(admin, name))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_openapi_is_truthful(case: Any, gateway_url: str) -> None:
    response = case.call(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        allow_redirects=False,
        timeout=15,
    )
    case.validate_response(response, checks=CHECKS)
