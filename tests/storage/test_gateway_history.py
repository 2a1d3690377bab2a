"""The gateway's history reads compacted rows through the same views (same answer)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from fastapi.testclient import TestClient
from storage_helpers import NO_JIT, counts, partitions

from streamdesk.config import load_settings
from streamdesk.storage_compact import compact
from streamdesk.storage_layout import CHUNK_SECONDS
from streamdesk_gateway.app import create_app
from streamdesk_gateway.config import Settings
from streamdesk_indicators.writer import Batch, Writer

pytestmark = pytest.mark.integration


@pytest.fixture
def client(db_url: str, redis_url: str) -> Iterator[TestClient]:
    token = "storage-test-gateway-token"
    settings = load_settings(
        Settings,
        _env_file=None,
        database_url=db_url,
        redis_url=redis_url,
        tickers="AAPL",
        gateway_token=token,
    )
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings), base_url="http://127.0.0.1", headers=auth) as c:
        yield c


async def test_history_over_compacted_and_hot_rows(client: TestClient, db_url: str) -> None:
    # the gateway asks for "the last N minutes" of the database's now(): rows relative to it
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(seconds=3 * CHUNK_SECONDS)
    await partitions(db_url, (start - timedelta(days=1)).date(), start.date(), now.date())
    secs = [
        (
            "AAPL",
            int((start + timedelta(seconds=i)).timestamp() * 1000),
            190.0 + i / 100,
            10 * i,
            189.99,
            190.01,
            1000 + i,
            189.0 + i / 1000,
            None,
            0.1 * i,
            False,
        )
        for i in range(3 * CHUNK_SECONDS)
    ]
    writer = Writer(db_url)
    try:
        await writer.commit(Batch(seconds=secs, days={s[1] // 86_400_000 for s in secs}))
    finally:
        await writer.close()
    before = client.get("/api/history/aapl?minutes=20").json()
    conn = await asyncpg.connect(db_url, server_settings=NO_JIT)
    try:
        await compact(conn)
    finally:
        await conn.close()
    hot, packed = (await counts(db_url))["equity_data"]
    assert packed >= CHUNK_SECONDS and hot < 2 * CHUNK_SECONDS  # some of it is compacted
    after = client.get("/api/history/aapl?minutes=20").json()
    assert after == before
    assert after["price"] == [s[2] for s in secs]
    assert after["sma9"] == [s[7] for s in secs] and after["vwap"] == [None] * len(secs)
