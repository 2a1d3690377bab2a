"""The access matrix of docs/supabase.md on a real PostgreSQL, every table, every cell.

Identity (anon, authenticated non-operator, operator, service_role; claims set exactly as
PostgREST sets them) x operation (select, insert, update, delete) x every relation of schema
``public``, enumerated from pg_catalog: a table or view without a decision below fails the test.
Each probe runs in its own transaction and is rolled back. Run twice: on the migrated database
of the suite, and on one that has Supabase's default privileges (every new table in ``public``
granted to anon and authenticated) and was upgraded to the Supabase-mode migrations from 0080
with partitions already created, as an existing project would be.

Outcomes: ``denied`` (SQLSTATE 42501: no privilege, or a row-level security check failed),
``rows`` / ``none`` (the statement ran and touched rows / no row), ``own`` (select: exactly the
caller's own rows), ``all`` (exactly what the owner sees or changes), ``ok`` (insert went through
the privilege and RLS checks: the row was written, or only a constraint stopped it afterwards,
as a duplicate key does), ``unsupported`` (the statement cannot run for anyone: a view that is
not updatable).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from rls_helpers import ANON, API_IDENTITIES, OP, SERVICE, USER, Who, as_who, connect, seed

from streamdesk.migrate import migrate
from streamdesk.partitions import ensure_partitions

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OPS = ("select", "insert", "update", "delete")
NOTHING = ("denied", "denied", "denied", "denied")
SERVICE_ALL = ("all", "ok", "all", "all")

#: Market data: anon (while the switch is on), every signed-in user; nobody writes.
MARKET = {
    ANON: ("rows", *NOTHING[1:]),
    USER: ("rows", *NOTHING[1:]),
    OP: ("rows", *NOTHING[1:]),
    SERVICE: SERVICE_ALL,
}
#: The views over the storage layout: readable like market data; an INSTEAD OF trigger
#: takes inserts (service only), updates and deletes are refused by the view for everyone.
MARKET_VIEW = {
    ANON: ("rows", "denied", "unsupported", "unsupported"),
    USER: ("rows", "denied", "unsupported", "unsupported"),
    OP: ("rows", "denied", "unsupported", "unsupported"),
    SERVICE: ("all", "ok", "unsupported", "unsupported"),
}
#: Service tables: no API role, no access at all.
INTERNAL = {ANON: NOTHING, USER: NOTHING, OP: NOTHING, SERVICE: SERVICE_ALL}
#: The account: operators read it.
ACCOUNT = {
    ANON: NOTHING,
    USER: ("none", *NOTHING[1:]),
    OP: ("rows", *NOTHING[1:]),
    SERVICE: SERVICE_ALL,
}

EXPECTED: dict[str, dict[Who, tuple[str, str, str, str]]] = {
    "equity_data": MARKET_VIEW,
    "indicators": MARKET_VIEW,
    "option_prices": MARKET_VIEW,
    "equity_data_hot": MARKET,
    "indicators_hot": MARKET,
    "option_prices_hot": MARKET,
    "equity_data_packed": MARKET,
    "indicators_packed": MARKET,
    "option_prices_packed": MARKET,
    "storage_grid": MARKET,
    "storage_instruments": MARKET,
    "bars_1m": MARKET_VIEW,
    "bars_1m_hot": MARKET,
    "bars_1m_packed": MARKET,
    "bars_grid": MARKET,
    "stream_gaps": MARKET,
    "bars_1d": MARKET,
    "trades": {
        ANON: NOTHING,
        USER: ("none", "denied", "denied", "denied"),
        OP: ("own", "ok", "denied", "denied"),
        SERVICE: SERVICE_ALL,
    },
    "trade_events": {
        ANON: NOTHING,
        USER: ("none", "denied", "denied", "denied"),
        OP: ("own", "denied", "denied", "denied"),
        SERVICE: SERVICE_ALL,
    },
    "positions": ACCOUNT,
    "account_balances": ACCOUNT,
    "operators": INTERNAL,
    "control_state": INTERNAL,
    "universe": INTERNAL,
    "service_pauses": INTERNAL,
    "executor_alerts": INTERNAL,
    "strategies": INTERNAL,
    "strategy_alerts": INTERNAL,
    "backfill_tickers": INTERNAL,
    "indicator_offsets": INTERNAL,
    "indicator_state": INTERNAL,
    "partitioned_tables": INTERNAL,
    "schema_migrations": INTERNAL,
}
#: A partition (daily, of the hot, packed and grid tables) read directly: only services;
#: the API roles reach the rows through the parent and its policies.
PARTITION = INTERNAL

#: Columns an operator's client inserts into trades (the column-level grant).
REQUEST_COLUMNS = (
    "user_id",
    "symbol",
    "asset_type",
    "instruction",
    "quantity",
    "order_type",
    "limit_price",
    "duration",
    "source",
)
#: Own rows of a table, as the owner counts them ($1 the caller's id).
OWN_ROWS = {
    "trades": "SELECT count(*) FROM trades WHERE user_id = $1",
    "trade_events": "SELECT count(*) FROM trade_events e JOIN trades t ON t.id = e.trade_id "
    "WHERE t.user_id = $1",
}
#: SECURITY DEFINER functions of public and who may execute them.
DEFINER_FUNCTIONS = {
    "streamdesk_is_operator": {"anon", "authenticated", "service_role"},
    "streamdesk_anon_market_data": {"anon", "authenticated", "service_role"},
    "streamdesk_cancel_trade": {"authenticated"},
    "streamdesk_replace_stop": {"authenticated"},
    "streamdesk_broadcast_trade": set(),
}


async def relations(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every table, partition and view of schema public."""
    return await conn.fetch(
        """
        SELECT c.oid, c.relname, c.relkind, c.relispartition
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        ORDER BY c.relname
        """
    )


