"""``streamdesk report``: P&L per strategy and day by average cost, hand-computed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from streamdesk.cli_report import MANUAL, ReportFill, build_report, report_day

NY = ZoneInfo("America/New_York")
D = Decimal


def fill(strategy: str, instruction: str, qty: int, price: str, day: int, hour: int = 10,
         symbol: str = "AAA", paper: bool = True) -> ReportFill:  # fmt: skip
    at = datetime(2026, 11, 1, hour, tzinfo=NY) + timedelta(days=day - 1)
    return ReportFill(strategy, symbol, "EQUITY", instruction, D(qty), D(price), at, paper)


@pytest.mark.unit
def test_report_day_by_average_cost() -> None:
    fills = [
        fill("a", "BUY", 10, "100", 27),  # the day before: average 100
        fill("a", "BUY", 10, "110", 30),  # average 105
        fill("a", "SELL", 5, "120", 30, 11),  # realizes (120 - 105) * 5 = 75
        fill("b", "SELL", 4, "50", 30, symbol="BBB", paper=False),  # short 4 at 50
        fill("b", "BUY", 4, "45", 30, 12, symbol="BBB", paper=False),  # +20
        fill("a", "SELL", 15, "90", 30, 23),  # 23:00 New York: still 11-30: (90-105)*15 = -225
        fill("a", "BUY", 1, "1", 31),  # the next day: not in the report
    ]
    rows = report_day(fills, date(2026, 11, 30), {"AAA": D("95"), "BBB": D("44")})
    by = {r.strategy: r for r in rows}
    assert by["a"].fills == 3 and by["a"].realized == D(75 - 225)
    assert by["a"].positions == {} and by["a"].unrealized == 0 and by["a"].paper
    assert by["b"].realized == D(20) and not by["b"].paper
    # one day earlier: a holds 10 at 100, marked at 95
    [earlier] = report_day(fills, date(2026, 11, 27), {"AAA": D("95")})
    assert (earlier.realized, earlier.unrealized, earlier.positions) == (0, D(-50), {"AAA": 10})
    assert report_day(fills, date(2026, 11, 27), {})[0].unrealized is None  # no mark


@pytest.mark.integration
async def test_report_from_the_database_and_entry_point(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("INSERT INTO strategies (id, module) VALUES ('s', 'm:C')")
        for coid, instr, qty, price, hour in (("s:1", "BUY", 10, "100", 10),
                                              ("s:2", "SELL", 10, "103.5", 11)):  # fmt: skip
            tid = await conn.fetchval(
                "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type, "
                "status, filled_quantity, avg_fill_price, source, strategy_id, client_order_id, "
                "paper) VALUES ('AAA', 'EQUITY', $1, $2, 'MARKET', 'filled', $2, $3, 'strategy', "
                "'s', $4, true) RETURNING id",
                instr, qty, D(price), coid,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO trade_events (trade_id, from_status, to_status, at) "
                "VALUES ($1, 'working', 'filled', $2)",
                tid, datetime(2026, 11, 30, hour, tzinfo=NY),
            )  # fmt: skip
        await conn.execute(
            "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type, status, "
            "filled_quantity, avg_fill_price, updated_at) VALUES ('BBB', 'EQUITY', 'BUY', 2, "
            "'LIMIT', 'filled', 2, 10, $1)",
            datetime(2026, 11, 30, 12, tzinfo=NY),
        )
        rows = {r.strategy: r for r in await build_report(conn, date(2026, 11, 30))}
        assert rows["s"].realized == D(35) and rows["s"].fills == 2
        assert rows[MANUAL].positions == {"BBB": 2} and rows[MANUAL].unrealized is None
    finally:
        await conn.close()
    out = subprocess.run(
        [sys.executable, "-m", "streamdesk.cli", "report", "--day", "2026-11-30", "--json"],
        env={**os.environ, "DATABASE_URL": db_url}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert [(s["strategy"], s["realized"]) for s in got["strategies"]] == [
        (MANUAL, "0.00"), ("s", "35.00")]  # fmt: skip
    bad = subprocess.run(
        [sys.executable, "-m", "streamdesk.cli", "report", "--day", "30/11/2026"],
        env={**os.environ, "DATABASE_URL": db_url}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
