"""Daily partitions: created ahead, old ones dropped by the retention command (never DELETE)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from streamdesk.cli import main as cli_main
from streamdesk.partitions import (
    drop_expired_partitions,
    ensure_partition,
    ensure_partitions,
    list_partitions,
    partition_name,
)

pytestmark = pytest.mark.integration

TABLES = ("equity_data", "indicators", "option_prices")


async def test_partitions_created_ahead_and_dropped_past_retention(db_url: str) -> None:
    today = date(2026, 3, 10)
    conn = await asyncpg.connect(db_url)
    try:
        created = await ensure_partitions(conn, days_ahead=3, today=today, days_behind=0)
        assert len(created) == 3 * 4
        assert await ensure_partitions(conn, days_ahead=3, today=today, days_behind=0) == []
        for table in TABLES:
            days = [
                d
                for _, d in await list_partitions(conn, table)
                if today <= d <= today + timedelta(days=5)
            ]
            assert days == [today + timedelta(days=i) for i in range(4)]
        # old data in old partitions
        for back in (1, 5, 10):
            await ensure_partition(conn, "equity_data", today - timedelta(days=back))
        old_ts = datetime(2026, 2, 28, 15, 0, tzinfo=UTC)
        await conn.execute(
            'INSERT INTO equity_data (ticker, "timestamp", price, volume) VALUES '
            "('SPY', $1, 1, 1), ('SPY', $2, 2, 2)",
            old_ts,
            datetime(2026, 3, 9, 15, 0, tzinfo=UTC),
        )
        dropped = await drop_expired_partitions(conn, retention_days=7, today=today)
        assert dropped == [partition_name("equity_data", date(2026, 2, 28))]
        assert await conn.fetchval("SELECT count(*) FROM equity_data") == 1
        remaining = [d for _, d in await list_partitions(conn, "equity_data")]
        assert date(2026, 2, 28) not in remaining and date(2026, 3, 9) in remaining
        with pytest.raises(ValueError):
            await drop_expired_partitions(conn, retention_days=0, today=today)
        # rows outside any partition are refused loudly, not silently dropped
        with pytest.raises(asyncpg.PostgresError, match="no partition"):
            await conn.execute(
                "INSERT INTO equity_data (ticker, \"timestamp\", price) VALUES ('X', $1, 1)",
                datetime(2030, 1, 1, tzinfo=UTC),
            )
    finally:
        await conn.close()


async def test_partitions_have_rls(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await ensure_partition(conn, "indicators", date(2026, 5, 1))
        assert await conn.fetchval(
            "SELECT relrowsecurity FROM pg_class WHERE relname = 'indicators_p20260501'"
        )
    finally:
        await conn.close()


def test_cli_migrate_and_partitions(
    empty_db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI reads its configuration from the environment, as in production.
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    monkeypatch.setenv("RETENTION_DAYS", "7")
    assert cli_main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert "applied" in out and "0001_supabase_compat" in out
    assert cli_main(["migrate"]) == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert cli_main(["partitions"]) == 0
    assert "dropped 0" in capsys.readouterr().out


def test_cli_bad_config_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "-3")
    assert cli_main(["partitions"]) == 2
    err = capsys.readouterr().err
    assert "RETENTION_DAYS" in err
