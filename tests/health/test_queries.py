"""The freshness queries stay index-friendly on the daily-partitioned tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from streamdesk.partitions import ensure_partitions, ensure_storage_partitions
from streamdesk_health.db_checks import _LAST_OPTION, _LAST_PER_TICKER

pytestmark = pytest.mark.integration

#: A Saturday evening, days away from the partitions the template made around today.
PINNED = datetime(2026, 6, 13, 23, 30, tzinfo=UTC)


async def test_newest_row_queries_use_indexes_not_scans(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        rows = [
            (t, now - timedelta(seconds=s), 1.0, 1) for t in ("SPY", "QQQ") for s in range(20000)
        ]
        await conn.copy_records_to_table(
            "equity_data", records=rows, columns=["ticker", "timestamp", "price", "volume"]
        )
        await conn.execute(
            'INSERT INTO option_prices (ticker, "timestamp", underlying, option_type, '
            "strike_price, expiration_date) SELECT 'SPY' || g, "
            "$1::timestamptz - make_interval(secs => g), 'SPY', 'CALL', 500, '2026-12-18' "
            "FROM generate_series(1, 20000) g",
            now,
        )
        await conn.execute("ANALYZE equity_data; ANALYZE option_prices")
        plans = [
            "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN "
                    + _LAST_PER_TICKER.format(table="equity_data").replace(
                        "$1::text[]", "ARRAY['SPY','QQQ']::text[]"
                    )
                )
            ),
            "\n".join(
                # health's newest-option query (hot rows + compacted chunks, migration 0060)
                r[0]
                for r in await conn.fetch("EXPLAIN " + _LAST_OPTION)
            ),
        ]
        for plan in plans:
            assert "Seq Scan on equity_data" not in plan, plan
            assert "Seq Scan on option_prices" not in plan, plan
            assert "Index Only Scan Backward" in plan or "Index Scan Backward" in plan, plan
    finally:
        await conn.close()


async def test_newest_row_per_ticker_probes_the_primary_key_with_stale_statistics(
    db_url: str,
) -> None:
    """Statistics from a small universe, then many more tickers streaming (the bench's reference
    phase, then its 3,001 load symbols): the probe stays on the (ticker, timestamp) key and
    answers right, newest row per ticker, from the hot rows and the compacted chunks."""
    conn = await asyncpg.connect(db_url)
    try:
        now = PINNED  # no wall clock: the query has no notion of time, only of keys
        await ensure_partitions(conn, days_ahead=0, today=now.date(), days_behind=1)
        old = [
            (t, now - timedelta(seconds=600 + s), 1.0) for t in ("SPY", "QQQ") for s in range(600)
        ]
        await conn.copy_records_to_table(
            "equity_data_hot", records=old, columns=["ticker", "timestamp", "price"]
        )
        await conn.execute("ANALYZE")
        many = [f"T{i:04d}" for i in range(400)]
        rows = [(t, now - timedelta(seconds=s), 1.0) for t in many for s in range(20)]
        await conn.copy_records_to_table(
            "equity_data_hot", records=rows, columns=["ticker", "timestamp", "price"]
        )
        # a compacted chunk newer than the hot rows of one ticker wins for it
        await ensure_storage_partitions(conn, (now - timedelta(seconds=300)).date())
        await conn.execute(
            "INSERT INTO equity_data_packed (ticker, t0, t1, n, m, w) "
            "VALUES ('SPY', storage_chunk_start($1), $2, 1, '{}', '{0}')",
            now - timedelta(seconds=300),
            now - timedelta(seconds=5),
        )
        sql = _LAST_PER_TICKER.format(table="equity_data")
        tickers = ["SPY", "QQQ", *many, "NONE"]
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, tickers))
        assert "timestamp_idx" not in plan and "packed_t0" not in plan, plan
        assert "_pkey" in plan, plan
        got = {r["ticker"]: r["last"] for r in await conn.fetch(sql, tickers)}
        assert got["SPY"] == now - timedelta(seconds=5)
        assert got["QQQ"] == now - timedelta(seconds=600)
        assert all(got[t] == now for t in many)
        assert got["NONE"] is None
    finally:
        await conn.close()
