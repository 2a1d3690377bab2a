"""Supabase mode on a real PostgreSQL: operators' trade inserts, the cancel RPC, Realtime's
receive policies per topic and the trades broadcast trigger (migrations 0081, 0082).

Identities and Realtime's join check are set up as PostgREST and Realtime do (rls_helpers).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from rls_helpers import (
    ANON,
    NON_OPERATOR,
    OP,
    OP2,
    OPERATOR,
    OTHER_OPERATOR,
    SERVICE,
    USER,
    Who,
    as_who,
    connect,
    may_join,
    seed,
)

pytestmark = pytest.mark.integration

REQUEST = (
    "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type, limit_price) "
    "VALUES ('AAPL', 'EQUITY', 'BUY', 1, 'LIMIT', 100) RETURNING id, user_id, status"
)
#: The gateway's cancel (services/gateway/.../routes_trades.py) writes these reasons.
GATEWAY_REASONS = {
    "cancelled": "cancelled by the user before submission",
    "cancel_requested": "cancel requested by the user",
}
PAYLOAD_KEYS = {
    "id",
    "symbol",
    "status",
    "filled_quantity",
    "avg_fill_price",
    "error",
    "updated_at",
}


@pytest.fixture
async def conn(db_url: str) -> Any:
    c = await connect(db_url)
    try:
        yield c
    finally:
        await c.close()


async def test_operator_inserts_pending_trades_for_themself_only(conn: asyncpg.Connection) -> None:
    await seed(conn)
    async with as_who(conn, OP):
        row = await conn.fetchrow(REQUEST)  # user_id defaults to auth.uid()
        assert row is not None and row["user_id"] == OPERATOR and row["status"] == "pending"
        for sql, args in (
            (
                "INSERT INTO trades (user_id, symbol, asset_type, instruction, quantity) "
                "VALUES ($1, 'AAPL', 'EQUITY', 'BUY', 1)",
                [OTHER_OPERATOR],
            ),
            (
                "INSERT INTO trades (user_id, symbol, asset_type, instruction, quantity) "
                "VALUES (NULL, 'AAPL', 'EQUITY', 'BUY', 1)",
                [],
            ),
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                async with conn.transaction():
                    await conn.execute(sql, *args)
        for column, value in (
            ("status", "'filled'"),
            ("broker_order_id", "'X1'"),
            ("account_hash", "'acct'"),
            ("notional", "1"),
            ("claimed_by", "'me'"),
            ("id", "123456"),
            ("submitted_at", "now()"),
            ("filled_quantity", "1"),
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                async with conn.transaction():
                    await conn.execute(
                        f"INSERT INTO trades (symbol, asset_type, instruction, quantity, {column}) "
                        f"VALUES ('AAPL', 'EQUITY', 'BUY', 1, {value})"
                    )
    for who in (USER, ANON):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with as_who(conn, who):
                await conn.fetchrow(REQUEST)


async def test_a_removed_operator_loses_access_at_the_next_statement(
    conn: asyncpg.Connection,
) -> None:
    ids = await seed(conn)
    async with as_who(conn, OP):
        assert await conn.fetchval("SELECT count(*) FROM trades") == 1
        assert await conn.fetchval("SELECT count(*) FROM positions") == 1
        await conn.execute("RESET ROLE")
        await conn.execute("DELETE FROM operators WHERE user_id = $1", OPERATOR)
        await conn.execute(f"SET LOCAL ROLE {OP.role}")
        assert await conn.fetchval("SELECT count(*) FROM trades") == 0
        assert await conn.fetchval("SELECT count(*) FROM positions") == 0
        assert await conn.fetchval("SELECT count(*) FROM trade_events") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.fetchrow(REQUEST)
    assert ids["op"]


async def _cancel(conn: asyncpg.Connection, who: Who, trade_id: int) -> dict[str, Any]:
    async with as_who(conn, who, commit=True):
        raw = await conn.fetchval("SELECT streamdesk_cancel_trade($1)", trade_id)
    return dict(json.loads(raw))


async def _set_status(conn: asyncpg.Connection, trade_id: int, status: str) -> None:
    submitted = "now()" if status != "pending" else "NULL"
    await conn.execute(
        f"UPDATE trades SET status = $2, submitted_at = {submitted}, account_hash = 'acct-' || id "
        "WHERE id = $1",
        trade_id,
        status,
    )


async def test_cancel_rpc_transitions_like_the_gateway(conn: asyncpg.Connection) -> None:
    ids = await seed(conn)
    woken: list[str] = []

    def on_notify(*args: Any) -> None:
        woken.append(str(args[3]))

    await conn.add_listener("streamdesk_trades", on_notify)
    try:
        assert await _cancel(conn, OP, ids["op"]) == {"id": ids["op"], "status": "cancelled"}
        for status in ("submitting", "working", "unknown"):
            trade_id = await conn.fetchval(
                "INSERT INTO trades (user_id, symbol, asset_type, instruction, quantity) "
                "VALUES ($1, $2, 'EQUITY', 'BUY', 1) RETURNING id",
                OPERATOR,
                f"S{status[:3].upper()}",
            )
            await _set_status(conn, trade_id, status)
            got = await _cancel(conn, OP, trade_id)
            assert got == {"id": trade_id, "status": "cancel_requested"}
            ev = await conn.fetchrow(
                "SELECT from_status, to_status, reason, detail FROM trade_events "
                "WHERE trade_id = $1 ORDER BY id DESC LIMIT 1",
                trade_id,
            )
            assert ev is not None
            assert (ev["from_status"], ev["to_status"]) == (status, "cancel_requested")
            assert ev["reason"] == GATEWAY_REASONS["cancel_requested"]
            assert json.loads(ev["detail"]) == {}
            # the executor is woken (trades_notify_cancel), as after the gateway's cancel
            for _ in range(100):
                if f"{trade_id}:cancel_requested" in woken:
                    break
                await asyncio.sleep(0.01)
            assert f"{trade_id}:cancel_requested" in woken
    finally:
        await conn.remove_listener("streamdesk_trades", on_notify)
    row = await conn.fetchrow(
        "SELECT status, updated_at, created_at FROM trades WHERE id = $1", ids["op"]
    )
    assert row is not None and row["status"] == "cancelled"
    assert row["updated_at"] >= row["created_at"]
    ev = await conn.fetchrow(
        "SELECT from_status, to_status, reason FROM trade_events WHERE trade_id = $1 "
        "ORDER BY id DESC LIMIT 1",
        ids["op"],
    )
    assert ev is not None
    assert tuple(ev) == ("pending", "cancelled", GATEWAY_REASONS["cancelled"])


async def test_cancel_rpc_refusals(conn: asyncpg.Connection) -> None:
    ids = await seed(conn)

    async def refused(who: Who, trade_id: int) -> tuple[str, str]:
        events = await conn.fetchval("SELECT count(*) FROM trade_events")
        with pytest.raises(asyncpg.PostgresError) as info:
            await _cancel(conn, who, trade_id)
        assert await conn.fetchval("SELECT count(*) FROM trade_events") == events
        return info.value.sqlstate, str(info.value)

    assert await refused(OP, ids["op2"]) == ("42501", f"trade {ids['op2']} is not yours")
    assert await refused(OP, ids["service"]) == ("42501", f"trade {ids['service']} is not yours")
    assert await refused(OP, 987654321) == ("P0002", "no trade 987654321")
    code, msg = await refused(USER, ids["user"])  # their own row, but not an operator
    assert code == "42501" and "only operators may cancel" in msg
    for who in (ANON, SERVICE):  # EXECUTE is granted to authenticated only
        code, msg = await refused(who, ids["op"])
        assert code == "42501" and "permission denied for function" in msg
    for status in ("filled", "rejected", "cancelled", "expired", "cancel_requested"):
        await _set_status(conn, ids["op"], status)
        code, msg = await refused(OP, ids["op"])
        assert code == "PT409", status
        assert msg == f"trade {ids['op']} is {status}; it cannot be cancelled now"
    assert await conn.fetchval("SELECT status FROM trades WHERE id = $1", ids["op"]) == (
        "cancel_requested"
    )


# ------------------------------------------------------------------ Realtime


async def test_realtime_receive_policies_per_topic(conn: asyncpg.Connection) -> None:
    await seed(conn)
    mine, theirs = f"streamdesk:trades:{OPERATOR}", f"streamdesk:trades:{OTHER_OPERATOR}"
    users = f"streamdesk:trades:{NON_OPERATOR}"
    expected = {
        # topic:           anon,  non-operator, operator, other operator
        "streamdesk:market": (True, True, True, True),
        mine: (False, False, True, False),
        theirs: (False, False, False, True),
        users: (False, False, False, False),
        "streamdesk:trades:": (False, False, False, False),
        f"streamdesk:trades:{OPERATOR}:x": (False, False, False, False),
        "streamdesk:other": (False, False, False, False),
        "room:lobby": (False, False, False, False),
    }

    async def matrix(extension: str = "broadcast") -> dict[str, tuple[bool, ...]]:
        return {
            t: tuple([await may_join(conn, w, t, extension) for w in (ANON, USER, OP, OP2)])
            for t in expected
        }

    assert await matrix() == expected
    # presence on our channels: nobody
    assert set((await matrix("presence")).values()) == {(False, False, False, False)}
    # the anon switch closes the market topic to anon only
    await conn.execute("UPDATE control_state SET anon_market_data = false")
    assert (await matrix())["streamdesk:market"] == (False, True, True, True)
    await conn.execute("UPDATE control_state SET anon_market_data = true")

    # A project may have broader policies (Supabase's examples: USING (true)); ours still hold.
    await conn.execute(
        "CREATE POLICY everyone ON realtime.messages FOR SELECT TO anon, authenticated USING (true)"
    )
    await conn.execute(
        "CREATE POLICY everyone_sends ON realtime.messages FOR INSERT TO anon, authenticated "
        "WITH CHECK (true)"
    )
    widened = await matrix()
    assert widened["room:lobby"] == (True, True, True, True)  # theirs to decide
    assert {t: v for t, v in widened.items() if t.startswith("streamdesk")} == {
        t: v for t, v in expected.items() if t.startswith("streamdesk")
    }
    # and no API role can send on our topics (only the trigger and the service key do)
    for who in (ANON, USER, OP):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            async with as_who(conn, who):
                await conn.execute(
                    "INSERT INTO realtime.messages (topic, extension, payload, inserted_at) "
                    "VALUES ($1, 'broadcast', '{}', now() AT TIME ZONE 'UTC')",
                    mine,
                )
    async with as_who(conn, OP):  # their own topics are theirs
        await conn.execute("SELECT realtime.send('{}'::jsonb, 'x', 'room:lobby', false)")


async def _messages(conn: asyncpg.Connection, topic: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, topic, event, extension, private, payload FROM realtime.messages "
        "WHERE topic = $1 ORDER BY inserted_at, id",
        topic,
    )


async def test_trade_changes_are_broadcast_to_their_operator(conn: asyncpg.Connection) -> None:
    ids = await seed(conn)
    topic = f"streamdesk:trades:{OPERATOR}"
    seen: set[uuid.UUID] = set()

    async def sent() -> list[dict[str, Any]]:
        """Payloads of the messages on the operator's topic since the last call."""
        out = []
        for m in await _messages(conn, topic):
            if m["id"] not in seen:
                seen.add(m["id"])
                assert (m["event"], m["extension"], m["private"]) == ("trade", "broadcast", True)
                payload = json.loads(m["payload"])
                assert set(payload) == PAYLOAD_KEYS, payload
                out.append(payload)
        return out

    assert [p["id"] for p in await sent()] == [ids["op"]]  # seed() inserted it
    async with as_who(conn, OP, commit=True):
        new = await conn.fetchrow(REQUEST)
    assert new is not None
    trade_id = int(new["id"])
    (inserted,) = await sent()
    assert (inserted["id"], inserted["status"], inserted["symbol"]) == (trade_id, "pending", "AAPL")
    await conn.execute(
        "UPDATE trades SET status = 'working', broker_order_id = 'B1' WHERE id = $1", trade_id
    )
    assert [p["status"] for p in await sent()] == ["working"]
    # columns the user does not see change nothing
    await conn.execute("UPDATE trades SET claimed_by = 'x', notional = 5 WHERE id = $1", trade_id)
    assert await sent() == []
    await conn.execute(
        "UPDATE trades SET filled_quantity = 1, avg_fill_price = 100.25, status = 'filled', "
        "updated_at = now() WHERE id = $1",
        trade_id,
    )
    (fill,) = await sent()
    assert fill["status"] == "filled" and fill["error"] is None
    assert (Decimal(str(fill["filled_quantity"])), Decimal(str(fill["avg_fill_price"]))) == (
        Decimal(1),
        Decimal("100.25"),
    )
    await conn.execute("UPDATE trades SET error = 'late note' WHERE id = $1", trade_id)
    (note,) = await sent()
    assert note["error"] == "late note"
    assert note["updated_at"] == json.loads(
        await conn.fetchval("SELECT to_jsonb(updated_at) FROM trades WHERE id = $1", trade_id)
    )
    # other users' and services' trades never reach this topic; service trades go nowhere
    total = await conn.fetchval("SELECT count(*) FROM realtime.messages")
    await conn.execute("UPDATE trades SET status = 'working' WHERE id = $1", ids["service"])
    assert await conn.fetchval("SELECT count(*) FROM realtime.messages") == total
    await conn.execute("UPDATE trades SET status = 'working' WHERE id = $1", ids["op2"])
    assert await sent() == []
    # each operator receives their own topic's messages: Realtime delivers what SELECT admits
    assert await may_join(conn, OP, topic) and not await may_join(conn, OP2, topic)


