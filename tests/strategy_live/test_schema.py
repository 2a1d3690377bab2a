"""Migration 0100's guarantees on a real database: one row per client order id, a strategy's
row is tagged consistently, an operator's own insert cannot pose as a strategy's."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.integration

INSERT = (
    "INSERT INTO trades (user_id, symbol, asset_type, instruction, quantity, order_type, "
    "limit_price, source) VALUES ($1, 'AAA', 'EQUITY', 'BUY', 1, 'LIMIT', 1, $2)"
)


async def test_client_order_id_and_tagging(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("INSERT INTO strategies (id, module) VALUES ('s', 'm:C')")
        ins = (
            "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type, source, "
            "strategy_id, client_order_id) VALUES ('AAA', 'EQUITY', 'BUY', 1, 'MARKET', $1, $2, "
            "$3) ON CONFLICT (client_order_id) WHERE client_order_id IS NOT NULL DO NOTHING "
            "RETURNING id"
        )
        assert await conn.fetchval(ins, "strategy", "s", "s:k1") is not None
        assert await conn.fetchval(ins, "strategy", "s", "s:k1") is None  # the same signal
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.fetchval(ins, "api", "s", "s:k2")  # a strategy row says so
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.fetchval(ins, "strategy", "s", None)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.fetchval(ins, "strategy", "nope", "nope:k")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO strategies (id, module) VALUES ('Bad Id', 'm:C')")
    finally:
        await conn.close()


async def test_an_operator_cannot_insert_as_a_strategy(db_url: str) -> None:
    op = uuid.uuid4()
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("INSERT INTO operators (user_id) VALUES ($1)", op)
        claims = json.dumps({"sub": str(op), "role": "authenticated"})
        for source, refused in (("strategy", True), ("api", False)):
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)
                await conn.execute("SET LOCAL ROLE authenticated")
                if refused:
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute(INSERT, op, source)
                else:
                    assert await conn.execute(INSERT, op, source) == "INSERT 0 1"
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # no column grant
                        await conn.execute(
                            "INSERT INTO trades (user_id, symbol, asset_type, instruction, "
                            "quantity, strategy_id) VALUES ($1, 'A', 'EQUITY', 'BUY', 1, 's')",
                            op,
                        )
            finally:
                await tr.rollback()
    finally:
        await conn.close()