def expected_for(rel: asyncpg.Record) -> dict[Who, tuple[str, str, str, str]] | None:
    if rel["relispartition"]:
        return PARTITION
    return EXPECTED.get(rel["relname"])


async def insert_sql(conn: asyncpg.Connection, rel: str) -> tuple[str, list[str]]:
    """INSERT of one row given as JSON ($1), with the columns a client may set."""
    if rel == "trades":
        cols = list(REQUEST_COLUMNS)
    else:
        cols = [
            r[0]
            for r in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                "AND NOT attisdropped AND attgenerated = '' AND attidentity <> 'a' "
                "ORDER BY attnum",
                f"public.{rel}",
            )
        ]
    names = ", ".join(f'"{c}"' for c in cols)
    return (
        f'INSERT INTO public."{rel}" ({names}) SELECT {names} '
        f'FROM jsonb_populate_record(NULL::public."{rel}", $1::jsonb)',
        cols,
    )


async def probe(
    conn: asyncpg.Connection, who: Who, rel: str, op: str, sample: dict[str, Any] | None
) -> tuple[str, int]:
    """(outcome, rows) of ``op`` on ``rel`` as ``who``, rolled back."""
    # The column an update sets, to a constant (reading a column would need SELECT too, and
    # an UPDATE grant without SELECT must not hide): one outside unique keys where possible.
    col = await conn.fetchval(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 "
        "AND NOT a.attisdropped AND a.attgenerated = '' AND a.attidentity <> 'a' "
        "ORDER BY EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid "
        "AND i.indisunique AND a.attnum = ANY (i.indkey)), a.attnum LIMIT 1",
        f"public.{rel}",
    )
    try:
        async with as_who(conn, who):
            if op == "select":
                n = int(await conn.fetchval(f'SELECT count(*) FROM public."{rel}"'))
            elif op == "insert":
                row = dict(sample or {})
                if rel == "trades":
                    row["user_id"] = str(who.sub) if who.sub else None
                sql, _cols = await insert_sql(conn, rel)
                status = await conn.execute(sql, json.dumps(row, default=str))
                n = int(status.split()[-1])
                return "ok", n
            elif op == "update":
                status = await conn.execute(
                    f'UPDATE public."{rel}" SET "{col}" = '
                    f'(jsonb_populate_record(NULL::public."{rel}", $1::jsonb))."{col}"',
                    json.dumps(sample or {}, default=str),
                )
                n = int(status.split()[-1])
            else:
                status = await conn.execute(f'DELETE FROM public."{rel}"')
                n = int(status.split()[-1])
    except asyncpg.InsufficientPrivilegeError:
        return "denied", 0
    except asyncpg.IntegrityConstraintViolationError:
        # Past the privilege and RLS checks; a constraint stopped it afterwards (a duplicate
        # key: the insert copies a row, the update gives rows one value).
        if op == "insert":
            return "ok", 0
        if op == "update":
            return "rows", -1
        raise
    except asyncpg.ObjectNotInPrerequisiteStateError:
        return "unsupported", 0  # e.g. "cannot update view"
    return ("rows" if n else "none"), n


