"""The strategy service on a real Postgres and Redis: orders as tagged trades rows, limits
disabling with an alert, enable/disable/flatten from the CLI, bad messages refused."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from helpers import T0, add_strategy, insert_bar, message, publish, wait_for

from streamdesk import constants
from streamdesk.cli_strategy import list_strategies, set_enabled
from streamdesk.config import load_settings
from streamdesk_strategy.config import Settings
from streamdesk_strategy.service import StrategyService

pytestmark = pytest.mark.integration


@asynccontextmanager
async def service(db_url: str, redis_url: str, **extra: Any) -> AsyncIterator[StrategyService]:
    settings = load_settings(
        Settings, database_url=db_url, redis_url=redis_url, backfill_enabled=False,
        strategy_poll_interval=0.1, strategy_control_interval=0.2, strategy_block_ms=50,
        **extra,
    )  # fmt: skip
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    redis = aioredis.Redis.from_url(redis_url)
    svc = StrategyService(settings, pool, redis)
    await svc.start()
    task = asyncio.create_task(svc.run())
    try:
        yield svc
    finally:
        svc.stop()
        await asyncio.wait_for(task, 10)
        await svc.aclose()
        await pool.close()
        await redis.aclose()


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "streamdesk.cli", "strategy", *args],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


async def test_orders_limits_alert_and_cli(db_url: str, redis_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.delete(constants.COMMITTED_STREAM)
        await add_strategy(conn, "every", "live_strategies:BuyEveryBar", max_orders_per_day=2)
        for i in range(4):
            await insert_bar(conn, "AAA", T0 + i * 60_000, 10.0 + i)
        async with service(db_url, redis_url) as svc:
            statuses: list[tuple[str, ...]] = []
            svc.on_status = lambda *a: statuses.append(a)  # the heartbeat's set_status
            await publish(redis, {**message(T0, 10.0), "v": 99})  # type: ignore[typeddict-item]
            await redis.xadd(constants.COMMITTED_STREAM, {"d": b"not json"})
            for i in range(5):
                await publish(redis, message(T0 + i * 60_000, 10.0 + i))
            enabled = await wait_for(
                lambda: conn.fetchval("SELECT enabled FROM strategies WHERE id = 'every'"),
                lambda v: v is False,
            )
            assert enabled is False
            assert svc.counters["bad_messages"] == 2
            trades = await conn.fetch(
                "SELECT symbol, instruction, quantity, status, source, strategy_id, "
                "client_order_id, paper, user_id FROM trades ORDER BY id"
            )
            assert [t["client_order_id"] for t in trades] == [
                f"every:AAA:{T0 + 60_000}:bar", f"every:AAA:{T0 + 120_000}:bar"]  # fmt: skip
            assert {(t["source"], t["strategy_id"], t["paper"], t["status"]) for t in trades} == {
                ("strategy", "every", True, "pending")}  # fmt: skip
            alerts = await conn.fetch("SELECT kind, message FROM strategy_alerts")
            assert [a["kind"] for a in alerts] == ["max_orders_per_day"]
            state = json.loads(await conn.fetchval("SELECT state FROM strategies WHERE id='every'"))
            # the bars the strategy saw: the finished minutes, their closes, from bars_1m
            assert [b[:2] for b in state["bars"]] == [
                [T0, 10.0],
                [T0 + 60_000, 11.0],
                [T0 + 120_000, 12.0],
            ]

            await wait_for(lambda: asyncio.sleep(0, statuses[-1:]), lambda v: v == [
                ("degraded", "1 open strategy alert(s)")])  # fmt: skip
            # enable from the CLI (functions; the entry point below): alerts resolved
            await set_enabled(conn, "every", True)
            listed = {r["id"]: r for r in await list_strategies(conn)}
            assert listed["every"]["enabled"] and listed["every"]["open_alerts"] == 0
            await wait_for(lambda: asyncio.sleep(0, svc.runners["every"].enabled), bool)
            await wait_for(lambda: asyncio.sleep(0, statuses[-1:]), lambda v: v == [("ok",)])

            # flatten through the console entry point: the two pending orders are cancelled
            # (no position: nothing to sell) and the strategy is disabled
            done = await asyncio.to_thread(cli, db_url, "flatten", "every")
            assert done.returncode == 0, done.stderr
            statuses = await wait_for(
                lambda: conn.fetch("SELECT status FROM trades ORDER BY id"),
                lambda rows: all(r["status"] == "cancelled" for r in rows),
            )
            assert len(statuses) == 2
            row = await wait_for(
                lambda: conn.fetchrow(
                    "SELECT enabled, flatten_requested_at, disabled_reason FROM strategies"
                ),
                lambda r: r["flatten_requested_at"] is None and not r["enabled"],
            )
            assert "flattened" in row["disabled_reason"]
            events = await conn.fetch("SELECT reason FROM trade_events ORDER BY id")
            assert [e["reason"] for e in events] == [
                "cancelled by the strategy before submission"] * 2  # fmt: skip
        bad = await asyncio.to_thread(cli, db_url, "disable", "nope")
        assert bad.returncode == 1 and "no strategy" in bad.stderr
        added = await asyncio.to_thread(
            cli, db_url, "add", "x1", "live_strategies:BuyOnFirstBar", "--tickers", "aaa,bbb",
            "--params", '{"qty": 2}', "--max-loss-per-day", "12.5", "--live",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        again = await asyncio.to_thread(cli, db_url, "add", "x1", "m:C", "--tickers", "A")
        assert again.returncode == 1 and "exists" in again.stderr
        bad = await asyncio.to_thread(cli, db_url, "add", "x2", "m:C", "--tickers", "A",
                                      "--params", "[1]")  # fmt: skip
        assert bad.returncode == 2 and "JSON object" in bad.stderr
        listing = await asyncio.to_thread(cli, db_url, "list", "--json")
        rows = {r["id"]: r for r in json.loads(listing.stdout)}
        assert set(rows) == {"every", "x1"}
        assert (rows["x1"]["tickers"], rows["x1"]["mode"], rows["x1"]["enabled"]) == (
            ["AAA", "BBB"], "live", False)  # fmt: skip
        assert rows["x1"]["max_loss_per_day"] == 12.5
    finally:
        await conn.close()
        await redis.aclose()


async def test_a_strategy_bug_disables_it(db_url: str, redis_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.delete(constants.COMMITTED_STREAM)
        await add_strategy(conn, "boom", "live_strategies:Boom")
        await add_strategy(conn, "missing", "no_such_module:Nope")
        await insert_bar(conn, "AAA", T0, 10.0)
        async with service(db_url, redis_url):
            await publish(redis, message(T0, 10.0))
            await publish(redis, message(T0 + 60_000, 10.0))
            rows = await wait_for(
                lambda: conn.fetch(
                    "SELECT id, enabled, disabled_reason FROM strategies ORDER BY id"
                ),
                lambda rs: not any(r["enabled"] for r in rs),
            )
        assert "strategy bug" in rows[0]["disabled_reason"]
        assert "not found" in rows[1]["disabled_reason"]
        kinds = await conn.fetch("SELECT strategy_id, kind FROM strategy_alerts ORDER BY id")
        assert {(k["strategy_id"], k["kind"]) for k in kinds} == {
            ("boom", "error"), ("missing", "load_error")}  # fmt: skip
        assert await conn.fetchval("SELECT count(*) FROM trades") == 0
    finally:
        await conn.close()
        await redis.aclose()


async def test_identity_and_paper_in_a_live_deployment(db_url: str, redis_url: str) -> None:
    """A configured operator identity must be an operator; its id is on the rows. A paper
    strategy in a live deployment is never run (disabled with an alert)."""
    import uuid

    from streamdesk_strategy.service import IdentityError

    conn = await asyncpg.connect(db_url)
    redis = aioredis.Redis.from_url(redis_url)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    who = uuid.uuid4()
    try:
        await redis.delete(constants.COMMITTED_STREAM)
        base = {"database_url": db_url, "redis_url": redis_url, "backfill_enabled": False}
        svc = StrategyService(
            load_settings(Settings, **base, strategy_operator_id=who), pool, redis
        )
        with pytest.raises(IdentityError, match="not an operator"):
            await svc.start()
        supa = load_settings(Settings, **base, supabase_url="https://abcd.supabase.co")
        with pytest.raises(IdentityError, match="STRATEGY_OPERATOR_ID"):
            await StrategyService(supa, pool, redis).start()

        await conn.execute("INSERT INTO operators (user_id) VALUES ($1)", who)
        await add_strategy(conn, "op", "live_strategies:BuyOnFirstBar")
        await insert_bar(conn, "AAA", T0, 10.0)
        async with service(db_url, redis_url, strategy_operator_id=who):
            await publish(redis, message(T0, 10.0))
            await publish(redis, message(T0 + 60_000, 10.0))
            user = await wait_for(lambda: conn.fetchval("SELECT user_id FROM trades"), bool)
        assert user == who

        live = load_settings(
            Settings, **base, trading_mode="live", schwab_api_key="real-key-123",
            schwab_app_secret="real-secret-456",
        )  # fmt: skip
        await add_strategy(conn, "paper1", "live_strategies:BuyOnFirstBar")
        svc = StrategyService(live, pool, redis)
        await svc.start()
        assert not svc.runners["paper1"].active
        row = await conn.fetchrow(
            "SELECT enabled, disabled_reason FROM strategies WHERE id = 'paper1'"
        )
        assert (
            not row["enabled"] and "paper strategy in a live deployment" in row["disabled_reason"]
        )
        await svc.aclose()
    finally:
        await pool.close()
        await conn.close()
        await redis.aclose()
