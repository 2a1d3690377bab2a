"""Market-data reads on a real Postgres and Redis: candles at every timeframe against a hand
computation, the point cap, the default and previous sessions, signals, quotes, bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient
from market_data import (
    OLD_DAY,
    SESSION_A,
    SESSION_B,
    SPIKE_MINUTE,
    Data,
    Second,
    build,
    expected_crosses,
    ms,
    write,
)

from streamdesk.clock import ManualClock
from streamdesk.constants import last_quote_key
from streamdesk.control import add_symbol, remove_symbol, set_kill_switch

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


@pytest.fixture
async def data(db_url: str) -> Data:
    d = build()
    await write(db_url, d)
    return d


@pytest.fixture
def client(
    data: Data, gateway_settings: Callable[..., Any], make_gateway_client: Callable[..., Any]
) -> Iterator[TestClient]:
    with make_gateway_client(
        gateway_settings(option_underlyings="SPY"), clock=ManualClock(NOW)
    ) as c:
        yield c


def _bucket(seconds: list[Second], width_ms: int) -> list[dict[str, Any]]:
    """Hand aggregation of per-second rows into buckets of ``width_ms`` (epoch-aligned)."""
    out: dict[int, list[Second]] = {}
    for s in seconds:
        out.setdefault(s.ts - s.ts % width_ms, []).append(s)
    return [
        {
            "t": t,
            "o": g[0].price,
            "h": max(s.price for s in g),
            "l": min(s.price for s in g),
            "c": g[-1].price,
            "v": sum(s.volume for s in g),
            "sma9": g[-1].sma9,
            "vwap": g[-1].vwap,
        }
        for t, g in sorted(out.items())
    ]


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("t", "o", "h", "l", "c", "v", "sma9", "vwap")
    return [
        dict(zip(keys, vals, strict=True)) for vals in zip(*(body[k] for k in keys), strict=True)
    ]


def _with_spike(expected: list[dict[str, Any]], width_ms: int) -> list[dict[str, Any]]:
    spike_t = ms(SESSION_B) + SPIKE_MINUTE * 60_000
    for row in expected:
        if row["t"] <= spike_t < row["t"] + width_ms:
            row["h"] = 250.0
    return expected


@pytest.mark.parametrize(("tf", "width"), [("1m", 60), ("5m", 300), ("15m", 900), ("1h", 3600)])
def test_candles_match_a_hand_aggregation(
    client: TestClient, data: Data, tf: str, width: int
) -> None:
    body = client.get(f"/api/candles/aapl?tf={tf}").json()
    assert body["ticker"] == "AAPL" and body["tf"] == tf and body["session"] == "2026-03-10"
    expected = _with_spike(_bucket(data.b, width * 1000), width * 1000)
    assert _rows(body) == expected


def test_one_second_candles_and_the_cap_keeps_the_last(client: TestClient, data: Data) -> None:
    full = client.get("/api/candles/AAPL?tf=1s&session=2026-03-10&limit=5000").json()
    assert _rows(full) == _bucket(data.b, 1000)
    last = client.get("/api/candles/AAPL?tf=1s&limit=50").json()
    assert last["t"] == [s.ts for s in data.b[-50:]]
    assert last["c"] == [s.price for s in data.b[-50:]]
    three = client.get("/api/candles/AAPL?tf=1m&limit=3").json()
    assert three["t"] == [ms(SESSION_B) + m * 60_000 for m in (12, 13, 14)]


def test_previous_session_and_daily_candles(client: TestClient, data: Data) -> None:
    prev = client.get("/api/candles/AAPL?tf=5m&session=2026-03-09").json()
    assert prev["session"] == "2026-03-09"
    assert _rows(prev) == _bucket(data.a, 300_000)
    daily = client.get("/api/candles/AAPL?tf=1D").json()
    ny_midnight = [datetime(2026, 3, d, 5 if d < 8 else 4, tzinfo=UTC) for d in (6, 9, 10)]
    assert daily["t"] == [ms(t) for t in ny_midnight]
    old, a, b = _rows(daily)
    assert old == {"t": ms(ny_midnight[0]), "o": 80.0, "h": 83.0, "l": 79.0, "c": 82.5,
                   "v": 300, "sma9": None, "vwap": None}  # fmt: skip
    assert a == {**_bucket(data.a, 86_400_000)[0], "t": ms(ny_midnight[1])}
    assert b == {**_bucket(data.b, 86_400_000)[0], "t": ms(ny_midnight[2]), "h": 250.0}
    capped = client.get("/api/candles/AAPL?tf=1D&limit=2&session=2026-03-09").json()
    assert capped["t"] == [ms(ny_midnight[0]), ms(ny_midnight[1])]
    none = client.get("/api/candles/AAPL?tf=1m&session=2026-03-08").json()
    assert none["session"] == "2026-03-08" and none["t"] == []
    unknown = client.get("/api/candles/MSFT?tf=1m").json()
    assert unknown["session"] is None and unknown["t"] == []


def test_sessions_ascending(client: TestClient) -> None:
    body = client.get("/api/sessions/aapl").json()
    assert body == {"ticker": "AAPL", "sessions": ["2026-03-06", "2026-03-09", "2026-03-10"]}
    assert client.get("/api/sessions/MSFT").json()["sessions"] == []


def test_signals_on_a_crafted_crossing_series(client: TestClient, data: Data) -> None:
    body = client.get("/api/signals/AAPL?session=2026-03-10").json()
    got = [(c["t"], c["price"], c["direction"]) for c in body["crosses"]]
    want = expected_crosses(data.b)
    assert got == want
    # the touch at i=500 is no cross; the cross is the next second
    assert [t for t, _, _ in want][:5] == [data.b[i].ts for i in (100, 200, 300, 400, 501)]
    assert [d for _, _, d in want][:2] == ["up", "down"]
    assert client.get("/api/signals/AAPL").json()["session"] == "2026-03-10"
    assert client.get("/api/signals/AAPL?session=2026-03-09").json()["crosses"] == []


def test_quotes_with_volume_previous_close_and_indicators(
    client: TestClient, data: Data, redis_url: str
) -> None:
    r = redis.Redis.from_url(redis_url)
    try:
        r.hset(last_quote_key("AAPL"), mapping={"bid": 100, "ask": 100.2, "last": 100.1,
                                                "ts": ms(NOW)})  # fmt: skip
    finally:
        r.close()
    q = client.get("/api/quotes").json()
    assert set(q) == {"AAPL"}  # SPY has neither a quote nor data
    aapl = q["AAPL"]
    assert aapl["bid"] == 100 and aapl["last"] == 100.1 and aapl["ts"] == ms(NOW)
    assert aapl["volume"] == data.b[-1].cum
    assert aapl["prev_close"] == data.a[-1].price  # last bar of 2026-03-09
    assert aapl["sma9"] == data.b[-1].sma9 and aapl["vwap"] == data.b[-1].vwap


def test_config_lists_underlyings_and_kill_switch(client: TestClient) -> None:
    cfg = client.get("/api/config").json()
    assert cfg["tickers"] == ["AAPL", "SPY"]
    assert cfg["option_underlyings"] == ["SPY"]
    assert cfg["kill_switch"] is False and cfg["trading_mode"] == "paper"


BAD_PATHS = [
    "/api/candles/AAPL?tf=2m",
    "/api/candles/AAPL?tf=1d",
    "/api/candles/AA$PL",
    "/api/candles/ABCDEFGHIJKLM",
    "/api/candles/AAPL?session=2026-13-01",
    "/api/candles/AAPL?session=2026-02-30",
    "/api/candles/AAPL?session=20260310",
    "/api/candles/AAPL?session=9999-12-31",
    "/api/candles/AAPL?session=0001-01-01",
    "/api/candles/AAPL?limit=0",
    "/api/candles/AAPL?limit=99999999999999999999999",
    "/api/candles/AAPL?limit=ten",
    "/api/signals/AAPL?session=yesterday",
    "/api/sessions/-AAPL",
    "/api/gaps?since=-1",
    "/api/gaps?limit=100000",
    "/api/options/SP%20Y",
    "/api/export/trades.csv",
    "/api/export/equity.csv?session=2026-1-1",
    "/api/fills/AAPL?session=2026-02-29",
]


def test_bad_parameters_are_422(
    gateway_settings: Callable[..., Any], make_gateway_client: Callable[..., Any]
) -> None:
    with make_gateway_client(gateway_settings(), clock=ManualClock(NOW)) as client:
        for path in BAD_PATHS:
            resp = client.get(path)
            assert resp.status_code == 422, (path, resp.status_code, resp.text)


def test_every_market_route_documents_its_response(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in ("/api/candles/{ticker}", "/api/signals/{ticker}", "/api/sessions/{ticker}",
                 "/api/quotes", "/api/config", "/api/pnl", "/api/options/{underlying}",
                 "/api/gaps", "/api/fills/{symbol}"):  # fmt: skip
        op = doc["paths"][path]["get"]
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema, path
        if "{" in path or path == "/api/gaps":
            assert "422" in op["responses"], path
    candles = doc["components"]["schemas"]["CandlesOut"]["properties"]
    assert {"t", "o", "h", "l", "c", "v", "sma9", "vwap", "session"} <= set(candles)


def test_old_day_bars_outlive_seconds(client: TestClient) -> None:
    body = client.get("/api/candles/AAPL?tf=1m&session=2026-03-06").json()
    assert body["t"] == [ms(OLD_DAY) + m * 60_000 for m in range(3)]
    assert body["sma9"] == [None, None, None]
    assert client.get("/api/candles/AAPL?tf=1s&session=2026-03-06").json()["t"] == []
    assert ms(SESSION_A) < ms(SESSION_B)


async def test_config_and_quotes_follow_the_persisted_universe_and_kill_switch(
    client: TestClient, db_url: str
) -> None:
    assert client.get("/api/config").json()["tickers"] == ["AAPL", "SPY"]  # seeded
    conn = await asyncpg.connect(db_url)
    try:
        await remove_symbol(conn, "equity", "AAPL")
        await add_symbol(conn, "equity", "MSFT")
        await set_kill_switch(conn, True, reason="test")
    finally:
        await conn.close()
    cfg = client.get("/api/config").json()
    assert cfg["tickers"] == ["MSFT", "SPY"] and cfg["kill_switch"] is True
    assert "AAPL" not in client.get("/api/quotes").json()