async def test_a_failing_broadcast_never_fails_the_trade(conn: asyncpg.Connection) -> None:
    await seed(conn)
    warnings: list[str] = []
    conn.add_log_listener(lambda _c, msg: warnings.append(str(msg)))
    trade_id = await conn.fetchval("SELECT id FROM trades WHERE user_id = $1", OPERATOR)
    for breakage in (
        # realtime.send itself raising (it should not; ours and Supabase's catch everything)
        "CREATE OR REPLACE FUNCTION realtime.send(payload jsonb, event text, topic text, "
        "private boolean DEFAULT true) RETURNS void LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'realtime is down'; END $$",
        # or gone altogether
        "DROP FUNCTION realtime.send(jsonb, text, text, boolean)",
    ):
        await conn.execute(breakage)
        for status in ("submitting", "working"):
            async with conn.transaction():
                await conn.execute("UPDATE trades SET status = $2 WHERE id = $1", trade_id, status)
                await conn.execute(
                    "INSERT INTO trade_events (trade_id, from_status, to_status) "
                    "VALUES ($1, 'x', $2)",
                    trade_id,
                    status,
                )
            assert await conn.fetchval("SELECT status FROM trades WHERE id = $1", trade_id) == (
                status
            )
        async with as_who(conn, OP, commit=True):  # an operator's insert too
            assert (await conn.fetchrow(REQUEST)) is not None
    await asyncio.sleep(0.05)
    assert any("broadcast of trade" in w and "realtime is down" in w for w in warnings), warnings
    assert any("function realtime.send(" in w and "does not exist" in w for w in warnings), warnings


