"""Backtests over rows the test inserts into a real, migrated Postgres (``db_url``)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from streamdesk.partitions import ensure_partitions
from streamdesk.strategy.api import Bar
from streamdesk.strategy.backtest import Backtester
from streamdesk.strategy.examples import SmaVwapCross
from streamdesk.strategy.pgsource import load_bar_map, stream_bars, stream_seconds
from streamdesk.strategy.report import to_dict

pytestmark = pytest.mark.integration

OPEN = 1_772_461_800_000  # 2026-03-02 14:30 UTC = 09:30 New York
ROOT = Path(__file__).resolve().parents[2]


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _bars() -> list[Bar]:
    rng = random.Random(21)
    out: list[Bar] = []
    price = {"AAA": 50.0, "BBB": 80.0}
    for i in range(240):
        for t in ("AAA", "BBB"):
            o = price[t]
            c = round(o * (1 + rng.gauss(0, 0.002)), 2)
            h, lo = round(max(o, c) + 0.02, 2), round(min(o, c) - 0.02, 2)
            out.append(Bar(t, OPEN + i * 60_000, o, h, lo, c, rng.randint(100, 900), c))
            price[t] = c
    return out


async def _seed(dsn: str, bars: list[Bar]) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.copy_records_to_table(
            "bars_1m",
            records=[
                (b.ticker, _dt(b.ts), b.open, b.high, b.low, b.close, b.volume, b.vwap)
                for b in bars
            ],
            columns=["ticker", "bucket", "open", "high", "low", "close", "volume", "vwap"],
        )
        await ensure_partitions(conn, days_ahead=0, today=date(2026, 3, 2), days_behind=0)
        for s in range(150):  # 2.5 minutes of AAA seconds with stored indicators
            ts = _dt(OPEN + s * 1000)
            p = 50.0 + (s % 7) / 100
            await conn.execute(
                'INSERT INTO equity_data (ticker, "timestamp", price, volume, bid, ask) '
                "VALUES ('AAA', $1, $2, 10, $3, $4)",
                ts,
                p,
                p - 0.01,
                p + 0.01,
            )
            await conn.execute(
                'INSERT INTO indicators (ticker, "timestamp", sma9, vwap, ema9) '
                "VALUES ('AAA', $1, 50.02, 50.03, NULL)",
                ts,
            )
    finally:
        await conn.close()


async def test_postgres_backtest_equals_the_in_memory_one(db_url: str, tmp_path: Path) -> None:
    bars = _bars()
    await _seed(db_url, bars)
    start, end = _dt(OPEN), _dt(OPEN + 240 * 60_000)

    conn = await asyncpg.connect(db_url, timeout=10)
    try:
        streamed = [b async for b in stream_bars(conn, ["AAA", "BBB"], start, end, prefetch=50)]
        rows = [r async for r in stream_seconds(conn, ["AAA"], start, end)]
        bar_map = await load_bar_map(conn, ["AAA"], start, end)
    finally:
        await conn.close()
    assert streamed == bars  # time order, then ticker; epoch ms exact
    assert len(rows) == 150 and rows[0][0].bid == pytest.approx(49.99)
    assert rows[0][1] is not None and rows[0][1].sma9 == 50.02
    assert bar_map[("AAA", OPEN)][0] == bars[0]
    assert bar_map[("AAA", OPEN)][1].vwap == 50.03  # the indicators of its last second

    mem = Backtester(SmaVwapCross, {"quantity": 10}, tickers=["AAA", "BBB"])
    for b in bars:
        mem.feed_bar(b)
    expected = to_dict(mem.finish())
    assert expected["metrics"]["fills"] > 2

    out = tmp_path / "bt.json"
    env = {**os.environ, "DATABASE_URL": db_url, "MARKET_HOURS": "always"}
    cmd = [sys.executable, "-m", "streamdesk.cli", "backtest",
           "streamdesk.strategy.examples.sma_vwap:SmaVwapCross", "--tickers", "AAA,BBB",
           "--from", start.isoformat(), "--to", end.isoformat(), "--param", "quantity=10",
           "--out", str(out), "--html", str(tmp_path / "bt.html")]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "sma_vwap_cross: 480 events" in proc.stdout
    doc: dict[str, Any] = json.loads(out.read_bytes())
    for key in ("fills", "metrics", "equity_curve", "round_trips", "positions"):
        assert doc[key] == expected[key], key
    assert doc["source"]["kind"] == "bars"

    # per-second rows with their stored indicators
    cmd_s = [*cmd[:-4], "--source", "seconds", "--tickers", "AAA", "--out", str(out), "--html", ""]
    proc = subprocess.run(cmd_s, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_bytes())
    assert doc["events"] == 150 and doc["source"]["kind"] == "seconds"
