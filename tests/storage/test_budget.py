"""The budget guard: shedding order and its warning, health at 80%, `streamdesk storage`."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
import pytest
from storage_helpers import DAY, NO_JIT, partitions, session_open_utc

from streamdesk.cli import main as cli_main
from streamdesk.config import load_settings
from streamdesk.storage_compact import compact
from streamdesk_health.config import Settings as HealthSettings
from streamdesk_health.monitor import HealthMonitor
from streamdesk_health.status import Status
from streamdesk_indicators.shedding import DESCRIPTIONS, Shedder, level_for
from streamdesk_indicators.writer import Batch, Writer

MB = 2**20


def _opt(sec: int, i: int) -> tuple[object, ...]:
    """An option row whose prices and greeks change every second."""
    t0 = int(session_open_utc(DAY).timestamp() * 1000)
    return (
        "SPY   260313C00500000",
        t0 + sec * 1000,
        "SPY",
        "CALL",
        500.0,
        DAY,
        2.0 + i / 100,
        1.9 + i / 100,
        2.1 + i / 100,
        0.5 + i / 1e4,
        0.01 + i / 1e4,
        -0.2 + i / 1e4,
        0.3 + i / 1e4,
        0.1 + i / 1e4,
        20 + i / 1e3,
        i,
        100,
        500 + i / 100,
        False,
    )


@pytest.mark.unit
def test_levels_are_shed_in_the_documented_order(caplog: pytest.LogCaptureFixture) -> None:
    assert [level_for(int(f * 100), 100, (0.9, 0.95, 0.98)) for f in (0.5, 0.9, 0.96, 0.99)] == [
        0,
        1,
        2,
        3,
    ]
    shed = Shedder()
    rows = [_opt(s, s) for s in range(10)]
    assert shed.apply(rows) == rows  # level 0: untouched
    with caplog.at_level(logging.WARNING):
        shed.set_size(91 * MB, 100 * MB, (0.9, 0.95, 0.98))
    assert "shedding level 1 (option greeks every 5 s)" in caplog.text
    assert shed.reason is not None and "level 1" in shed.reason
    out = shed.apply(rows)
    # prices still every second; greeks and IV hold the first values of each 5-s block
    assert [r[7] for r in out] == [r[7] for r in rows]
    assert [r[9] for r in out] == [rows[0][9]] * 5 + [rows[5][9]] * 5
    assert [r[14] for r in out] == [rows[0][14]] * 5 + [rows[5][14]] * 5
    shed.set_size(96 * MB, 100 * MB, (0.9, 0.95, 0.98))
    out = shed.apply([_opt(s, s) for s in range(10, 20)])
    assert [r[7] for r in out] == [out[0][7]] * 5 + [out[5][7]] * 5  # prices held too
    shed.set_size(99 * MB, 100 * MB, (0.9, 0.95, 0.98))
    assert shed.apply(rows) == [] and shed.shed_rows >= 10 + 16
    assert DESCRIPTIONS[3] in (shed.reason or "")
    shed.set_size(50 * MB, 100 * MB, (0.9, 0.95, 0.98))
    assert shed.level == 0 and shed.reason is None and shed.apply(rows) == rows


@pytest.mark.integration
async def test_writer_sheds_before_the_budget_and_held_greeks_pack_small(db_url: str) -> None:
    await partitions(db_url)
    conn = await asyncpg.connect(db_url, server_settings=NO_JIT)
    size = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    writer = Writer(db_url, budget_mb=size / 0.92 / MB, size_check_interval=0)
    try:
        await writer.commit(
            Batch(
                options=[_opt(s, s) for s in range(600)],
                days={int(session_open_utc(DAY).timestamp()) // 86_400},
            )
        )
        assert writer.shedder.level == 1
        greeks = await conn.fetch('SELECT delta FROM option_prices ORDER BY "timestamp" LIMIT 10')
        assert len({r[0] for r in greeks[:5]}) == 1 and greeks[0][0] != greeks[5][0]
        await compact(conn)
        info = await conn.fetchval("SELECT m[10] FROM option_prices_packed ORDER BY t0 LIMIT 1")
        assert info >> 40 & 255 == 5  # delta stored once per 5 seconds
        writer.budget_bytes = int(size * 1.01)
        writer._size_checked = float("-inf")
        await writer.commit(Batch(options=[_opt(s, s) for s in range(600, 610)]))
        assert writer.shedder.level == 3 and writer.shedder.shed_rows >= 10
    finally:
        await writer.close()
        await conn.close()


@pytest.mark.integration
async def test_health_warns_from_80_percent_of_the_budget(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(db_url)
    size = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    await conn.close()
    base = {
        "database_url": db_url,
        "redis_url": redis_url,
        "tickers": "SPY",
        "schwab_token_path": tmp_path / "token.json",
        "log_format": "text",
    }
    for budget, status in ((size / 0.5, Status.OK), (size / 0.85, Status.DEGRADED)):
        mon = HealthMonitor(load_settings(HealthSettings, **base, health_db_budget_mb=budget / MB))
        try:
            pg = (await mon.run_once()).components["postgres"]
        finally:
            await mon.stop()
        assert pg.status == status, pg.reason
    assert "85% of its" in pg.reason and "warning from 80%" in pg.reason


@pytest.mark.integration
def test_storage_command_reports_and_compacts(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("STORAGE_BUDGET_MB", "500")
    assert cli_main(["storage", "compact"]) == 0
    assert "compacted 0 rows" in capsys.readouterr().out
    assert cli_main(["storage"]) == 0
    out = capsys.readouterr().out
    for word in ("option_prices", "packed", "B/sample", "days with per-second data"):
        assert word in out
