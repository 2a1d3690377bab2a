"""Migration 0090 on a real PostgreSQL (docs/order-types.md, "Rows"): the order-type columns and
their CHECKs, legs outside the one-unsettled-order index, what an operator may insert under
RLS, the replace NOTIFY and the streamdesk_replace_stop RPC."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from rls_helpers import (
    ANON,
    OP,
    OPERATOR,
    OTHER_OPERATOR,
    SERVICE,
    USER,
    Who,
    as_who,
    connect,
    seed,
)

pytestmark = pytest.mark.integration

BASE = "symbol, asset_type, instruction, quantity"


@pytest.fixture
async def conn(db_url: str) -> Any:
    c = await connect(db_url)
    try:
        yield c
    finally:
        await c.close()


async def test_operator_inserts_the_new_request_columns(conn: asyncpg.Connection) -> None:
    await seed(conn)
    async with as_who(conn, OP):
        row = await conn.fetchrow(
            f"INSERT INTO trades ({BASE}, order_type, limit_price, take_profit_price, "
            "stop_loss_price) VALUES ('AAPL', 'EQUITY', 'BUY', 1, 'LIMIT', 100, 110, 95) "
            "RETURNING user_id, status, leg, parent_id, broker_status, replace_stop_price"
        )
        assert row is not None and tuple(row) == (OPERATOR, "pending", "single", None, None, None)
        row = await conn.fetchrow(
            f"INSERT INTO trades ({BASE}, order_type, limit_price, trail_type, trail_offset, "
            "stop_trigger, stop_price) VALUES ('MSFT', 'EQUITY', 'SELL', 1, 'TRAILING_STOP', "
            "NULL, 'PERCENT', 2.5, 'BID', NULL) RETURNING status"
        )
        assert row is not None and row["status"] == "pending"
        for column, value in (
            ("parent_id", "1"),
            ("leg", "'entry'"),
            ("broker_status", "'WORKING'"),
            ("replace_stop_price", "99"),
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                async with conn.transaction():
                    await conn.execute(
                        f"INSERT INTO trades ({BASE}, {column}) "
                        f"VALUES ('AAPL', 'EQUITY', 'BUY', 1, {value})"
                    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with as_who(conn, USER):
            await conn.execute(
                f"INSERT INTO trades ({BASE}, order_type, stop_price) "
                "VALUES ('AAPL', 'EQUITY', 'SELL', 1, 'STOP', 90)"
            )


async def test_checks_and_legs_outside_the_unsettled_index(conn: asyncpg.Connection) -> None:
    for cols, values in (
        ("order_type", "'TRAILING_STOP_LIMIT'"),
        ("trail_type", "'TICK'"),
        ("trail_offset", "0"),
        ("stop_trigger", "'STANDARD'"),
        ("leg", "'exit'"),
        ("leg", "'take_profit'"),  # a leg without an entry
        ("replace_stop_price", "-1"),
    ):
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                f"INSERT INTO trades ({BASE}, {cols}) VALUES ('AAPL', 'EQUITY', 'BUY', 1, {values})"
            )
    entry = await conn.fetchval(
        f"INSERT INTO trades ({BASE}, leg, status, account_hash, submitted_at) "
        "VALUES ('IDX', 'EQUITY', 'BUY', 1, 'entry', 'working', 'acct', now()) RETURNING id"
    )
    with pytest.raises(asyncpg.CheckViolationError):  # an entry has no parent
        await conn.execute(
            f"INSERT INTO trades ({BASE}, leg, parent_id) "
            "VALUES ('IDX', 'EQUITY', 'SELL', 1, 'entry', $1)",
            entry,
        )
    for leg, kind in (("take_profit", "LIMIT"), ("stop_loss", "STOP")):
        await conn.execute(
            f"INSERT INTO trades ({BASE}, order_type, leg, parent_id, status, account_hash, "
            "submitted_at) VALUES ('IDX', 'EQUITY', 'SELL', 1, $1, $2, $3, 'working', 'acct', "
            "now())",
            kind,
            leg,
            entry,
        )
    assert await conn.fetchval("SELECT count(*) FROM trades WHERE parent_id = $1", entry) == 2
    with pytest.raises(asyncpg.UniqueViolationError, match="trades_one_unsettled_per_symbol"):
        await conn.execute(
            f"INSERT INTO trades ({BASE}, status, account_hash) "
            "VALUES ('IDX', 'EQUITY', 'BUY', 1, 'submitting', 'acct')"
        )


async def _replace(conn: asyncpg.Connection, who: Who, trade_id: int, price: Any) -> Any:
    async with as_who(conn, who, commit=True):
        raw = await conn.fetchval("SELECT streamdesk_replace_stop($1, $2)", trade_id, price)
    return json.loads(raw)


async def _stop(conn: asyncpg.Connection, owner: Any, status: str, kind: str = "STOP") -> int:
    limit = "94" if kind in ("STOP_LIMIT", "LIMIT") else "NULL"
    stop = "NULL" if kind == "LIMIT" else "95"
    trade_id: int = await conn.fetchval(
        f"INSERT INTO trades (user_id, {BASE}, order_type, limit_price, stop_price, status) "
        f"VALUES ($1, 'S' || (random() * 1e9)::bigint, 'EQUITY', 'SELL', 1, $2, {limit}, {stop}, "
        "$3) RETURNING id",
        owner,
        kind,
        status,
    )
    return trade_id


async def test_replace_stop_rpc_sets_the_request_and_wakes_the_executor(
    conn: asyncpg.Connection,
) -> None:
    await seed(conn)
    woken: list[str] = []

    def on_notify(*args: Any) -> None:
        woken.append(str(args[3]))

    await conn.add_listener("streamdesk_trades", on_notify)
    try:
        for kind in ("STOP", "STOP_LIMIT"):
            trade_id = await _stop(conn, OPERATOR, "working", kind)
            got = await _replace(conn, OP, trade_id, 97.5)
            assert got == {"id": trade_id, "status": "working", "replace_stop_price": 97.5}
            row = await conn.fetchrow(
                "SELECT status, stop_price, replace_stop_price FROM trades WHERE id = $1", trade_id
            )
            assert row is not None and tuple(map(str, row)) == ("working", "95", "97.5")
            ev = await conn.fetchrow(
                "SELECT from_status, to_status, reason, detail FROM trade_events "
                "WHERE trade_id = $1 ORDER BY id DESC LIMIT 1",
                trade_id,
            )
            assert ev is not None
            assert (ev["from_status"], ev["to_status"]) == ("working", "working")
            assert ev["reason"] == "stop move requested by the user"
            assert json.loads(ev["detail"]) == {"stop_price": 95, "replace_stop_price": 97.5}
            for _ in range(100):
                if f"{trade_id}:replace_stop" in woken:
                    break
                await asyncio.sleep(0.01)
            assert f"{trade_id}:replace_stop" in woken
        # the executor clearing it does not wake anyone
        woken.clear()
        await conn.execute("UPDATE trades SET replace_stop_price = NULL WHERE id = $1", trade_id)
        await asyncio.sleep(0.05)
        assert not any(w.endswith(":replace_stop") for w in woken)
    finally:
        await conn.remove_listener("streamdesk_trades", on_notify)


async def test_replace_stop_rpc_refusals(conn: asyncpg.Connection) -> None:
    await seed(conn)
    mine = await _stop(conn, OPERATOR, "working")

    async def refused(who: Who, trade_id: int, price: Any = 97) -> tuple[str, str]:
        with pytest.raises(asyncpg.PostgresError) as info:
            await _replace(conn, who, trade_id, price)
        return info.value.sqlstate, str(info.value)

    theirs = await _stop(conn, OTHER_OPERATOR, "working")
    assert await refused(OP, theirs) == ("42501", f"trade {theirs} is not yours")
    assert await refused(OP, 987654321) == ("P0002", "no trade 987654321")
    code, msg = await refused(USER, mine)
    assert code == "42501" and "only operators may move stops" in msg
    for who in (ANON, SERVICE):
        code, msg = await refused(who, mine)
        assert code == "42501" and "permission denied for function" in msg
    for status, kind in (
        ("pending", "STOP"),
        ("filled", "STOP"),
        ("working", "LIMIT"),
        ("cancel_requested", "STOP"),
    ):
        other = await _stop(conn, OPERATOR, status, kind)
        code, msg = await refused(OP, other)
        assert code == "PT409", (status, kind)
        assert "only a working STOP or STOP_LIMIT can be moved" in msg
    for price in (None, 0, -1, 10**10):
        code, _ = await refused(OP, mine, price)
        assert code == "22023", price
    row = await conn.fetchrow("SELECT replace_stop_price FROM trades WHERE id = $1", mine)
    assert row is not None and row["replace_stop_price"] is None
    assert await conn.fetchval("SELECT count(*) FROM trade_events WHERE trade_id = $1", mine) == 0
