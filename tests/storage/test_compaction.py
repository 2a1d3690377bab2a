"""Compaction on a real PostgreSQL: exact, idempotent, crash-safe, invisible to readers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from storage_helpers import (
    DAY,
    NO_JIT,
    TABLES,
    counts,
    dump,
    partitions,
    session_open_utc,
    write_session,
)

from streamdesk.partitions import drop_expired_partitions, list_partitions
from streamdesk.storage_compact import compact
from streamdesk.storage_layout import CHUNK_SECONDS
from streamdesk_indicators.writer import Batch, Writer

pytestmark = pytest.mark.integration


async def _compact(dsn: str, **kwargs: object) -> object:
    conn = await asyncpg.connect(dsn, server_settings=NO_JIT)
    try:
        return await compact(conn, **kwargs)  # type: ignore[arg-type]
    finally:
        await conn.close()


async def test_a_whole_session_round_trips_exactly(db_url: str) -> None:
    # 09:30-16:00: a ticker and 4 of its contracts, every value as the writer stored it
    await write_session(db_url, 23_400, per_underlying=4, tickers=("QQQ",))
    before = await dump(db_url)
    assert len(before["option_prices"]) > 70_000 and len(before["equity_data"]) == 23_400
    stats = await _compact(db_url)
    after = await dump(db_url)
    for table in TABLES:
        assert after[table] == before[table], table
    hot = await counts(db_url)
    for table in TABLES:
        n_hot, n_packed = hot[table]
        # only each instrument's last (still open) chunk stays hot
        assert n_hot <= 5 * CHUNK_SECONDS and n_packed == len(before[table]) - n_hot
    assert stats.rows > 0  # type: ignore[attr-defined]
    again = await _compact(db_url)  # idempotent: nothing left to move
    assert again.rows == 0  # type: ignore[attr-defined]
    assert await dump(db_url) == before


async def test_kill_9_during_compaction_loses_and_duplicates_nothing(db_url: str) -> None:
    await write_session(db_url, 1800, per_underlying=8)  # 2 tickers, 16 contracts
    expected = await dump(db_url)
    env = {**os.environ, "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING"}
    rng = random.Random(1)
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamdesk.cli", "storage", "compact", "--batch-rows", "300"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        # readers see every row exactly once, whatever the batch in flight was doing
        assert await dump(db_url) == expected
        if proc.returncode == 0:
            break
    assert kills >= 1
    await _compact(db_url)
    assert await dump(db_url) == expected
    n_hot = sum(h for h, _ in (await counts(db_url)).values())
    assert n_hot <= 3 * 18 * CHUNK_SECONDS


async def test_original_queries_read_compacted_rows(db_url: str) -> None:
    await write_session(db_url, 1500, per_underlying=4)
    before = await dump(db_url)
    await _compact(db_url)
    conn = await asyncpg.connect(db_url, server_settings=NO_JIT)
    try:
        rows = await conn.fetch(
            "SELECT * FROM equity_data WHERE ticker = 'QQQ' ORDER BY timestamp DESC LIMIT 10"
        )
        qqq = [r for r in before["equity_data"] if r[0] == "QQQ"]
        assert [r["timestamp"] for r in rows] == [r[1] for r in qqq[::-1][:10]]
        contract = await conn.fetchval("SELECT min(ticker) FROM option_prices_packed")
        start = session_open_utc(DAY) + timedelta(seconds=100)
        end = start + timedelta(seconds=600)
        got = await conn.fetch(
            'SELECT * FROM option_prices WHERE ticker = $1 AND "timestamp" >= $2 '
            'AND "timestamp" < $3 ORDER BY "timestamp"',
            contract,
            start,
            end,
        )
        want = [r for r in before["option_prices"] if r[0] == contract and start <= r[1] < end]
        assert len(got) == len(want) > 500
        assert [r["timestamp"] for r in got] == [r[1] for r in want]
        # the newest rows come from walking the time axis backwards, not from decoding a week
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT * FROM option_prices WHERE ticker = $1 "
                "ORDER BY timestamp DESC LIMIT 10",
                contract,
            )
        )
        assert "Index Scan Backward using storage_grid" in plan, plan
        # a range reads each chunk once (memoized per instrument and chunk), and the hot
        # tables only for seconds outside packed chunks (a one-time filter)
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT * FROM option_prices "
                'WHERE ticker = $1 AND "timestamp" >= $2 AND "timestamp" < $3',
                contract,
                start,
                end,
            )
        )
        assert "Cache Key: i.ticker, g.t0" in plan, plan
        assert "One-Time Filter: (c.nohash IS NULL)" in plan, plan
        misses = int(plan.split("Cache Key: i.ticker, g.t0")[1].split("Misses: ")[1].split()[0])
        assert misses <= 600 // CHUNK_SECONDS + 1, plan
        # every instrument is on the views' instrument axis (kept by the hot tables' trigger)
        listed = {
            (r["tbl"], r["ticker"])
            for r in await conn.fetch(
                "SELECT tbl, ticker FROM storage_instruments WHERE tbl <> 'bars_1m'"
            )
        }
        assert listed == {(t, r[0]) for t in TABLES for r in before[t]}
    finally:
        await conn.close()


async def test_a_replayed_flush_after_compaction_adds_nothing(db_url: str) -> None:
    await partitions(db_url)
    t0 = int(session_open_utc(DAY).timestamp() * 1000)
    seconds = [
        (
            "SPY",
            t0 + i * 1000,
            500.0 + i / 100,
            100,
            499.99,
            500.01,
            100 * i,
            None,
            None,
            None,
            False,
        )
        for i in range(2 * CHUNK_SECONDS + 5)
    ]
    writer = Writer(db_url)
    try:
        await writer.commit(Batch(seconds=seconds, days={t0 // 86_400_000}))
        await _compact(db_url)
        before = await dump(db_url)
        assert (await counts(db_url))["equity_data"][1] == 2 * CHUNK_SECONDS
        # the service restarted and replays the same rows: ON CONFLICT cannot see packed rows
        await writer.commit(Batch(seconds=seconds, days={t0 // 86_400_000}))
    finally:
        await writer.close()
    assert await dump(db_url) == before
    assert (await counts(db_url))["equity_data"][0] == 5


async def test_inserts_through_the_views(db_url: str) -> None:
    await partitions(db_url)
    base = session_open_utc(DAY)
    conn = await asyncpg.connect(db_url)
    try:
        for i in range(CHUNK_SECONDS + 1):
            if i == 17:
                continue
            await conn.execute(
                'INSERT INTO equity_data (ticker, "timestamp", price) VALUES ($1, $2, $3)',
                "SPY",
                base + timedelta(seconds=i),
                500.0 + i / 100,
            )
        await _compact(db_url)
        assert (await counts(db_url))["equity_data"] == (1, CHUNK_SECONDS - 1)
        # the same key again: skipped, as ON CONFLICT DO NOTHING would
        status = await conn.execute(
            'INSERT INTO equity_data (ticker, "timestamp", price) VALUES ($1, $2, 1) '
            "ON CONFLICT DO NOTHING",
            "SPY",
            base + timedelta(seconds=3),
        )
        assert status == "INSERT 0 0"
        # a new second inside a compacted chunk cannot be stored: refused loudly
        with pytest.raises(asyncpg.UniqueViolationError, match="compacted chunk"):
            await conn.execute(
                'INSERT INTO equity_data (ticker, "timestamp", price) VALUES ($1, $2, 1)',
                "SPY",
                base + timedelta(seconds=17),
            )
        row = await conn.fetchrow(
            'SELECT price, volume FROM equity_data WHERE "timestamp" = $1', base
        )
        assert tuple(row) == (500.0, 0)  # volume got the column default, as before
    finally:
        await conn.close()


async def test_retention_drops_compacted_days_whole(db_url: str) -> None:
    await write_session(db_url, 700, per_underlying=4)
    await _compact(db_url)
    conn = await asyncpg.connect(db_url)
    try:
        for parent in ("option_prices_packed", "storage_grid"):
            assert DAY in [d for _, d in await list_partitions(conn, parent)]
        dropped = await drop_expired_partitions(conn, 7, today=DAY + timedelta(days=8))
        assert "equity_data_p20260310" in dropped
        for parent in ("equity_data_packed", "option_prices_packed", "storage_grid"):
            assert DAY not in [d for _, d in await list_partitions(conn, parent)]
        assert await conn.fetchval("SELECT count(*) FROM option_prices") == 0
    finally:
        await conn.close()


def test_chunks_never_cross_a_day() -> None:
    assert 86_400 % CHUNK_SECONDS == 0
    assert datetime(2026, 3, 10, tzinfo=UTC).timestamp() % CHUNK_SECONDS == 0