async def test_realtime_messages_cost_per_trade_update(conn: asyncpg.Connection) -> None:
    """What Broadcast from Database stores: bytes per trade status change (docs/supabase.md)."""
    await seed(conn)
    updates = 300
    before = await conn.fetchval("SELECT count(*) FROM realtime.messages")
    await conn.execute(
        """
        INSERT INTO trades (user_id, symbol, asset_type, instruction, quantity, order_type,
                            limit_price)
        SELECT $1, 'SPY   261218C00500000', 'OPTION', 'BUY_TO_OPEN', 1, 'LIMIT', 1.25
        FROM generate_series(1, $2)
        """,
        OPERATOR,
        updates // 3,
    )
    await conn.execute(
        "UPDATE trades SET status = 'submitting' WHERE user_id = $1 AND status = 'pending' "
        "AND symbol LIKE 'SPY %'",
        OPERATOR,
    )
    await conn.execute(
        "UPDATE trades SET status = 'filled', filled_quantity = 1, avg_fill_price = 1.25 "
        "WHERE user_id = $1 AND status = 'submitting'",
        OPERATOR,
    )
    n = await conn.fetchval("SELECT count(*) FROM realtime.messages") - before
    assert n == updates
    await conn.execute("VACUUM ANALYZE realtime.messages")
    row_bytes = await conn.fetchval(
        "SELECT avg(pg_column_size(m.*)) FROM realtime.messages m WHERE event = 'trade'"
    )
    total = await conn.fetchval(
        "SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i "
        "WHERE i.inhparent = 'realtime.messages'::regclass"
    )
    per_update = total / (n + before)
    print(
        f"realtime.messages: {row_bytes:.0f} B per row, {per_update:.0f} B per trade update "
        f"on disk with indexes ({n + before} rows, {total} B)"
    )
    assert 150 < row_bytes < 500
    assert per_update < 1000
    assert uuid.UUID(str(OPERATOR))
