"""Row-level security on a real PostgreSQL, with Supabase's roles as created by 0001."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.integration

INSERT = (
    "INSERT INTO trades (user_id, symbol, asset_type, instruction, quantity, order_type, "
    "limit_price) VALUES ($1, 'AAPL', 'EQUITY', 'BUY', 1, 'LIMIT', 100)"
)


async def _as(conn: asyncpg.Connection, role: str, sub: uuid.UUID | None = None) -> None:
    await conn.execute("RESET ROLE")
    claim = str(sub) if sub else ""
    await conn.execute("SELECT set_config('request.jwt.claim.sub', $1, false)", claim)
    await conn.execute(f"SET ROLE {role}")


async def test_anon_cannot_insert_a_trade_but_reads_market_data(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            'INSERT INTO equity_data (ticker, "timestamp", price, volume) '
            "VALUES ('SPY', now(), 500, 10)"
        )
        await _as(conn, "anon")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(INSERT, uuid.uuid4())
        assert await conn.fetchval("SELECT count(*) FROM equity_data") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO equity_data (ticker, \"timestamp\", price) VALUES ('X', now(), 1)"
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM trades")
    finally:
        await conn.close()


async def test_authenticated_inserts_only_their_own_trades(db_url: str) -> None:
    me, other = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(db_url)
    try:
        await _as(conn, "authenticated", me)
        await conn.execute(INSERT, me)
        # user_id defaults to auth.uid() when the client leaves it out
        await conn.execute(
            "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type) "
            "VALUES ('MSFT', 'EQUITY', 'SELL', 2, 'MARKET')"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute(INSERT, other)
        # cannot smuggle a status or a broker order id in
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO trades (user_id, symbol, asset_type, instruction, quantity, "
                "order_type, status) VALUES ($1, 'AAPL', 'EQUITY', 'BUY', 1, 'MARKET', 'filled')",
                me,
            )
        rows = await conn.fetch("SELECT user_id, status FROM trades")
        assert {r["user_id"] for r in rows} == {me}
        assert len(rows) == 2

        await _as(conn, "authenticated", other)
        assert await conn.fetchval("SELECT count(*) FROM trades") == 0
    finally:
        await conn.close()


async def test_only_service_role_updates_status(db_url: str) -> None:
    me = uuid.uuid4()
    conn = await asyncpg.connect(db_url)
    try:
        await _as(conn, "authenticated", me)
        await conn.execute(INSERT, me)
        for sql in (
            "UPDATE trades SET status = 'filled'",
            "DELETE FROM trades",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        await _as(conn, "anon")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE trades SET status = 'filled'")

        await _as(conn, "service_role")
        assert await conn.execute("UPDATE trades SET status = 'working'") == "UPDATE 1"
        await conn.execute("RESET ROLE")
        assert await conn.fetchval("SELECT status FROM trades") == "working"
    finally:
        await conn.close()
