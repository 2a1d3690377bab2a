"""The benchmark's commit log (bench/pipeline/stack.py) on a real PostgreSQL: a row per
advance of ``indicator_offsets.last_id``, stamped when the transaction commits (not when the
UPDATE ran), none for a rolled-back (fenced) flush or for an epoch bump."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from pipeline.stack import COMMIT_LOG_SQL

pytestmark = pytest.mark.integration


async def test_commit_log_is_stamped_at_commit(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(COMMIT_LOG_SQL)
        await conn.execute("INSERT INTO indicator_offsets (stream) VALUES ('sd:ticks:0')")
        async with conn.transaction():
            # as the writer does: the offsets first, then the rows (here: a 0.2 s pause)
            await conn.execute(
                "UPDATE indicator_offsets SET last_id = '1700000000000-3' WHERE stream = "
                "'sd:ticks:0'"
            )
            await conn.execute("SELECT pg_sleep(0.2)")
            before_commit = await conn.fetchval("SELECT clock_timestamp()")
        rows = await conn.fetch("SELECT stream, last_id, at FROM bench_commit_log")
        assert [(r["stream"], r["last_id"]) for r in rows] == [("sd:ticks:0", "1700000000000-3")]
        assert rows[0]["at"] >= before_commit

        tr = conn.transaction()
        await tr.start()
        await conn.execute("UPDATE indicator_offsets SET last_id = '1700000000001-0'")
        await tr.rollback()  # a fenced flush is rolled back: nothing logged
        await conn.execute("UPDATE indicator_offsets SET epoch = epoch + 1")  # a take-over
        assert await conn.fetchval("SELECT count(*) FROM bench_commit_log") == 1
    finally:
        await conn.close()
