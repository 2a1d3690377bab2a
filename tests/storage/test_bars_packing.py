"""bars_1m packed like the seconds (migration 0110): exact, merged with backfilled gaps,
read through the view with its original queries, dropped by whole months."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from streamdesk.partitions import drop_expired_bar_partitions
from streamdesk.storage_compact import compact
from streamdesk.storage_layout import BARS

pytestmark = pytest.mark.integration

NO_JIT = {"jit": "off"}
#: three sessions, one in winter time (14:30 UTC open), two in summer time (13:30)
DAYS = (date(2026, 3, 6), date(2026, 3, 9), date(2026, 3, 10))


def _open(day: date) -> datetime:
    hour = 14 if day < date(2026, 3, 8) else 13
    return datetime(day.year, day.month, day.day, hour, 30, tzinfo=UTC)


def _bars(ticker: str, seed: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    price = 100.0 + seed
    out = []
    for day in DAYS:
        t = _open(day)
        for m in range(390):
            if rnd.random() < 0.03:
                continue  # a minute without trades
            o = price
            price = round(price + rnd.choice((-0.03, -0.01, 0.0, 0.01, 0.02)), 2)
            hi = round(max(o, price) + rnd.choice((0.0, 0.01, 0.05)), 2)
            lo = round(min(o, price) - rnd.choice((0.0, 0.01, 0.04)), 2)
            vwap = None if m == 7 else (o * 3 + price * 2) / 5 + rnd.random() * 1e-7
            source = "backfill" if m % 97 == 5 else "stream"
            bucket = t + timedelta(minutes=m)
            out.append((ticker, bucket, o, hi, lo, price, rnd.randint(0, 90_000), vwap, source))
    return out


async def _view(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await conn.fetch("SELECT * FROM bars_1m ORDER BY 1, 2")]


_INSERT = (
    "INSERT INTO bars_1m_hot (ticker, bucket, open, high, low, close, volume, vwap, source) "
    "SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], "
    "$5::float8[], $6::float8[], $7::bigint[], $8::float8[], $9::text[])"
)


async def _insert(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    await conn.execute(_INSERT, *[list(col) for col in zip(*rows, strict=True)])


async def test_bars_round_trip_exactly_and_merge_a_backfilled_gap(db_url: str) -> None:
    conn = await asyncpg.connect(db_url, server_settings=NO_JIT)
    try:
        rows = _bars("QQQ", 1) + _bars("SPY", 2)
        await _insert(conn, rows)
        # the same ticker on another view's instrument axis must not show up twice here
        await conn.execute("INSERT INTO storage_instruments VALUES ('equity_data', 'QQQ')")
        before = await _view(conn)
        assert before == sorted(rows)  # the view shows the hot bars as they are
        stats = await compact(conn, tables=(BARS,))
        # the last session of each ticker is still open (no later bar): it stays hot
        assert stats.chunks == 4
        assert await conn.fetchval("SELECT count(*) FROM bars_1m_packed") == 4
        hot = await conn.fetchval("SELECT count(*) FROM bars_1m_hot")
        assert hot == sum(1 for r in rows if r[1].date() == DAYS[-1])
        assert await _view(conn) == before  # every value, bit for bit (vwap, NULL, source)

        # a backfill heals a gap of a packed session and repeats a bar it already has
        gap = next(
            _open(DAYS[0]) + timedelta(minutes=m)
            for m in range(390)
            if not any(
                r[0] == "QQQ" and r[1] == _open(DAYS[0]) + timedelta(minutes=m) for r in rows
            )
        )
        healed = ("QQQ", gap, 1.5, 1.5, 1.5, 1.5, 10, None, "backfill")
        kept = next(r for r in rows if r[0] == "QQQ" and r[1].date() == DAYS[0])
        repeat = (*kept[:2], 9.99, 9.99, 9.99, 9.99, 1, None, "backfill")
        await _insert(conn, [healed, repeat])
        want = sorted([*before, healed])
        assert await _view(conn) == want  # the gap shows at once; the packed bar wins
        again = await compact(conn, tables=(BARS,))
        assert again.chunks == 1  # the chunk is re-packed with the healed minute
        assert await conn.fetchval("SELECT count(*) FROM bars_1m_packed") == 4
        assert await conn.fetchval("SELECT count(*) FROM bars_1m_hot") == hot
        assert await _view(conn) == want

        # the gateway's queries read the view through its time axis
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT * FROM bars_1m WHERE ticker = 'QQQ' ORDER BY bucket DESC LIMIT 10"
            )
        )
        assert "Index Scan Backward using bars_grid" in plan, plan
        day_rows = await conn.fetch(
            "SELECT bucket, close FROM bars_1m WHERE ticker = 'SPY' AND bucket >= $1 "
            "AND bucket < $2 ORDER BY bucket",
            _open(DAYS[1]),
            _open(DAYS[1]) + timedelta(hours=7),
        )
        assert [(r[0], r[1]) for r in day_rows] == [
            (r[1], r[5]) for r in sorted(rows) if r[0] == "SPY" and r[1].date() == DAYS[1]
        ]
    finally:
        await conn.close()


async def test_bar_inserts_through_the_view_and_retention_by_month(db_url: str) -> None:
    conn = await asyncpg.connect(db_url, server_settings=NO_JIT)
    try:
        old = datetime(2025, 1, 6, 14, 30, tzinfo=UTC)
        new = datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
        for t in (old, old + timedelta(minutes=1), new, new + timedelta(days=1)):
            await conn.execute(
                "INSERT INTO bars_1m (ticker, bucket, open, high, low, close, volume) "
                "VALUES ('AAPL', $1, 1, 2, 0.5, 1.5, 10)",
                t,
            )
        # a plain INSERT into the view behaves like ON CONFLICT DO NOTHING
        status = await conn.execute(
            "INSERT INTO bars_1m (ticker, bucket, open, high, low, close, volume) "
            "VALUES ('AAPL', $1, 9, 9, 9, 9, 9)",
            old,
        )
        assert status == "INSERT 0 0"
        assert await conn.fetchval("SELECT source FROM bars_1m WHERE bucket = $1", old) == "stream"
        await compact(conn, tables=(BARS,))
        assert await conn.fetchval("SELECT count(*) FROM bars_1m_packed") == 2
        dropped = await drop_expired_bar_partitions(conn, 400, today=date(2026, 3, 10))
        assert dropped == ["bars_1m_packed_p202501", "bars_grid_p202501"]
        rows = await conn.fetch("SELECT bucket FROM bars_1m ORDER BY bucket")
        assert [r[0] for r in rows] == [new, new + timedelta(days=1)]
    finally:
        await conn.close()
