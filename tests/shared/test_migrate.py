"""Migrations on a real PostgreSQL: apply, no-op, refuse edited, seed columns and types."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from streamdesk.migrate import MigrationError, load_migrations, migrate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def test_apply_on_empty_then_noop(empty_db_url: str) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        done = await migrate(conn, ROOT / "migrations")
        assert done == [m.version for m in load_migrations(ROOT / "migrations")]
        assert done[0] == "0001_supabase_compat"
        assert await migrate(conn, ROOT / "migrations") == []
        count = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(done)
    finally:
        await conn.close()


async def test_edited_applied_migration_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", mdir)
    conn = await asyncpg.connect(empty_db_url)
    try:
        await migrate(conn, mdir)
        target = mdir / "0002_market_data.sql"
        target.write_text(target.read_text() + "\n-- sneaky edit\n")
        with pytest.raises(
            MigrationError, match="0002_market_data was edited after it was applied"
        ):
            await migrate(conn, mdir)
    finally:
        await conn.close()


async def test_failed_migration_rolls_back_alone(empty_db_url: str, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", mdir)
    (mdir / "9998_ok.sql").write_text("CREATE TABLE ok_table (id int);")
    (mdir / "9999_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_fn();")
    conn = await asyncpg.connect(empty_db_url)
    try:
        with pytest.raises(MigrationError, match="9999_broken failed"):
            await migrate(conn, mdir)
        assert await conn.fetchval("SELECT to_regclass('ok_table') IS NOT NULL")
        assert not await conn.fetchval("SELECT to_regclass('half') IS NOT NULL")
        versions = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        assert "9998_ok" in versions and "9999_broken" not in versions
    finally:
        await conn.close()


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_bad.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="bad migration file name"):
        load_migrations(tmp_path)


SEED_COLUMNS = {
    "equity_data": {
        "ticker": "text",
        "timestamp": "timestamp with time zone",
        "price": "double precision",
        "volume": "bigint",
    },
    "indicators": {
        "ticker": "text",
        "timestamp": "timestamp with time zone",
        "sma9": "double precision",
        "vwap": "double precision",
    },
    "option_prices": {
        "ticker": "text",
        "timestamp": "timestamp with time zone",
        "option_type": "text",
        "strike_price": "double precision",
        "expiration_date": "date",
        "last_price": "double precision",
        "bid": "double precision",
        "ask": "double precision",
        "delta": "double precision",
        "gamma": "double precision",
        "theta": "double precision",
        "vega": "double precision",
    },
    "trades": {
        "id": "bigint",
        "created_at": "timestamp with time zone",
        "symbol": "text",
        "asset_type": "text",
        "instruction": "text",
        "quantity": "numeric",
        "order_type": "text",
        "limit_price": "numeric",
        "duration": "text",
        "status": "text",
        "broker_order_id": "text",
        "filled_quantity": "numeric",
        "avg_fill_price": "numeric",
        "error": "text",
        "updated_at": "timestamp with time zone",
        "user_id": "uuid",
    },
    "trade_events": {
        "trade_id": "bigint",
        "from_status": "text",
        "to_status": "text",
        "reason": "text",
        "detail": "jsonb",
        "at": "timestamp with time zone",
    },
    "positions": {"account_hash": "text", "symbol": "text", "quantity": "numeric"},
    "account_balances": {"account_hash": "text", "cash": "numeric", "buying_power": "numeric"},
}


async def test_seed_columns_and_types(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        for table, columns in SEED_COLUMNS.items():
            rows = await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = $1",
                table,
            )
            actual = {r["column_name"]: r["data_type"] for r in rows}
            for col, typ in columns.items():
                assert actual.get(col) == typ, f"{table}.{col}: {actual.get(col)} != {typ}"
        for table in ("equity_data", "indicators", "option_prices"):
            # a view (migration 0060) over its partitioned hot table and the packed chunks
            kind = await conn.fetchval(
                "SELECT relkind::text FROM pg_class WHERE relname = $1", table
            )
            assert kind == "v", f"{table} is not a view"
            keys = await conn.fetchval(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = $1::regclass AND contype = 'p'",
                f"{table}_hot",
            )
            assert keys == 'PRIMARY KEY (ticker, "timestamp")'
            kind = await conn.fetchval(
                "SELECT relkind::text FROM pg_class WHERE relname = $1", f"{table}_hot"
            )
            assert kind == "p", f"{table}_hot is not partitioned"
        no_rls = await conn.fetch(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity"
        )
        assert [r[0] for r in no_rls] == []
    finally:
        await conn.close()


async def test_trades_row_with_request_columns_only_gets_defaults(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow(
            "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type, "
            "limit_price) VALUES ('AAPL', 'EQUITY', 'BUY', 10, 'LIMIT', 150.25) RETURNING *"
        )
        assert row["status"] == "pending"
        assert row["filled_quantity"] == 0
        assert row["duration"] == "DAY"
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO trades (symbol, asset_type, instruction, quantity) "
                "VALUES ('AAPL', 'EQUITY', 'HOLD', 1)"
            )
    finally:
        await conn.close()
