"""Supabase's API identities on a real PostgreSQL, set exactly as PostgREST and Realtime set them.

PostgREST runs each request in a transaction that starts with
``SELECT set_config('request.jwt.claims', <claims>, true)`` and ``SET LOCAL ROLE <role>``
(the JWT's ``role``); anon's claims carry no ``sub``. Realtime, to authorise a join of a private
channel, inserts a probe row into ``realtime.messages`` with the channel's topic, sets
``role``, ``realtime.topic`` and the claims, and reads the probe back: the SELECT policies decide.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

OPERATOR = uuid.UUID("0a000000-0000-4000-8000-000000000001")
OTHER_OPERATOR = uuid.UUID("0a000000-0000-4000-8000-000000000002")
NON_OPERATOR = uuid.UUID("0b000000-0000-4000-8000-000000000003")


@dataclass(frozen=True)
class Who:
    """An API identity: the database role and the JWT subject."""

    name: str
    role: str
    sub: uuid.UUID | None = None

    @property
    def claims(self) -> str:
        body: dict[str, str] = {"role": self.role}
        if self.sub is not None:
            body["sub"] = str(self.sub)
            body["aud"] = "authenticated"
        return json.dumps(body)


ANON = Who("anon", "anon")
USER = Who("authenticated non-operator", "authenticated", NON_OPERATOR)
OP = Who("operator", "authenticated", OPERATOR)
OP2 = Who("other operator", "authenticated", OTHER_OPERATOR)
SERVICE = Who("service_role", "service_role")
API_IDENTITIES = (ANON, USER, OP, SERVICE)


async def connect(url: str) -> asyncpg.Connection:
    """A connection without JIT: a database cloned from the template does not inherit 0060's
    ``ALTER DATABASE .. SET jit = off``, and JIT costs seconds on the storage views."""
    return await asyncpg.connect(url, server_settings={"jit": "off"})


@contextlib.asynccontextmanager
async def as_who(
    conn: asyncpg.Connection, who: Who, *, commit: bool = False
) -> AsyncIterator[None]:
    """A transaction in which ``conn`` is ``who`` (rolled back unless ``commit``)."""
    tr = conn.transaction()
    await tr.start()
    try:
        await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", who.claims)
        await conn.execute(f"SET LOCAL ROLE {who.role}")
        yield
    except BaseException:
        await tr.rollback()
        raise
    else:
        if commit:
            await conn.execute("RESET ROLE")
            await tr.commit()
        else:
            await tr.rollback()


async def may_join(
    conn: asyncpg.Connection, who: Who, topic: str, extension: str = "broadcast"
) -> bool:
    """Whether Realtime would let ``who`` receive ``extension`` on private channel ``topic``."""
    tr = conn.transaction()
    await tr.start()
    try:
        # As Realtime's own connection: the day's partition exists (send() makes it), a probe.
        await conn.execute("SELECT realtime.send('{}'::jsonb, 'probe', 'streamdesk-test', false)")
        probe = uuid.uuid4()
        await conn.execute(
            "INSERT INTO realtime.messages (id, topic, extension, inserted_at) "
            "VALUES ($1, $2, $3, now() AT TIME ZONE 'UTC')",
            probe,
            topic,
            extension,
        )
        await conn.execute(
            "SELECT set_config('role', $1, true), set_config('realtime.topic', $2, true), "
            "set_config('request.jwt.claims', $3, true)",
            who.role,
            topic,
            who.claims,
        )
        return bool(
            await conn.fetchval("SELECT count(*) FROM realtime.messages WHERE id = $1", probe)
        )
    finally:
        await tr.rollback()


async def seed(conn: asyncpg.Connection) -> dict[str, int]:
    """A row in every table (as the owner), trades of each identity; the trade ids by owner."""
    from streamdesk.partitions import ensure_storage_partitions

    await conn.execute(
        "INSERT INTO operators (user_id, email, note) VALUES ($1, 'op@example.test', 'seed'), "
        "($2, 'op2@example.test', 'seed')",
        OPERATOR,
        OTHER_OPERATOR,
    )
    await conn.execute(
        """
        INSERT INTO equity_data (ticker, "timestamp", price, volume)
            VALUES ('SPY', date_trunc('second', now()), 500, 10);
        INSERT INTO indicators (ticker, "timestamp", sma9, vwap)
            VALUES ('SPY', date_trunc('second', now()), 500, 500);
        INSERT INTO option_prices (ticker, "timestamp", underlying, option_type, strike_price,
                                   expiration_date, last_price)
            VALUES ('SPY   261218C00500000', date_trunc('second', now()), 'SPY', 'CALL', 500,
                    '2026-12-18', 1.5);
        INSERT INTO bars_1m (ticker, bucket, open, high, low, close, volume)
            VALUES ('SPY', date_trunc('minute', now()), 1, 2, 1, 2, 100);
        INSERT INTO stream_gaps (started_at, reason) VALUES (now(), 'seed');
        INSERT INTO bars_1d (ticker, day, open, high, low, close, volume)
            VALUES ('SPY', current_date, 1, 2, 1, 2, 100);
        INSERT INTO strategies (id, module) VALUES ('seed', 'm:C');
        INSERT INTO strategy_alerts (strategy_id, kind, message) VALUES ('seed', 'seed', 'seed');
        INSERT INTO backfill_tickers (ticker) VALUES ('SPY');
        INSERT INTO positions (account_hash, symbol, asset_type, quantity)
            VALUES ('acct', 'SPY', 'EQUITY', 3);
        INSERT INTO account_balances (account_hash, cash, buying_power) VALUES ('acct', 1, 1);
        INSERT INTO universe (kind, symbol) VALUES ('equity', 'SPY');
        INSERT INTO service_pauses (service, paused) VALUES ('strategy', false);
        INSERT INTO indicator_offsets (stream) VALUES ('sd:ticks:0');
        INSERT INTO indicator_state (symbol, stream, kind, state)
            VALUES ('SPY', 'sd:ticks:0', 'equity', '\\x00');
        """
    )
    day = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    await ensure_storage_partitions(conn, day)
    for packed, extra_cols, extra_vals in (
        ("equity_data_packed", "", ""),
        ("indicators_packed", "", ""),
        (
            "option_prices_packed",
            ", underlying, option_type, strike_price, expiration_date",
            ", 'SPY', 'CALL', 500, '2026-12-18'",
        ),
    ):
        # An empty chunk (no slot set): the views skip it, the table has a row.
        await conn.execute(
            f"INSERT INTO {packed} (ticker, t0, t1, n, m, w{extra_cols}) "
            f"VALUES ('ZZZ', storage_chunk_start(now()), storage_chunk_start(now()), 0, "
            f"'{{}}', '{{}}'{extra_vals})"
        )
    # A packed bar chunk likewise (its month's partitions first).
    await conn.execute("SELECT bars_partitions(current_date)")
    await conn.execute(
        "INSERT INTO bars_1m_packed (ticker, t0, t1, n, m, w) "
        "VALUES ('ZZZ', bars_grid_chunk_start(now()), bars_grid_chunk_start(now()), 0, '{}', '{}')"
    )
    ids: dict[str, int] = {}
    for key, uid in (
        ("op", OPERATOR),
        ("op2", OTHER_OPERATOR),
        ("user", NON_OPERATOR),
        ("service", None),
    ):
        trade_id = await conn.fetchval(
            "INSERT INTO trades (user_id, symbol, asset_type, instruction, quantity, order_type, "
            "limit_price, source) VALUES ($1, 'SPY', 'EQUITY', 'BUY', 1, 'LIMIT', 500, 'seed') "
            "RETURNING id",
            uid,
        )
        await conn.execute(
            "INSERT INTO trade_events (trade_id, from_status, to_status, reason) "
            "VALUES ($1, NULL, 'pending', 'seed')",
            trade_id,
        )
        ids[key] = int(trade_id)
    await conn.execute(
        "INSERT INTO executor_alerts (trade_id, kind, message) VALUES ($1, 'unknown', 'seed')",
        ids["service"],
    )
    return ids