async def check_matrix(url: str) -> None:
    conn = await connect(url)
    try:
        await seed(conn)
        rels = await relations(conn)
        undecided = [r["relname"] for r in rels if expected_for(r) is None]
        assert not undecided, (
            f"no access decision for {undecided}: add them to EXPECTED in {__file__} "
            "(and to the Security model of docs/supabase.md)"
        )
        missing = sorted(set(EXPECTED) - {r["relname"] for r in rels})
        assert not missing, f"EXPECTED names relations that do not exist: {missing}"
        mismatches: list[str] = []
        for rel in rels:
            name = rel["relname"]
            owner_rows = int(await conn.fetchval(f'SELECT count(*) FROM public."{name}"'))
            if not rel["relispartition"]:
                # every decided table has a row, so "sees none" means filtered, not empty
                assert owner_rows > 0, f"seed() puts no row in {name}"
            raw = await conn.fetchval(f'SELECT to_jsonb(t) FROM public."{name}" t LIMIT 1')
            sample = json.loads(raw) if raw else None
            exp = expected_for(rel)
            assert exp is not None
            for who in API_IDENTITIES:
                for op, want in zip(OPS, exp[who], strict=True):
                    if op == "insert" and sample is None:
                        continue  # an empty partition: nothing to copy (insert checked on parents)
                    got, n = await probe(conn, who, name, op, sample)
                    if want == "all":
                        dup = -1 if owner_rows > 1 else 0  # a duplicate key: all rows were hit
                        ok = got in ("rows", "none") and n in (owner_rows, dup)
                    elif want == "own":
                        assert who.sub is not None
                        own = int(await conn.fetchval(OWN_ROWS[name], who.sub))
                        ok = got == "rows" and n == own and 0 < own < owner_rows
                    else:
                        ok = got == want
                    if not ok:
                        mismatches.append(f"{name} {op} as {who.name}: want {want}, got {got}/{n}")
        assert not mismatches, "\n".join(mismatches)
    finally:
        await conn.close()


async def check_functions_views_sequences(url: str) -> None:
    """SECURITY DEFINER functions: the expected set and grantees; views: security_invoker;
    sequences: nothing for the API roles."""
    conn = await connect(url)
    try:
        rows = await conn.fetch(
            "SELECT p.oid, p.proname FROM pg_proc p "
            "WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef"
        )
        assert {r["proname"] for r in rows} == set(DEFINER_FUNCTIONS)
        for r in rows:
            may = {
                role
                for role in ("anon", "authenticated", "service_role")
                if await conn.fetchval(
                    "SELECT has_function_privilege($1, $2::oid, 'EXECUTE')", role, r["oid"]
                )
            }
            assert may == DEFINER_FUNCTIONS[r["proname"]], r["proname"]
            config = await conn.fetchval("SELECT proconfig FROM pg_proc WHERE oid = $1", r["oid"])
            assert config == ['search_path=""'], (r["proname"], config)
        # a view runs with its owner's rights (the owner bypasses RLS) unless security_invoker
        views = await conn.fetch(
            "SELECT relname, reloptions FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('v', 'm')"
        )
        assert views
        for v in views:
            assert "security_invoker=true" in (v["reloptions"] or []), v["relname"]
        leaked = await conn.fetch(
            "SELECT c.relname, r.rolname FROM pg_class c CROSS JOIN pg_roles r "
            "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S' "
            "AND r.rolname IN ('anon', 'authenticated') "
            "AND has_sequence_privilege(r.rolname, c.oid, 'USAGE,SELECT,UPDATE')"
        )
        assert leaked == []
    finally:
        await conn.close()


