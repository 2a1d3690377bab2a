"""Option chain, fills, P&L and CSV export on a real Postgres and Redis (fixed dates)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient
from market_data import Data, build, ms, write

from streamdesk.clock import ManualClock
from streamdesk.constants import last_quote_key
from streamdesk_indicators.writer import Batch, Writer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # 14:00 New York
CALL = "SPY   260320C00500000"
PUT = "SPY   260320P00500000"
LATER = "SPY   260417C00510000"
EXPIRED = "SPY   260306C00500000"


def _opt(sym: str, at: datetime, exp: date, last: float, upx: float) -> tuple[Any, ...]:
    typ = "CALL" if "C0" in sym else "PUT"
    strike = float(sym[-8:]) / 1000
    return (sym, ms(at), "SPY", typ, strike, exp, last, last - 0.05, last + 0.05, 0.5, 0.02,
            -0.1, 0.3, 0.01, 0.25, 10, 1000, upx, False)  # fmt: skip


@pytest.fixture
async def data(db_url: str) -> Data:
    d = build()
    await write(db_url, d)
    t1 = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    t2 = datetime(2026, 3, 10, 14, 0, 5, tzinfo=UTC)
    opts = [
        _opt(CALL, t1, date(2026, 3, 20), 5.0, 500.0),
        _opt(CALL, t2, date(2026, 3, 20), 5.5, 501.0),  # newer: the chain shows this one
        _opt(PUT, t1, date(2026, 3, 20), 4.0, 500.0),
        _opt(LATER, t2, date(2026, 4, 17), 3.0, 501.0),
        _opt(EXPIRED, t1, date(2026, 3, 6), 0.1, 500.0),
    ]
    writer = Writer(db_url)
    try:
        await writer.commit(Batch(options=opts, days={o[1] // 86_400_000 for o in opts}))
    finally:
        await writer.close()
    return d


@pytest.fixture
def client(
    data: Data, gateway_settings: Callable[..., Any], make_gateway_client: Callable[..., Any]
) -> Iterator[TestClient]:
    with make_gateway_client(gateway_settings(), clock=ManualClock(NOW)) as c:
        yield c


def test_option_chain_is_an_object_with_expirations(client: TestClient) -> None:
    body = client.get("/api/options/spy").json()
    assert body["underlying"] == "SPY"
    assert body["expirations"] == ["2026-03-20", "2026-04-17"]
    assert [c["ticker"] for c in body["contracts"]] == [CALL, PUT, LATER]
    call = body["contracts"][0]
    assert call["last_price"] == 5.5 and call["ts"] == ms(datetime(2026, 3, 10, 14, 0, 5,
                                                                  tzinfo=UTC))  # fmt: skip
    assert call["option_type"] == "CALL" and call["strike_price"] == 500.0
    assert call["open_interest"] == 1000 and call["implied_volatility"] == 0.25
    assert body["underlying_price"] == 501.0  # no live quote: the newest contract row's
    assert client.get("/api/options/QQQ").json() == {
        "underlying": "QQQ", "underlying_price": None, "expirations": [], "contracts": []
    }  # fmt: skip


async def _trade(
    conn: asyncpg.Connection, sym: str, kind: str, instr: str, qty: int, px: str, at: datetime
) -> int:
    tid = await conn.fetchval(
        "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type, limit_price, "
        "status, filled_quantity, avg_fill_price, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, 'LIMIT', $5::numeric, 'filled', $4, $5::numeric, $6, $6) "
        "RETURNING id",
        sym,
        kind,
        instr,
        qty,
        px,
        at,
    )
    await conn.execute(
        "INSERT INTO trade_events (trade_id, at, from_status, to_status, reason) "
        "VALUES ($1, $2, 'working', 'filled', 'broker reports FILLED')",
        tid,
        at,
    )
    return int(tid)


async def test_fills_and_pnl(client: TestClient, db_url: str, redis_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        y = datetime(2026, 3, 9, 15, tzinfo=UTC)
        await _trade(conn, "AAPL", "EQUITY", "BUY", 10, "100", y)  # yesterday
        h14 = datetime(2026, 3, 10, 14, tzinfo=UTC)
        h15 = datetime(2026, 3, 10, 15, tzinfo=UTC)
        t1 = await _trade(conn, "AAPL", "EQUITY", "BUY", 10, "110", h14)
        t2 = await _trade(conn, "AAPL", "EQUITY", "SELL", 5, "120", h15)
        await _trade(conn, CALL, "OPTION", "BUY_TO_OPEN", 2, "5.00", h14)
        await conn.execute(
            "INSERT INTO positions (account_hash, symbol, asset_type, quantity, average_price, "
            "day_pnl) VALUES ('H', 'AAPL', 'EQUITY', 15, 105, 42.5), "
            "('H', $1, 'OPTION', 2, 5.00, NULL)",
            CALL,
        )
        await conn.execute(
            "INSERT INTO account_balances (account_hash, cash, buying_power, liquidation_value) "
            "VALUES ('H', 1000, 2000, 5000)"
        )
    finally:
        await conn.close()
    fills = client.get("/api/fills/aapl").json()  # today by the app's clock
    assert [(f["trade_id"], f["instruction"], f["quantity"], f["price"]) for f in fills] == [
        (t1, "BUY", 10.0, 110.0),
        (t2, "SELL", 5.0, 120.0),
    ]
    assert fills[0]["t"] == ms(datetime(2026, 3, 10, 14, tzinfo=UTC))
    assert len(client.get("/api/fills/AAPL?session=2026-03-09").json()) == 1
    assert client.get("/api/fills/SPY%20%20%20260320C00500000").json()[0]["quantity"] == 2.0

    r = redis.Redis.from_url(redis_url)
    try:
        r.hset(last_quote_key("AAPL"), mapping={"bid": 111, "ask": 113, "last": 112,
                                                "ts": ms(NOW)})  # fmt: skip
    finally:
        r.close()
    pnl = client.get("/api/pnl").json()
    # average cost: 10 @ 100 + 10 @ 110 -> 105; selling 5 @ 120 today realizes 75
    assert pnl["realized_today"] == 75.0
    aapl, opt = sorted(pnl["positions"], key=lambda p: p["asset_type"])
    assert aapl["mark"] == 112.0 and aapl["unrealized"] == (112 - 105) * 15
    assert aapl["market_value"] == 112 * 15 and aapl["day_pnl"] == 42.5
    # no live quote for the contract: marked at its newest stored last price (5.5)
    assert opt["mark"] == 5.5 and opt["unrealized"] == pytest.approx(0.5 * 2 * 100)
    assert opt["day_pnl"] is None
    assert pnl["unrealized_total"] == pytest.approx(105 + 100)
    assert pnl["day_pnl_total"] == 42.5
    assert pnl["balances"] == {"cash": 1000.0, "buying_power": 2000.0, "liquidation_value": 5000.0}


def test_pnl_without_anything(client: TestClient) -> None:
    assert client.get("/api/pnl").json() == {
        "positions": [], "realized_today": 0.0, "unrealized_total": 0.0, "day_pnl_total": 0.0,
        "balances": None,
    }  # fmt: skip


def test_csv_export(client: TestClient, data: Data) -> None:
    resp = client.get("/api/export/equity.csv?session=2026-03-09&ticker=aapl")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert (
        resp.headers["content-disposition"]
        == 'attachment; filename="streamdesk-equity-2026-03-09-AAPL.csv"'
    )
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == ["ticker", "timestamp", "price", "volume", "bid", "ask", "cum_volume"]
    assert len(rows) == 1 + len(data.a)
    first = data.a[0]
    assert rows[1][:4] == ["AAPL", "2026-03-09T14:00:00.000Z", str(first.price), str(first.volume)]
    assert rows[-1][6] == str(data.a[-1].cum)
    ind = list(
        csv.reader(io.StringIO(client.get("/api/export/indicators.csv?session=2026-03-10").text))
    )
    assert ind[0] == ["ticker", "timestamp", "sma9", "vwap", "ema9"] and len(ind) == 1 + len(data.b)
    opts = client.get("/api/export/options.csv?session=2026-03-10&ticker=SPY")
    lines = list(csv.reader(io.StringIO(opts.text)))
    assert lines[0][:3] == ["ticker", "timestamp", "underlying"] and len(lines) == 1 + 5
    # today (the app's clock) by default; no rows is a header alone
    today = client.get("/api/export/equity.csv")
    assert 'filename="streamdesk-equity-2026-03-10.csv"' in today.headers["content-disposition"]
    assert len(today.text.splitlines()) == 1 + len(data.b)
    empty = client.get("/api/export/equity.csv?session=2026-03-08")
    assert empty.text.splitlines() == ["ticker,timestamp,price,volume,bid,ask,cum_volume"]
