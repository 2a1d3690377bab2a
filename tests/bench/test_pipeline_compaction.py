"""bench/pipeline/compaction.py on a real PostgreSQL: the sample is full chunks of the
instruments' own rows, one day back, and the measured rounds move exactly the sample."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from pipeline import compaction
from pipeline.procs import ProcSet

pytestmark = pytest.mark.integration

TICKERS = ["AAA", "BBB", "CCC"]


async def test_sample_is_full_chunks_and_compaction_moves_it(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        # rows relative to the database's clock: the sample's day back is taken from now()
        now: datetime = await conn.fetchval("SELECT date_trunc('second', now())")
        # the originals in one chunk, the open one: nothing of theirs is compacted
        t0: datetime = await conn.fetchval("SELECT storage_chunk_start(now())")
        eq = [
            (t, t0 + timedelta(seconds=s), 10.0 + i + s / 100, 5 + s, 1000 + s)
            for i, t in enumerate(TICKERS)
            for s in range(7)
        ]
        await conn.copy_records_to_table(
            "equity_data_hot",
            records=eq,
            columns=["ticker", "timestamp", "price", "volume", "cum_volume"],
        )
        bucket = now.replace(second=0) - timedelta(minutes=2)
        await conn.executemany(
            "INSERT INTO bars_1m_hot (ticker, bucket, open, high, low, close, volume, vwap, "
            "source) VALUES ($1, $2, 1, 2, 0.5, 1.5, 10, 1.25, 'stream')",
            [(t, bucket + timedelta(minutes=m)) for t in TICKERS for m in range(2)],
        )
        stored = await compaction.stored_rows(
            conn, t0.timestamp(), (t0 + timedelta(seconds=5)).timestamp()
        )
        assert stored["equity_data"] == 3 * 5
        assert stored["bars_1m"] == pytest.approx(3 * 5 / 60)

        result = await compaction.measure(conn, ProcSet())
        eq_t, bars_t = result["tables"]["equity_data"], result["tables"]["bars_1m"]
        # one full chunk per instrument: 300 seconds, a 390-minute session of bars
        assert result["copied_rows"]["equity_data"] == 3 * 300
        assert (eq_t["rows"], eq_t["chunks"], eq_t["skipped_chunks"]) == (900, 3, 0)
        assert (bars_t["rows"], bars_t["chunks"]) == (3 * 390, 3)
        assert result["tables"]["indicators"]["rows"] == 0  # nothing to sample
        assert eq_t["us_per_row"] > 0 and result["rows"] == 900 + 3 * 390

        # the packed sample holds each instrument's own rows, repeated in order
        day_back = now.astimezone(UTC) - timedelta(days=1)
        got = await conn.fetch(
            'SELECT ticker, price, volume FROM equity_data WHERE "timestamp" < $1 '
            'ORDER BY ticker, "timestamp"',
            day_back + timedelta(hours=1),
        )
        assert len(got) == 900
        for i, t in enumerate(TICKERS):
            prices = [r["price"] for r in got if r["ticker"] == t]
            assert prices == [10.0 + i + (k % 7) / 100 for k in range(300)]
        # the originals stay hot (their chunk is open), the sample has left the hot rows
        assert await conn.fetchval(
            'SELECT count(*) FROM equity_data_hot WHERE "timestamp" >= $1', t0
        ) == len(eq)
        assert await conn.fetchval("SELECT count(*) FROM equity_data_hot") == len(eq)

        assert compaction.per_tick(result, stored, 1000.0) == pytest.approx(
            (eq_t["us_per_row"] * 15 + bars_t["us_per_row"] * 0.25) / 1000, abs=1e-3
        )
    finally:
        await conn.close()
