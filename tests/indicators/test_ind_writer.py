"""Writer: fencing of a previous owner, idempotent retry of the same batch."""

from __future__ import annotations

import asyncpg
import pytest

from streamdesk_indicators.writer import Batch, FencedError, PartitionOffset, Writer

pytestmark = pytest.mark.integration

DAY_MS = 1_773_100_800_000  # 2026-03-10 00:00 UTC


def _batch(epoch: int, last_id: str, price: float) -> Batch:
    row = (
        "SPY",
        DAY_MS + 14 * 3_600_000,
        price,
        100,
        price - 0.01,
        price + 0.01,
        1000,
        price,
        price,
        price,
        False,
    )
    return Batch(
        seconds=[row],
        states=[("SPY", "sd:ticks:0", "equity", b"\x90")],
        offsets=[PartitionOffset("sd:ticks:0", last_id, epoch)],
        days={DAY_MS // 86_400_000},
    )


async def test_a_fenced_owner_writes_nothing(db_url: str) -> None:
    old, new = Writer(db_url), Writer(db_url)
    try:
        cp_old = await old.load_checkpoint("sd:ticks:0", "old")
        cp_new = await new.load_checkpoint("sd:ticks:0", "new")
        assert cp_new.epoch == cp_old.epoch + 1 and cp_new.last_id == "0-0"
        with pytest.raises(FencedError):
            await old.commit(_batch(cp_old.epoch, "5-0", 1.0))
        await new.commit(_batch(cp_new.epoch, "7-0", 2.0))
        await new.commit(_batch(cp_new.epoch, "7-0", 2.0))  # a retry after an unknown outcome
    finally:
        await old.close()
        await new.close()
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetch("SELECT price FROM equity_data") == [(2.0,)]
        assert await conn.fetchval("SELECT count(*) FROM indicators") == 1
        row = await conn.fetchrow("SELECT last_id, owner FROM indicator_offsets")
        assert tuple(row) == ("7-0", "new")
        assert await conn.fetchval("SELECT stream FROM indicator_state") == "sd:ticks:0"
    finally:
        await conn.close()
