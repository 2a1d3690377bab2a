"""Trade routes on a real Postgres and Redis: invalid trades, out-of-range ids, the open/all
filter, and preview against submit (same verdict; preview inserts nothing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient

from streamdesk.clock import ManualClock
from streamdesk.constants import last_quote_key
from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.integration

CLOCK = ManualClock(datetime(2025, 3, 4, 15, 0, tzinfo=UTC))  # a Tuesday, 10:00 New York

ORDER = {
    "symbol": "AAPL",
    "asset_type": "EQUITY",
    "instruction": "BUY",
    "quantity": 5,
    "order_type": "LIMIT",
    "limit_price": "100.00",
}


def _quote(redis_url: str, bid: float, ask: float, ts: int) -> None:
    r = redis.Redis.from_url(redis_url)
    try:
        r.hset(
            last_quote_key("AAPL"),
            mapping={"bid": bid, "ask": ask, "last": (bid + ask) / 2, "ts": ts},
        )
    finally:
        r.close()


async def _sql(db_url: str, sql: str, *args: object) -> Any:
    conn = await asyncpg.connect(db_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/trades/-36893488147419103231"),
        ("GET", "/api/trades/9223372036854775808"),
        ("GET", "/api/trades/0"),
        ("GET", "/api/trades/abc"),
        ("POST", "/api/trades/761576242507985037551468544/cancel"),
        ("POST", "/api/trades/-1/cancel"),
    ],
)
def test_out_of_range_ids_are_422(method: str, path: str, gateway_client: TestClient) -> None:
    r = gateway_client.request(method, path)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "path"


def test_largest_bigint_is_404(gateway_client: TestClient) -> None:
    assert gateway_client.get("/api/trades/9223372036854775807").status_code == 404
    assert gateway_client.post("/api/trades/9223372036854775807/cancel").status_code == 404


@pytest.mark.parametrize("path", ["/api/trades", "/api/trades/preview"])
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([1, 2], "request"),
        ("BUY", "request"),
        ({**ORDER, "quantity": "lots"}, "quantity"),
        ({**ORDER, "quantity": -1}, "quantity"),
        ({**ORDER, "instruction": "BUY_TO_OPEN"}, "not an equity instruction"),
        ({**ORDER, "extra": 1}, "extra"),
        ({**ORDER, "limit_price": None}, "needs limit_price"),
        ({**ORDER, "quantity": 1e30}, "quantity"),
    ],
)
def test_invalid_trades_are_422_with_reasons(
    path: str, body: Any, expected: str, gateway_client: TestClient
) -> None:
    r = gateway_client.post(path, json=body)
    assert r.status_code == 422, r.text
    out = r.json()
    assert out["error"] == "invalid trade"
    assert all(isinstance(x, str) for x in out["reasons"])
    assert expected in " ".join(out["reasons"]), out


def test_not_json_is_4xx(gateway_client: TestClient) -> None:
    def post(content: bytes) -> Any:
        headers = {"Content-Type": "application/json"}
        return gateway_client.post("/api/trades", content=content, headers=headers)

    broken = post(b"{not json")
    assert broken.status_code == 422 and broken.json()["error"] == "invalid trade"
    assert "JSON" in broken.json()["reasons"][0]
    not_utf8 = post(b"\xff\xfe{")  # FastAPI refuses to decode it: 400, documented
    assert not_utf8.status_code == 400 and not_utf8.json() == {
        "detail": "There was an error parsing the body"
    }


@pytest.fixture
def pinned_client(
    gateway_settings: Callable[..., Settings], make_gateway_client: Callable[..., TestClient]
) -> Iterator[TestClient]:
    with make_gateway_client(gateway_settings(market_hours="regular"), clock=CLOCK) as c:
        yield c


async def test_preview_agrees_with_submit_and_inserts_nothing(
    pinned_client: TestClient, db_url: str, redis_url: str
) -> None:
    c = pinned_client
    no_quote = c.post("/api/trades/preview", json=ORDER).json()
    assert no_quote["ok"] is False and no_quote["quote"] is None
    assert "no_quote" in {v["code"] for v in no_quote["violations"]}
    assert no_quote["notional"] == 500.0  # a limit order is priced at its limit
    submitted = c.post("/api/trades", json=ORDER)
    assert submitted.status_code == 422
    assert {v["code"] for v in submitted.json()["reasons"]} == {
        v["code"] for v in no_quote["violations"]
    }

    ts = int(CLOCK.time() * 1000) - 500
    _quote(redis_url, 99.99, 100.01, ts)
    await _sql(
        db_url,
        "INSERT INTO account_balances (account_hash, cash, buying_power) VALUES ('H', 1e5, 1e4)",
    )
    buy = c.post("/api/trades/preview", json=ORDER).json()
    assert buy == {
        "ok": True,
        "violations": [],
        "notional": 500.0,
        "buying_power": 10000.0,
        "buying_power_after": 9500.0,
        "quote": {"bid": 99.99, "ask": 100.01, "last": 100.0, "ts": ts},
    }
    sell = c.post("/api/trades/preview", json={**ORDER, "instruction": "SELL"}).json()
    assert sell["ok"] and sell["buying_power_after"] == 10500.0
    too_big = {**ORDER, "quantity": 101}
    refused = c.post("/api/trades/preview", json=too_big).json()
    assert refused["ok"] is False and refused["buying_power_after"] == -100.0
    codes = {v["code"] for v in refused["violations"]}
    assert "buying_power" in codes
    assert await _sql(db_url, "SELECT count(*) FROM trades") == 0

    refused_submit = c.post("/api/trades", json=too_big)
    assert refused_submit.status_code == 422
    assert {v["code"] for v in refused_submit.json()["reasons"]} == codes
    ok = c.post("/api/trades", json=ORDER)
    assert ok.status_code == 201, ok.text
    assert await _sql(db_url, "SELECT count(*) FROM trades") == 1


async def test_status_filter(gateway_client: TestClient, db_url: str) -> None:
    for status in ("pending", "working", "filled", "rejected", "cancel_requested"):
        await _sql(
            db_url,
            "INSERT INTO trades (symbol, asset_type, instruction, quantity, limit_price, status) "
            "VALUES ('AAPL', 'EQUITY', 'BUY', 1, 100, $1) RETURNING id",
            status,
        )
    everything = gateway_client.get("/api/trades").json()
    assert [t["status"] for t in everything] == [
        "cancel_requested",
        "rejected",
        "filled",
        "working",
        "pending",
    ]
    assert gateway_client.get("/api/trades?status=all&limit=2").json() == everything[:2]
    open_ = gateway_client.get("/api/trades?status=open").json()
    assert [t["status"] for t in open_] == ["cancel_requested", "working", "pending"]
    assert gateway_client.get("/api/trades?status=closed").status_code == 422


async def test_kill_switch_refuses_submit_with_403(
    pinned_client: TestClient, db_url: str, redis_url: str
) -> None:
    from streamdesk.control import set_kill_switch

    c = pinned_client
    _quote(redis_url, 99.99, 100.01, int(CLOCK.time() * 1000) - 500)
    await _sql(
        db_url,
        "INSERT INTO account_balances (account_hash, cash, buying_power) VALUES ('H', 1e5, 1e5)",
    )
    assert c.post("/api/trades/preview", json=ORDER).json()["ok"] is True
    conn = await asyncpg.connect(db_url)
    try:
        await set_kill_switch(conn, True, reason="fat finger drill")
        refused = c.post("/api/trades", json=ORDER)
        assert refused.status_code == 403, refused.text
        assert refused.json() == {"detail": "the kill switch is engaged: fat finger drill"}
        preview = c.post("/api/trades/preview", json=ORDER).json()
        assert preview["ok"] is False
        assert [v["code"] for v in preview["violations"]] == ["kill_switch"]
        assert await _sql(db_url, "SELECT count(*) FROM trades") == 0
        await set_kill_switch(conn, False)
    finally:
        await conn.close()
    assert c.post("/api/trades", json=ORDER).status_code == 201
