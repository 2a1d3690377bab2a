"""Gap recording against a real Postgres, including a database outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streamdesk.db import close_pool, create_pool
from streamdesk_streamer.gaps import GapRecorder

pytestmark = pytest.mark.integration


async def test_gap_open_then_close(db_url: str) -> None:
    pool = await create_pool(db_url)
    try:
        g = GapRecorder(pool)
        t0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
        await g.open("websocket closed", ["AAPL", "SPY"], at=t0)
        row = await pool.fetchrow("SELECT * FROM stream_gaps")
        assert row["ended_at"] is None and row["symbols"] == ["AAPL", "SPY"]
        assert row["reason"] == "websocket closed" and row["source"] == "streamer"
        await g.open("again", ["X"])  # already open: no second row
        await g.close(at=t0 + timedelta(seconds=2))
        rows = await pool.fetch("SELECT * FROM stream_gaps")
        assert len(rows) == 1
        assert rows[0]["ended_at"] - rows[0]["started_at"] == timedelta(seconds=2)
        assert g.recorded == 1 and not g.is_open
    finally:
        await close_pool(pool)


async def test_gap_survives_database_outage_and_restart(db_url: str) -> None:
    g = GapRecorder(None)  # database unreachable
    t0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    await g.open("timeout", ["AAPL"], at=t0)
    await g.close(at=t0 + timedelta(seconds=3))
    assert g.unwritten == 1
    pool = await create_pool(db_url)
    try:
        g.pool = pool
        await g.flush()
        assert g.unwritten == 0
        assert (
            await pool.fetchval("SELECT count(*) FROM stream_gaps WHERE ended_at IS NOT NULL") == 1
        )
        # A gap left open by a previous process is adopted and closed.
        await pool.execute(
            "INSERT INTO stream_gaps (started_at, symbols, reason) VALUES ($1, '{A}', 'crash')",
            t0 + timedelta(minutes=5),
        )
        g2 = GapRecorder(pool)
        await g2.adopt_open()
        assert g2.is_open
        await g2.close(at=t0 + timedelta(minutes=6))
        assert await pool.fetchval("SELECT count(*) FROM stream_gaps WHERE ended_at IS NULL") == 0
    finally:
        await close_pool(pool)


async def test_gap_write_error_is_not_fatal(db_url: str) -> None:
    pool = await create_pool(db_url)
    try:
        await pool.execute("ALTER TABLE stream_gaps RENAME TO stream_gaps_away")
        g = GapRecorder(pool)
        await g.open("x", [])
        assert g.db_errors == 1 and g.unwritten == 1
        await pool.execute("ALTER TABLE stream_gaps_away RENAME TO stream_gaps")
        await g.close()
        assert g.unwritten == 0
        assert isinstance(await pool.fetchval("SELECT ended_at FROM stream_gaps"), datetime)
    finally:
        await close_pool(pool)
