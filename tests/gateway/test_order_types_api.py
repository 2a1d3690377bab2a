"""Order types through the gateway: every request column reaches the ``trades`` row."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient
from supabase_project import Project

from streamdesk.constants import last_quote_key
from streamdesk.models import REQUEST_COLUMNS
from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.integration


def fresh_aapl_quote(redis_url: str) -> None:
    """AAPL 99.99 x 100.01, quoted now. ``now`` is the clock the gateway under test checks
    quote age with (``SYSTEM_CLOCK``): a relative age, the same at any hour."""
    r = redis.Redis.from_url(redis_url)
    r.hset(
        last_quote_key("AAPL"),
        mapping={"bid": 99.99, "ask": 100.01, "last": 100.0, "ts": int(time.time() * 1000)},
    )
    r.close()


async def test_stop_and_trailing_requests_keep_every_column(
    gateway_client: TestClient, db_url: str, redis_url: str
) -> None:
    fresh_aapl_quote(redis_url)
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


_BROKER_IDS = itertools.count(1)


async def _working(conn: asyncpg.Connection, **cols: object) -> int:
    """A row as the executor leaves it once the broker works it (plain SQL)."""
    values = {
        "symbol": "AAPL",
        "asset_type": "EQUITY",
        "instruction": "SELL",
        "quantity": 2,
        "status": "working",
        **cols,
    }
    values.setdefault("broker_order_id", f"B{next(_BROKER_IDS)}")
    names = ", ".join(values)
    params = ", ".join(f"${i + 1}" for i in range(len(values)))
    trade_id = await conn.fetchval(
        f"INSERT INTO trades ({names}) VALUES ({params}) RETURNING id", *values.values()
    )
    await conn.execute(
        "INSERT INTO trade_events (trade_id, from_status, to_status, reason) "
        "VALUES ($1, 'submitting', 'working', 'accepted')",
        trade_id,
    )
    return int(trade_id)


async def test_bracket_preview_lists_every_reason_and_refuses_bad_shapes(
    gateway_client: TestClient, db_url: str, redis_url: str
) -> None:
    conn = await asyncpg.connect(db_url)
    await conn.execute(
        "INSERT INTO account_balances (account_hash, cash, buying_power) VALUES ('H', 1e5, 1e5)"
    )
    await conn.close()
    fresh_aapl_quote(redis_url)
    base = {"symbol": "AAPL", "asset_type": "EQUITY", "instruction": "BUY", "quantity": 1}
    good = {**base, "order_type": "LIMIT", "limit_price": "100.00",
            "take_profit_price": "105.00", "stop_loss_price": "95.00"}  # fmt: skip
    ok = gateway_client.post("/api/trades/preview", json=good)
    assert ok.status_code == 200, ok.text
    assert [v["code"] for v in ok.json()["violations"]] == []
    # exits on the wrong sides: each one named
    crossed = {**good, "take_profit_price": "95.00", "stop_loss_price": "105.00"}
    out = gateway_client.post("/api/trades/preview", json=crossed).json()
    assert not out["ok"] and {v["code"] for v in out["violations"]} == {"bracket_sides"}
    assert len(out["violations"]) >= 2, out
    # shape errors: 422 with the field and a message without pydantic's prefix
    for body, word in (
        ({**base, "order_type": "STOP_LIMIT", "stop_price": "101"}, "limit_price"),
        ({**base, "order_type": "TRAILING_STOP", "trail_type": "VALUE"}, "trail_offset"),
        ({**base, "order_type": "LIMIT", "limit_price": "1", "trail_type": "BOGUS"}, "trail_type"),
        ({**base, "order_type": "STOP", "stop_price": "101", "take_profit_price": "110"}, "entry"),
        ({**base, "order_type": "MARKET", "stop_trigger": "BID"}, "stop_trigger"),
    ):
        for path in ("/api/trades/preview", "/api/trades"):
            resp = gateway_client.post(path, json=body)
            assert resp.status_code == 422, (path, body, resp.text)
            out = resp.json()
            assert out["error"] == "invalid trade" and word in " ".join(out["reasons"]), out
            assert not any("Value error" in reason for reason in out["reasons"]), out


async def test_entry_events_include_its_legs_and_list_carries_leg_columns(
    gateway_client: TestClient, db_url: str
) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        entry = await _working(
            conn, instruction="BUY", order_type="LIMIT", limit_price=100, leg="entry",
            take_profit_price=105, stop_loss_price=95,
        )  # fmt: skip
        tp = await _working(
            conn, order_type="LIMIT", limit_price=105, leg="take_profit", parent_id=entry,
            broker_status="AWAITING_PARENT_ORDER",
        )  # fmt: skip
        sl = await _working(
            conn, order_type="STOP", stop_price=95, leg="stop_loss", parent_id=entry,
            broker_status="AWAITING_PARENT_ORDER",
        )  # fmt: skip
        other = await _working(conn, symbol="SPY", order_type="LIMIT", limit_price=400)
    finally:
        await conn.close()
    detail = gateway_client.get(f"/api/trades/{entry}").json()
    assert [e["trade_id"] for e in detail["events"]] == [entry, tp, sl]
    assert gateway_client.get(f"/api/trades/{entry}/events").json() == detail["events"]
    assert [e["trade_id"] for e in gateway_client.get(f"/api/trades/{sl}/events").json()] == [sl]
    assert [e["trade_id"] for e in gateway_client.get(f"/api/trades/{other}").json()["events"]] == [
        other
    ]
    assert gateway_client.get("/api/trades/999999/events").status_code == 404
    rows = {t["id"]: t for t in gateway_client.get("/api/trades?status=open").json()}
    assert rows[sl]["parent_id"] == entry and rows[sl]["leg"] == "stop_loss"
    assert rows[sl]["broker_status"] == "AWAITING_PARENT_ORDER" and rows[sl]["stop_price"] == 95
    assert rows[entry]["leg"] == "entry" and rows[entry]["take_profit_price"] == 105


async def test_stop_move_answers_404_409_422_and_200(
    gateway_client: TestClient, db_url: str, redis_url: str
) -> None:
    fresh_aapl_quote(redis_url)
    conn = await asyncpg.connect(db_url)
    try:
        stop = await _working(conn, order_type="STOP", stop_price=95)
        stop_limit = await _working(
            conn, symbol="SPY", order_type="STOP_LIMIT", stop_price=390, limit_price=389
        )
        limit = await _working(conn, symbol="MSFT", order_type="LIMIT", limit_price=500)
        trailing = await _working(
            conn, symbol="NVDA", order_type="TRAILING_STOP", trail_type="VALUE", trail_offset=1
        )
        pending = await conn.fetchval(
            "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type, "
            "stop_price) VALUES ('QQQ', 'EQUITY', 'SELL', 1, 'STOP', 300) RETURNING id"
        )

        def move(trade_id: int, body: object) -> Any:
            return gateway_client.post(f"/api/trades/{trade_id}/stop", json=body)

        assert move(999_999, {"stop_price": 96}).status_code == 404
        for trade_id in (limit, trailing, pending):
            resp = move(trade_id, {"stop_price": 96})
            assert resp.status_code == 409, resp.text
            assert "only a working STOP or STOP_LIMIT" in resp.json()["detail"]
        for body, word in (
            ({"stop_price": 0}, "stop_price"),
            ({"stop_price": -1}, "stop_price"),
            ({"stop_price": "abc"}, "stop_price"),
            ({"stop_price": 1e12}, "stop_price"),
            ({}, "stop_price"),
            ({"stop_price": 96, "extra": 1}, "extra"),
        ):
            resp = move(stop, body)
            assert resp.status_code == 422, (body, resp.text)
            assert resp.json()["error"] == "invalid stop move"
            assert word in " ".join(resp.json()["reasons"]), resp.text
        for price, code in (("96.005", "bad_tick"), ("100.50", "stop_side")):
            resp = move(stop, {"stop_price": price})
            assert resp.status_code == 422, resp.text
            assert [v["code"] for v in resp.json()["reasons"]] == [code]
        # a stop-limit's trigger stays on the right side of its limit
        resp = move(stop_limit, {"stop_price": 380})
        assert resp.status_code == 422 and "stop_limit_collar" in resp.text, resp.text
        assert await conn.fetchval(
            "SELECT count(*) FROM trades WHERE replace_stop_price IS NOT NULL"
        ) == 0  # fmt: skip
        resp = move(stop, {"stop_price": "97.5"})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {
            "id": stop, "status": "working", "stop_price": 95.0, "replace_stop_price": 97.5
        }  # fmt: skip
        assert move(stop, {"stop_price": 98}).status_code == 200  # a newer one overwrites
        got = await conn.fetchrow(
            "SELECT status, stop_price, replace_stop_price FROM trades WHERE id = $1", stop
        )
        assert got is not None and tuple(got) == ("working", 95, 98)
        events = await conn.fetch(
            "SELECT from_status, to_status, reason, detail FROM trade_events "
            "WHERE trade_id = $1 ORDER BY id",
            stop,
        )
        assert [tuple(e)[:3] for e in events[1:]] == [
            ("working", "working", "stop move requested by the user")
        ] * 2
        assert json.loads(events[-1]["detail"]) == {"stop_price": 95, "replace_stop_price": 98}
    finally:
        await conn.close()


async def test_stop_move_is_for_operators_and_their_own_trades(
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    add_operator: Callable[[uuid.UUID], Awaitable[None]],
    db_url: str,
) -> None:
    operator, other, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await add_operator(operator)
    await add_operator(other)
    conn = await asyncpg.connect(db_url)
    try:
        mine = await _working(conn, order_type="STOP", stop_price=95, user_id=operator)
        theirs = await _working(conn, symbol="SPY", order_type="STOP", stop_price=95, user_id=other)
        settings = gateway_settings(
            supabase_url=supabase_project.url, supabase_jwt_secret=supabase_project.secret
        )
        with make_gateway_client(settings, authenticated=False) as c:

            def move(trade_id: int, user: uuid.UUID) -> Any:
                token = supabase_project.token(user)
                return c.post(
                    f"/api/trades/{trade_id}/stop",
                    json={"stop_price": "96"},
                    headers={"Authorization": f"Bearer {token}"},
                )

            resp = move(mine, stranger)
            assert resp.status_code == 403 and "not an operator" in resp.text, resp.text
            resp = move(theirs, operator)
            assert resp.status_code == 403 and "not yours" in resp.text, resp.text
            assert move(mine, operator).status_code == 200
        moved = await conn.fetch(
            "SELECT id FROM trades WHERE replace_stop_price IS NOT NULL ORDER BY id"
        )
        assert [m["id"] for m in moved] == [mine]
    finally:
        await conn.close()
