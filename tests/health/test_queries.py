"""The freshness queries stay index-friendly on the daily-partitioned tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from streamdesk_health.db_checks import _LAST_OPTION, _LAST_PER_TICKER

pytestmark = pytest.mark.integration


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
