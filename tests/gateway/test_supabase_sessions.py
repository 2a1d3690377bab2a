"""Supabase sign-in beyond a single request: trades submitted as an operator carry their
``user_id``, the live feed with a JWT (header or subprotocol), and the login that trades an
access token for the gateway's session cookie."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from supabase_project import Project

from streamdesk.clock import ManualClock
from streamdesk.constants import last_quote_key
from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.integration

OP = uuid.UUID("0b7f2a4c-1d2e-4f60-8a9b-3c4d5e6f7a80")
Op = Callable[[uuid.UUID], Awaitable[None]]
WS = "ws://127.0.0.1:8080/ws"
CLOCK = ManualClock(datetime(2025, 3, 4, 15, 0, tzinfo=UTC))  # a Tuesday, 10:00 New York
ORDER = {
    "symbol": "AAPL",
    "asset_type": "EQUITY",
    "instruction": "BUY",
    "quantity": 5,
    "order_type": "LIMIT",
    "limit_price": "100.00",
}


@pytest.fixture
def supa_settings(
    gateway_settings: Callable[..., Settings], supabase_project: Project
) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return gateway_settings(
            supabase_url=supabase_project.url, gateway_login_max_failures=1000, **overrides
        )

    return build


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_trade_submitted_with_a_jwt_carries_the_operator(
    supa_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    add_operator: Op,
    db_url: str,
    redis_url: str,
    gateway_token: str,
) -> None:
    await add_operator(OP)
    r = redis.Redis.from_url(redis_url)
    try:
        ts = int(CLOCK.time() * 1000) - 500
        r.hset(last_quote_key("AAPL"), mapping={"bid": 99.99, "ask": 100.01, "last": 100, "ts": ts})
    finally:
        r.close()
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO account_balances (account_hash, cash, buying_power) VALUES ('H', 1e5, 1e5)"
        )
        settings = supa_settings(market_hours="regular")
        with make_gateway_client(settings, clock=CLOCK, authenticated=False) as c:
            as_operator = c.post(
                "/api/trades", json=ORDER, headers=_bearer(supabase_project.token(OP))
            )
            assert as_operator.status_code == 201, as_operator.text
            as_service = c.post("/api/trades", json=ORDER, headers=_bearer(gateway_token))
            assert as_service.status_code == 201, as_service.text
            stranger = supabase_project.token(uuid.uuid4())
            refused = c.post("/api/trades", json=ORDER, headers=_bearer(stranger))
            assert refused.status_code == 403
        rows = await conn.fetch("SELECT id, user_id, source, status FROM trades ORDER BY id")
    finally:
        await conn.close()
    assert [(r["id"], r["user_id"], r["source"], r["status"]) for r in rows] == [
        (as_operator.json()["id"], OP, "gateway", "pending"),
        (as_service.json()["id"], None, "gateway", "pending"),
    ]


async def test_live_feed_with_a_jwt(
    supa_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    add_operator: Op,
    gateway_token: str,
) -> None:
    await add_operator(OP)
    token = supabase_project.token(OP)
    with make_gateway_client(supa_settings(), authenticated=False) as c:
        with c.websocket_connect(WS, headers=_bearer(token)) as ws:
            assert ws.accepted_subprotocol is None
        # A browser cannot set headers on a WebSocket: the token rides in a subprotocol and
        # the server selects the plain one (never echoing the token).
        with c.websocket_connect(
            WS, subprotocols=["streamdesk", f"streamdesk.bearer.{token}"]
        ) as ws:
            assert ws.accepted_subprotocol == "streamdesk"
        refused = {
            "non-operator": [f"streamdesk.bearer.{supabase_project.token(uuid.uuid4())}"],
            "expired": [f"streamdesk.bearer.{supabase_project.token(OP, exp=1_000_000)}"],
            # The long-lived gateway token is not taken from a subprotocol.
            "gateway token": ["streamdesk", f"streamdesk.bearer.{gateway_token}"],
            "nothing": ["streamdesk"],
        }
        for case, protocols in refused.items():
            with (
                pytest.raises(WebSocketDisconnect) as closed,
                c.websocket_connect(WS, subprotocols=protocols),
            ):
                pass
            assert closed.value.code == 1008, case
        # The Origin check still applies to a JWT.
        with (
            pytest.raises(WebSocketDisconnect),
            c.websocket_connect(WS, headers={**_bearer(token), "Origin": "https://evil.example"}),
        ):
            pass


async def test_login_with_a_jwt_opens_an_operator_session(
    supa_settings: Callable[..., Settings],
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    add_operator: Op,
    remove_operator: Op,
) -> None:
    await add_operator(OP)
    settings = supa_settings(supabase_operator_cache_ttl=0)
    with make_gateway_client(settings, authenticated=False) as c:
        assert (
            c.post("/api/login", json={"token": supabase_project.token(uuid.uuid4())}).status_code
            == 403
        )
        bad = c.post("/api/login", json={"token": supabase_project.token(OP, aud="x")})
        assert bad.status_code == 401 and "wrong_audience" in bad.json()["detail"]
        assert "sd_session" not in c.cookies
        r = c.post("/api/login", json={"token": supabase_project.token(OP, exp=None)})
        assert r.status_code == 401
        token = supabase_project.token(OP)
        r = c.post("/api/login", json={"token": token})
        assert r.status_code == 204, r.text
        cookie = r.headers["set-cookie"]
        assert token not in cookie
        max_age = int(cookie.lower().split("max-age=")[1].split(";")[0])
        assert 0 < max_age <= 600  # ends with the access token (600 s), not after 12 h
        sid = c.cookies["sd_session"]
        assert str(OP) in sid
        assert c.get("/api/session").json() == {"authenticated": True, "user_id": str(OP)}
        with c.websocket_connect(WS):
            pass  # the cookie carries the operator to the live feed
        await remove_operator(OP)  # (cache TTL 0 here) the session stops at once
        assert c.get("/api/session").status_code == 403
        with pytest.raises(WebSocketDisconnect), c.websocket_connect(WS):
            pass
    # The same gateway token (same cookie key) without Supabase sign-in: an operator's
    # session is no credential there.
    with make_gateway_client(gateway_settings(), authenticated=False) as c:
        c.cookies.set("sd_session", sid)
        assert c.get("/api/session").status_code == 401
