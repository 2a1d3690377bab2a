"""Order types through the gateway: every request column reaches the ``trades`` row."""

from __future__ import annotations

import time
from decimal import Decimal

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient

from streamdesk.constants import last_quote_key
from streamdesk.models import REQUEST_COLUMNS

pytestmark = pytest.mark.integration


async def test_stop_and_trailing_requests_keep_every_column(
    gateway_client: TestClient, db_url: str, redis_url: str
) -> None:
    r = redis.Redis.from_url(redis_url)
    r.hset(
        last_quote_key("AAPL"),
        mapping={"bid": 99.99, "ask": 100.01, "last": 100.0, "ts": int(time.time() * 1000)},
    )
    r.close()
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO account_balances (account_hash, cash, buying_power) "
            "VALUES ('H', 100000, 100000)"
        )
        base = {"symbol": "AAPL", "asset_type": "EQUITY", "instruction": "SELL", "quantity": 2}
        stop = {**base, "order_type": "STOP_LIMIT", "stop_price": "96.00", "limit_price": "95.90"}
        trail = {
            **base,
            "order_type": "TRAILING_STOP",
            "trail_type": "PERCENT",
            "trail_offset": "2",
            "stop_trigger": "BID",
        }
        for body in (stop, trail):
            resp = gateway_client.post("/api/trades", json=body)
            assert resp.status_code == 201, resp.text
            out = resp.json()
            assert out["leg"] == "single" and out["parent_id"] is None
            row = await conn.fetchrow(
                f"SELECT {', '.join(REQUEST_COLUMNS)} FROM trades WHERE id = $1", out["id"]
            )
            assert row is not None
            for name, value in body.items():
                got = row[name]
                want = Decimal(value) if isinstance(got, Decimal) else value
                assert got == want, (name, got, want)
        listed = gateway_client.get("/api/trades").json()
        assert {t["order_type"] for t in listed} >= {"STOP_LIMIT", "TRAILING_STOP"}
        assert any(t["stop_price"] == 96.0 and t["limit_price"] == 95.9 for t in listed)
        # a stop that fails the shape rules is a 422 with the reason, nothing inserted
        before = await conn.fetchval("SELECT count(*) FROM trades")
        bad = gateway_client.post("/api/trades", json={**base, "order_type": "STOP"})
        assert bad.status_code == 422 and "stop_price" in bad.text
        assert await conn.fetchval("SELECT count(*) FROM trades") == before
    finally:
        await conn.close()
