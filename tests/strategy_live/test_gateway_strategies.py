"""The gateway's strategy routes: operators only (no credential 401, a signed-in Supabase
user who is not an operator 403), list / enable / disable / flatten / P&L with the token or
an operator, 404 and 422 on bad ids and days."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient

from streamdesk.config import load_settings
from streamdesk_gateway.app import create_app
from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.integration
TOKEN = "strategy-gateway-token-0123456789"
SUPABASE = "http://127.0.0.1:9"  # never contacted: HS256 tokens are checked with the secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(secret: str, sub: uuid.UUID) -> str:
    # iat/exp relative to now: the gateway checks them against the same clock, at any hour
    now = int(time.time())
    claims = {"iss": f"{SUPABASE}/auth/v1", "aud": "authenticated", "sub": str(sub),
              "role": "authenticated", "iat": now, "exp": now + 600}  # fmt: skip
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


async def test_strategy_routes_are_for_operators(
    db_url: str, redis_url: str, tmp_path: Any
) -> None:
    secret = secrets.token_urlsafe(48)
    operator, stranger = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("INSERT INTO operators (user_id) VALUES ($1)", operator)
        await conn.execute(
            "INSERT INTO strategies (id, module, tickers) VALUES ('sma', 'm:C', '{AAA}')"
        )
        await conn.execute(
            "INSERT INTO strategy_alerts (strategy_id, kind, message) "
            "VALUES ('sma', 'max_loss_per_day', 'disabled: loss')"
        )
    finally:
        await conn.close()
    settings = load_settings(
        Settings, _env_file=None, database_url=db_url, redis_url=redis_url,
        gateway_token=TOKEN, tickers="AAA", supabase_url=SUPABASE,
        supabase_jwt_secret=secret, schwab_token_path=tmp_path / "t.json",
    )  # fmt: skip
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8080") as c:
        for method, path in (("get", "/api/strategies"), ("post", "/api/strategies/sma/flatten"),
                             ("get", "/api/strategies/pnl?day=2026-11-30")):  # fmt: skip
            assert getattr(c, method)(path).status_code == 401
            r = getattr(c, method)(
                path, headers={"Authorization": f"Bearer {hs256(secret, stranger)}"}
            )
            assert r.status_code == 403, r.text
        async_conn = await asyncpg.connect(db_url)
        try:
            assert (
                await async_conn.fetchval("SELECT flatten_requested_at FROM strategies") is None
            )  # refused callers changed nothing
        finally:
            await async_conn.close()

        op = {"Authorization": f"Bearer {hs256(secret, operator)}"}
        listed = c.get("/api/strategies", headers=op).json()
        assert [s["id"] for s in listed["strategies"]] == ["sma"]
        assert [a["kind"] for a in listed["alerts"]] == ["max_loss_per_day"]
        r = c.post("/api/strategies/sma/enable", headers=op)
        assert r.status_code == 200 and r.json()["enabled"] and r.json()["open_alerts"] == 0
        tok = {"Authorization": f"Bearer {TOKEN}"}
        r = c.post("/api/strategies/sma/flatten", headers=tok)
        assert r.status_code == 200 and r.json()["flatten_requested"]
        r = c.post("/api/strategies/sma/disable", headers=tok)
        assert r.status_code == 200 and not r.json()["enabled"]
        assert c.post("/api/strategies/nope/disable", headers=tok).status_code == 404
        assert c.post("/api/strategies/NOPE!/disable", headers=tok).status_code == 422
        assert c.get("/api/strategies/pnl?day=30-11-2026", headers=tok).status_code == 422
        pnl = c.get("/api/strategies/pnl?day=2026-11-30", headers=tok).json()
        assert pnl == {"day": "2026-11-30", "strategies": []}
