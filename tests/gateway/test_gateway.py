"""Gateway API on a real Postgres and Redis: history, trade submission with the shared risk
pre-check, cancellation, and the live feed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient

from streamdesk.constants import COMMITTED_CHANNEL, last_quote_key

pytestmark = pytest.mark.integration


@pytest.fixture
def client(gateway_client: TestClient) -> TestClient:
    return gateway_client


def _quote(redis_url: str, symbol: str, bid: float, ask: float, age_s: float = 0.0) -> None:
    r = redis.Redis.from_url(redis_url)
    ts = int((time.time() - age_s) * 1000)
    r.hset(
        last_quote_key(symbol), mapping={"bid": bid, "ask": ask, "last": (bid + ask) / 2, "ts": ts}
    )
    r.close()


async def _fetch(db_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def test_config_and_quotes(client: TestClient, redis_url: str) -> None:
    assert client.get("/api/config").json()["tickers"] == ["AAPL", "SPY"]
    _quote(redis_url, "AAPL", 99.99, 100.01)
    q = client.get("/api/quotes").json()
    assert q["AAPL"]["bid"] == 99.99 and "SPY" not in q
    assert "StreamDesk" in client.get("/").text


async def test_history_joins_prices_and_indicators(client: TestClient, db_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    conn = await asyncpg.connect(db_url)
    try:
        for i in range(3):
            ts = now - timedelta(seconds=3 - i)
            await conn.execute(
                'INSERT INTO equity_data (ticker, "timestamp", price, volume) '
                "VALUES ('AAPL', $1, $2, $3)",
                ts,
                100.0 + i,
                10 * i,
            )
            await conn.execute(
                'INSERT INTO indicators (ticker, "timestamp", sma9, vwap) '
                "VALUES ('AAPL', $1, $2, $3)",
                ts,
                99.0 + i,
                98.0 + i,
            )
    finally:
        await conn.close()
    h = client.get("/api/history/aapl?minutes=5").json()
    assert h["price"] == [100.0, 101.0, 102.0]
    assert h["sma9"] == [99.0, 100.0, 101.0] and h["vwap"] == [98.0, 99.0, 100.0]
    assert h["t"] == sorted(h["t"])


async def test_submit_validates_and_prechecks(
    client: TestClient, db_url: str, redis_url: str
) -> None:
    bad = client.post(
        "/api/trades",
        json={
            "symbol": "AAPL",
            "asset_type": "EQUITY",
            "instruction": "BUY_TO_OPEN",
            "quantity": 1,
            "order_type": "LIMIT",
            "limit_price": 100,
        },
    )
    assert bad.status_code == 422
    assert "not an equity instruction" in str(bad.json()["reasons"])

    order = {
        "symbol": "AAPL",
        "asset_type": "EQUITY",
        "instruction": "BUY",
        "quantity": 5,
        "order_type": "LIMIT",
        "limit_price": "100.00",
    }
    no_quote = client.post("/api/trades", json=order)
    assert no_quote.status_code == 422
    assert "quote" in str(no_quote.json()["reasons"]).lower()

    _quote(redis_url, "AAPL", 99.99, 100.01)
    unknown_bp = client.post("/api/trades", json=order)
    assert unknown_bp.status_code == 422
    assert "buying_power_unknown" in str(unknown_bp.json()["reasons"])
    await _fetch(
        db_url,
        "INSERT INTO account_balances (account_hash, cash, buying_power) "
        "VALUES ('H', 100000, 100000)",
    )
    ok = client.post("/api/trades", json=order)
    assert ok.status_code == 201, ok.text
    trade = ok.json()
    assert trade["status"] == "pending" and trade["quantity"] == 5

    far = client.post("/api/trades", json={**order, "limit_price": "150.00"})
    assert far.status_code == 422
    assert any(r["code"] for r in far.json()["reasons"])

    rows = await _fetch(db_url, "SELECT symbol, status, source FROM trades")
    assert [tuple(r) for r in rows] == [("AAPL", "pending", "gateway")]

    cancel = client.post(f"/api/trades/{trade['id']}/cancel")
    assert cancel.json()["status"] == "cancelled"
    again = client.post(f"/api/trades/{trade['id']}/cancel")
    assert again.status_code == 409
    detail = client.get(f"/api/trades/{trade['id']}").json()
    assert [e["to_status"] for e in detail["events"]] == ["cancelled"]
    assert client.get("/api/trades/999999").status_code == 404


def test_live_feed_forwards_committed_messages(client: TestClient, redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    try:
        with client.websocket_connect("ws://127.0.0.1:8080/ws") as ws:
            deadline = time.monotonic() + 10
            # The subscription starts with the app; publish until a subscriber receives it.
            while r.publish(COMMITTED_CHANNEL, '{"type":"flush","n":1}') == 0:
                assert time.monotonic() < deadline, "gateway never subscribed"
                time.sleep(0.05)
            assert ws.receive_json() == {"type": "flush", "n": 1}
    finally:
        r.close()