async def test_matrix_on_the_migrated_database(db_url: str) -> None:
    await check_matrix(db_url)
    await check_functions_views_sequences(db_url)


@pytest.fixture
async def supabase_upgraded_db(empty_db_url: str, pg_template: str, tmp_path: Path) -> str:
    """A database with Supabase's default grants, at 0080 with partitions, then upgraded."""
    assert pg_template  # the API roles exist in the cluster
    older = tmp_path / "migrations-0080"
    older.mkdir()
    for f in sorted((ROOT / "migrations").glob("*.sql")):
        if f.name[:4] <= "0080":
            shutil.copy(f, older / f.name)
    conn = await connect(empty_db_url)
    try:
        # What every Supabase project has: new objects in public are the API roles' too.
        await conn.execute(
            """
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
                GRANT ALL ON TABLES TO anon, authenticated, service_role;
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
                GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
                GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
            """
        )
        await migrate(conn, older)
        await ensure_partitions(conn, days_ahead=3, days_behind=2)
        # Before the upgrade the old policies let any signed-in user insert a trade:
        # the hole this issue closes (the probe proves the fixture really is the old state).
        stranger = Who("stranger", "authenticated", uuid.uuid4())
        request = {
            "symbol": "SPY",
            "asset_type": "EQUITY",
            "instruction": "BUY",
            "quantity": 1,
            "order_type": "LIMIT",
            "limit_price": 500,
            "duration": "DAY",
            "source": "x",
        }
        assert await probe(conn, stranger, "trades", "insert", request) == ("ok", 1)
        granted = await conn.fetchval(
            "SELECT has_table_privilege('anon', 'equity_data_p' || "
            "to_char((now() AT TIME ZONE 'UTC')::date, 'YYYYMMDD'), 'INSERT')"
        )
        assert granted, "the Supabase default grants did not reach the partitions"
        await migrate(conn, ROOT / "migrations")
        await ensure_partitions(conn, days_ahead=3, days_behind=2)
    finally:
        await conn.close()
    return empty_db_url


async def test_matrix_on_a_supabase_project_upgraded_in_place(supabase_upgraded_db: str) -> None:
    await check_matrix(supabase_upgraded_db)
    await check_functions_views_sequences(supabase_upgraded_db)


async def test_anon_switch_closes_market_data_to_anon_only(db_url: str) -> None:
    conn = await connect(db_url)
    try:
        await seed(conn)
        await conn.execute("UPDATE control_state SET anon_market_data = false")
        for rel in (
            "equity_data",
            "indicators",
            "option_prices",
            "bars_1m",
            "bars_1d",
            "stream_gaps",
            "equity_data_hot",
            "storage_grid",
            "option_prices_packed",
            "bars_1m_packed",
            "bars_grid",
            "storage_instruments",
        ):
            assert (await probe(conn, ANON, rel, "select", None))[0] == "none", rel
            assert (await probe(conn, USER, rel, "select", None))[0] == "rows", rel
        await conn.execute("UPDATE control_state SET anon_market_data = true")
        assert (await probe(conn, ANON, "equity_data", "select", None))[0] == "rows"
        # a missing state row is closed, not open
        await conn.execute("DELETE FROM control_state")
        assert (await probe(conn, ANON, "bars_1m", "select", None))[0] == "none"
    finally:
        await conn.close()
