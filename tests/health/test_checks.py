"""Component checks on real Redis and Postgres: inputs are created by the tests themselves."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import redis.asyncio as aioredis

from streamdesk import constants
from streamdesk.heartbeat import Heartbeat
from streamdesk.partitions import ensure_partition
from streamdesk_health.config import Settings
from streamdesk_health.monitor import HealthMonitor
from streamdesk_health.status import Status

SettingsFactory = Callable[..., Settings]

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")
#: A regular trading day (Wednesday); tests create its partitions themselves.
SESSION_DAY = date(2026, 3, 11)


def _session_time(hour: int, minute: int) -> datetime:
    """``SESSION_DAY`` at hour:minute New York time (the market is open 09:30-16:00)."""
    d = SESSION_DAY
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=NY)


@pytest.fixture(autouse=True)
async def session_partitions(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        for day in (SESSION_DAY - timedelta(days=1), SESSION_DAY):
            for table in ("equity_data", "indicators", "option_prices"):
                await ensure_partition(conn, table, day)
    finally:
        await conn.close()


async def _insert_ticks(db_url: str, rows: list[tuple[str, datetime]]) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.executemany(
            'INSERT INTO equity_data (ticker, "timestamp", price, volume) VALUES ($1, $2, 1.0, 1)',
            rows,
        )
    finally:
        await conn.close()


async def test_stopped_service_is_down_within_its_heartbeat_ttl(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    # Production ratios scaled down (interval = TTL/3, checks twice per interval): the stale
    # threshold then sits half a second before the TTL, which absorbs a slow check round on a
    # loaded machine. Sub-second TTLs made this a race against the scheduler.
    settings = make_settings(heartbeat_ttl=3.0, heartbeat_interval=1.0, health_check_interval=0.5)
    client = aioredis.Redis.from_url(redis_url)
    hb = Heartbeat(client, "indicators", interval=1.0, ttl=3.0, counters=lambda: {"rows": 5})
    mon = HealthMonitor(settings)
    hb.start()
    try:
        await asyncio.sleep(0.3)
        mon.start()
        deadline = time.monotonic() + 5
        while mon.snapshot is None or mon.snapshot.components["indicators"].status != Status.OK:
            assert time.monotonic() < deadline, "indicators never became ok"
            await asyncio.sleep(0.05)
        comp = mon.snapshot.components["indicators"]
        assert comp.figures["instances"][0]["counters"] == {"rows": 5}
        # A crash: the process stops beating and leaves its key to expire.
        await hb.stop(remove=False)
        stopped = time.monotonic()
        while mon.snapshot.components["indicators"].status != Status.DOWN:
            assert time.monotonic() - stopped < 6, "never went down"
            await asyncio.sleep(0.02)
        assert time.monotonic() - stopped <= settings.heartbeat_ttl
        assert "stale" in mon.snapshot.components["indicators"].reason
        # Services never started are down too.
        assert mon.snapshot.components["streamer"].status == Status.DOWN
        assert mon.snapshot.status == Status.DOWN
    finally:
        await hb.stop()
        await mon.stop()
        await client.aclose()


async def test_degraded_heartbeat_carries_its_reason(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    hb = Heartbeat(client, "trade-executor", instance="ex-1", ttl=5)
    hb.set_status("degraded", "broker unreachable")
    await hb.beat()
    mon = HealthMonitor(make_settings())
    try:
        snap = await mon.run_once()
        comp = snap.components["trade-executor"]
        assert comp.status == Status.DEGRADED
        assert "ex-1: broker unreachable" in comp.reason
    finally:
        await mon.stop()
        await client.aclose()


async def test_stale_data_is_degraded_only_while_the_market_is_open(
    make_settings: SettingsFactory, db_url: str
) -> None:
    open_now = _session_time(11, 0)
    await _insert_ticks(
        db_url,
        [("SPY", open_now - timedelta(seconds=2)), ("QQQ", open_now - timedelta(minutes=2))],
    )
    mon = HealthMonitor(make_settings(health_freshness_max_age_s=30))
    try:
        snap = await mon.run_once(now=open_now)
        fresh = snap.components["freshness"]
        assert fresh.status == Status.DEGRADED
        assert "QQQ 2m" in fresh.reason and "SPY" not in fresh.reason
        assert fresh.figures["market_open"] is True
        assert fresh.figures["tickers"]["SPY"]["age_s"] == pytest.approx(2.0)

        # The same two minutes of staleness after the close: no alarm.
        closed_now = open_now.replace(hour=18)
        await _insert_ticks(
            db_url,
            [
                ("SPY", closed_now - timedelta(seconds=2)),
                ("QQQ", closed_now - timedelta(minutes=2)),
            ],
        )
        snap = await mon.run_once(now=closed_now)
        fresh = snap.components["freshness"]
        assert fresh.status == Status.OK
        assert fresh.reason == "market closed"
        assert fresh.figures["tickers"]["QQQ"]["age_s"] == pytest.approx(120.0)
        assert "next_open" in fresh.figures
    finally:
        await mon.stop()


async def test_no_data_at_all_during_the_session_is_down_and_the_bell_has_grace(
    make_settings: SettingsFactory,
) -> None:
    mon = HealthMonitor(make_settings(health_freshness_max_age_s=30))
    try:
        # Ten seconds after the open: nothing yet, but staleness counts from the bell.
        snap = await mon.run_once(now=_session_time(9, 30) + timedelta(seconds=10))
        assert snap.components["freshness"].status == Status.OK
        snap = await mon.run_once(now=_session_time(10, 0))
        fresh = snap.components["freshness"]
        assert fresh.status == Status.DOWN
        assert "no data" in fresh.reason
    finally:
        await mon.stop()


def _write_token(path: Path, created: float) -> None:
    path.write_text(
        json.dumps(
            {
                "creation_timestamp": int(created),
                "token": {"access_token": "secret", "expires_at": int(created) + 1800},
            }
        )
    )


async def test_token_age(make_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_settings()
    token = tmp_path / "token.json"
    mon = HealthMonitor(settings)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        snap = await mon.run_once(now=now)
        assert snap.components["token"].status == Status.OK  # paper mode: no file is fine
        _write_token(token, now.timestamp() - 2 * 86400)
        snap = await mon.run_once(now=now)
        assert snap.components["token"].status == Status.OK
        assert snap.components["token"].reason == "expires in 5d 00h"

        _write_token(token, now.timestamp() - (5 * 86400 + 3 * 3600))
        snap = await mon.run_once(now=now)
        tok = snap.components["token"]
        assert tok.status == Status.DEGRADED
        assert "expires in 1d 21h" in tok.reason
        assert tok.figures["refresh_expires_in_s"] == pytest.approx(45 * 3600, abs=2)
        assert "secret" not in json.dumps(tok.to_json())

        _write_token(token, now.timestamp() - 8 * 86400)
        snap = await mon.run_once(now=now)
        assert snap.components["token"].status == Status.DOWN
        assert "expired 1d 00h ago" in snap.components["token"].reason
    finally:
        await mon.stop()
    required = HealthMonitor(make_settings(health_token_required=True))
    try:
        token.unlink()
        snap = await required.run_once()
        assert snap.components["token"].status == Status.DOWN
    finally:
        await required.stop()


async def test_database_over_budget_is_degraded(make_settings: SettingsFactory) -> None:
    roomy = HealthMonitor(make_settings(health_db_budget_mb=500))
    tight = HealthMonitor(make_settings(health_db_budget_mb=1))
    try:
        ok = (await roomy.run_once()).components["postgres"]
        assert ok.status == Status.OK
        size = ok.figures["database_size_bytes"]
        assert 1 * 2**20 < size < 500 * 2**20
        over = (await tight.run_once()).components["postgres"]
        assert over.status == Status.DEGRADED
        assert "over its 1 MB budget" in over.reason
        assert over.figures["budget_used_pct"] > 100
    finally:
        await roomy.stop()
        await tight.stop()


async def test_table_ages(make_settings: SettingsFactory, db_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await _insert_ticks(db_url, [("SPY", now - timedelta(seconds=7))])
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            'INSERT INTO option_prices (ticker, "timestamp", underlying, option_type, '
            "strike_price, expiration_date) VALUES ('SPY   261218C00500000', $1, 'SPY', 'CALL', "
            "500, '2026-12-18')",
            now - timedelta(seconds=3),
        )
    finally:
        await conn.close()
    mon = HealthMonitor(make_settings())
    try:
        pg = (await mon.run_once(now=now)).components["postgres"]
        ages = pg.figures["last_row_age_s"]
        assert ages["equity_data"] == pytest.approx(7.0)
        assert ages["option_prices"] == pytest.approx(3.0)
        assert ages["indicators"] is None
    finally:
        await mon.stop()


async def test_redis_lag_and_pending(make_settings: SettingsFactory, redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    stream = constants.tick_stream(0)
    try:
        await client.xgroup_create(stream, constants.INDICATORS_GROUP, id="0", mkstream=True)
        for i in range(8):
            await client.xadd(stream, {constants.TICK_FIELD: str(i)})
        await client.xreadgroup(constants.INDICATORS_GROUP, "c1", {stream: ">"}, count=3)
        mon = HealthMonitor(make_settings(health_stream_lag_max=4, health_stream_pending_max=2))
        try:
            comp = (await mon.run_once()).components["redis"]
            entry = comp.figures["streams"][stream]
            assert entry == {"length": 8, "lag": 5, "pending": 3}
            assert comp.status == Status.DEGRADED
            assert "lag 5 entries" in comp.reason and "3 pending" in comp.reason
            # A stream with data but no consumer group.
            await client.xadd(constants.tick_stream(1), {constants.TICK_FIELD: "x"})
            comp = (await mon.run_once()).components["redis"]
            assert "consumer group 'indicators' missing" in comp.reason
        finally:
            await mon.stop()
        roomy = HealthMonitor(make_settings(health_stream_lag_max=100))
        try:
            await client.delete(constants.tick_stream(1))
            comp = (await roomy.run_once()).components["redis"]
            assert comp.status == Status.OK
        finally:
            await roomy.stop()
    finally:
        await client.aclose()


async def test_streamer_state_and_open_gaps(
    make_settings: SettingsFactory, redis_url: str, db_url: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    hb = Heartbeat(client, "streamer", instance="s1", ttl=30)
    await hb.beat()
    now = _session_time(11, 0)
    mon = HealthMonitor(make_settings())
    try:
        comp = (await mon.run_once(now=now)).components["streamer"]
        assert comp.figures["open_gaps"] == 0
        await client.set(
            constants.STREAMER_STATE_KEY,
            json.dumps(
                {
                    "state": "reconnecting",
                    "since": now.timestamp() - 42,
                    "symbols": ["SPY"],
                    "gap_open": True,
                }
            ),
        )
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute(
                "INSERT INTO stream_gaps (started_at, symbols) VALUES ($1, '{SPY}')",
                now - timedelta(minutes=3),
            )
            await conn.execute(
                "INSERT INTO stream_gaps (started_at, ended_at) VALUES ($1, $2)",
                now - timedelta(hours=1),
                now - timedelta(minutes=50),
            )
        finally:
            await conn.close()
        # The heartbeat ts is the real clock; judge its age with a real "now" while keeping
        # the market open by using MARKET_HOURS=always.
        always = HealthMonitor(make_settings(market_hours="always"))
        try:
            comp = (await always.run_once()).components["streamer"]
            assert comp.status == Status.DEGRADED
            assert comp.figures["open_gaps"] == 1
            assert "connection reconnecting" in comp.reason
            assert "data gap open" in comp.reason
            assert "1 open gap(s)" in comp.reason
        finally:
            await always.stop()
        # Market closed: disconnection and gaps are reported, not alarmed.
        closed = HealthMonitor(make_settings(market_hours="regular"))
        try:
            closed_now = datetime(2026, 3, 14, 12, 0, tzinfo=NY)  # a Saturday
            comp = (await closed.run_once(now=closed_now)).components["streamer"]
            assert comp.figures["open_gaps"] == 1
            assert "reconnecting" not in comp.reason
        finally:
            await closed.stop()
    finally:
        await hb.stop()
        await mon.stop()
        await client.aclose()


async def test_executor_unknown_orders_and_reconciliation(
    make_settings: SettingsFactory, redis_url: str, db_url: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    now = datetime.now(UTC)
    mon = HealthMonitor(make_settings(health_unknown_grace_s=60, health_reconcile_max_age_s=600))
    try:
        ex = (await mon.run_once(now=now)).components["executor"]
        assert ex.status == Status.OK
        assert ex.figures["unknown_orders"] == 0
        assert "no reconciliation reported yet" in ex.reason

        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute(
                "INSERT INTO trades (symbol, asset_type, instruction, quantity, status, "
                "updated_at) VALUES ('SPY', 'EQUITY', 'BUY', 1, 'unknown', $1), "
                "('QQQ', 'EQUITY', 'BUY', 1, 'unknown', $2), "
                "('AAPL', 'EQUITY', 'BUY', 1, 'filled', $1)",
                now - timedelta(minutes=5),
                now - timedelta(seconds=5),
            )
        finally:
            await conn.close()
        await client.set(
            constants.EXECUTOR_RECONCILE_KEY,
            json.dumps({"ts": now.timestamp() - 30, "checked": 2, "resolved": 0}),
        )
        ex = (await mon.run_once(now=now)).components["executor"]
        assert ex.status == Status.DEGRADED
        assert "2 order(s) with unknown outcome, oldest 5m" in ex.reason
        assert ex.figures["last_reconcile_age_s"] == pytest.approx(30, abs=0.5)

        await client.set(
            constants.EXECUTOR_RECONCILE_KEY,
            json.dumps({"at": (now - timedelta(hours=1)).isoformat(), "errors": ["timeout"]}),
        )
        ex = (await mon.run_once(now=now)).components["executor"]
        assert "last reconciliation 1h 00m ago" in ex.reason
        assert "reconciliation reported errors" in ex.reason
    finally:
        await mon.stop()
        await client.aclose()


async def test_unreachable_postgres_makes_its_components_down(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    from streamdesk_dev.localservers import free_port

    client = aioredis.Redis.from_url(redis_url)
    hb = Heartbeat(client, "streamer", instance="s1", ttl=30)
    await hb.beat()
    bad = f"postgresql://postgres@127.0.0.1:{free_port()}/nope"
    mon = HealthMonitor(
        make_settings(database_url=bad, health_check_timeout=2.0, market_hours="always")
    )
    try:
        snap = await mon.run_once()
        for name in ("postgres", "freshness", "executor"):
            assert snap.components[name].status == Status.DOWN
            assert "check failed" in snap.components[name].reason
        assert snap.components["redis"].status == Status.OK
        # The streamer itself is fine: Postgres trouble is reported once, by postgres.
        streamer = snap.components["streamer"]
        assert streamer.status == Status.OK
        assert streamer.figures["open_gaps"] is None
        assert "postgres@" not in json.dumps(snap.to_json())  # never the DSN
    finally:
        await mon.stop()
        await hb.stop()
        await client.aclose()
