"""trade-executor against market-sim through the real schwab-py client, real Postgres, Redis."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from executor_helpers import (
    FINAL,
    SettingsFactory,
    broker_quote,
    events_of,
    insert_trade,
    running,
    wait_status,
)

from streamdesk.constants import EXECUTOR_RECONCILE_KEY, last_quote_key

pytestmark = pytest.mark.integration


async def option_symbol(executor: Any, underlying: str = "SPY") -> str:
    """A near-the-money call from market-sim's chain."""
    resp = await executor.broker.client.get_option_chain(underlying, strike_count=2)
    assert resp.status_code == 200, resp.text
    chain = resp.json()
    exp_map = chain["callExpDateMap"]
    first_exp = sorted(exp_map)[0]
    strikes = exp_map[first_exp]
    contract = strikes[sorted(strikes, key=float)[0]][0]
    return str(contract["symbol"])


async def test_order_types_reach_final_states(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            # equity market buy, then a marketable limit sell of what we hold
            buy = await insert_trade(conn, symbol="AAPL", quantity=5)
            row = await wait_status(conn, buy, FINAL)
            assert row["status"] == "filled", row["error"]
            assert row["filled_quantity"] == 5 and row["avg_fill_price"] > 0
            assert row["broker_order_id"] is not None and row["submitted_at"] is not None
            bid, _ask = await broker_quote(ex, "AAPL")
            sell = await insert_trade(
                conn,
                symbol="AAPL",
                instruction="SELL",
                quantity=5,
                order_type="LIMIT",
                limit_price=(bid * Decimal("0.99")).quantize(Decimal("0.01")),
            )
            assert (await wait_status(conn, sell, FINAL))["status"] == "filled"
            # marketable limit buy
            _bid, ask = await broker_quote(ex, "MSFT")
            lim = await insert_trade(
                conn,
                symbol="MSFT",
                quantity=2,
                order_type="LIMIT",
                limit_price=(ask * Decimal("1.01")).quantize(Decimal("0.01")),
            )
            row = await wait_status(conn, lim, FINAL)
            assert row["status"] == "filled", row["error"]
            # options: buy to open (market), sell to close (market)
            occ = await option_symbol(ex)
            bto = await insert_trade(
                conn, symbol=occ, asset_type="OPTION", instruction="BUY_TO_OPEN", quantity=1
            )
            row = await wait_status(conn, bto, FINAL)
            assert row["status"] == "filled", row["error"]
            stc = await insert_trade(
                conn, symbol=occ, asset_type="OPTION", instruction="SELL_TO_CLOSE", quantity=1
            )
            assert (await wait_status(conn, stc, FINAL))["status"] == "filled"
            # options: sell to open, then buy to close. market-sim's paper account checks cash
            # only for buys and holdings only for SELL/SELL_TO_CLOSE (broker._reject_reason), so
            # the sell to open fills at the bid (a short call) and the buy to close of that
            # short fills at the ask: both `filled`, deterministically.
            sto = await insert_trade(
                conn, symbol=occ, asset_type="OPTION", instruction="SELL_TO_OPEN", quantity=1
            )
            row = await wait_status(conn, sto, FINAL)
            assert row["status"] == "filled", row["error"]
            assert row["filled_quantity"] == 1 and row["broker_order_id"] is not None
            btc = await insert_trade(
                conn, symbol=occ, asset_type="OPTION", instruction="BUY_TO_CLOSE", quantity=1
            )
            row = await wait_status(conn, btc, FINAL)
            assert row["status"] == "filled", row["error"]
            # every transition left an event; the first ones are pending -> submitting -> working
            evs = await events_of(conn, buy)
            assert [e[:2] for e in evs[:2]] == [
                ("pending", "submitting"),
                ("submitting", "working"),
            ]
            assert evs[-1][1] == "filled"
            # positions and balances synced back
            await asyncio.sleep(0.5)
            bal = await conn.fetchrow("SELECT * FROM account_balances")
            assert bal is not None and bal["buying_power"] is not None
        finally:
            await conn.close()


async def test_resting_limit_cancel_and_cancel_race_with_fill(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, _ask = await broker_quote(ex, "NVDA")
            low = (bid * Decimal("0.96")).quantize(Decimal("0.01"))
            rest = await insert_trade(
                conn, symbol="NVDA", quantity=1, order_type="LIMIT", limit_price=low
            )
            await wait_status(conn, rest, ("working",))
            await conn.execute("UPDATE trades SET status = 'cancel_requested' WHERE id = $1", rest)
            row = await wait_status(conn, rest, FINAL)
            assert row["status"] == "cancelled"
            order = await ex.broker.get_order(row["broker_order_id"])
            assert order is not None and order.status == "CANCELED"
        finally:
            await conn.close()
    # Race: the order fills at the broker while the executor is not syncing; the cancel request
    # then meets a filled order and the row must end `filled`, not `cancelled`.
    settings = make_settings(executor_sync_interval=60.0)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            _bid, ask = await broker_quote(ex, "AMD")
            t = await insert_trade(
                conn,
                symbol="AMD",
                quantity=1,
                order_type="LIMIT",
                limit_price=(ask * Decimal("1.02")).quantize(Decimal("0.01")),
            )
            row = await wait_status(conn, t, ("working",))
            deadline = time.monotonic() + 10
            while (await ex.broker.get_order(row["broker_order_id"])).status != "FILLED":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            assert (await conn.fetchval("SELECT status FROM trades WHERE id=$1", t)) == "working"
            await conn.execute("UPDATE trades SET status = 'cancel_requested' WHERE id = $1", t)
            row = await wait_status(conn, t, FINAL)
            assert row["status"] == "filled" and row["filled_quantity"] == 1
            assert (await events_of(conn, t))[-1][:2] == ("cancel_requested", "filled")
        finally:
            await conn.close()


async def test_cancel_before_submission(make_settings: SettingsFactory) -> None:
    settings = make_settings(trading_enabled=True)
    conn = await asyncpg.connect(settings.database_url)
    try:
        t = await insert_trade(conn, symbol="AAPL")
        await conn.execute("UPDATE trades SET status = 'cancel_requested' WHERE id = $1", t)
        async with running(settings) as ex:
            row = await wait_status(conn, t, FINAL)
            assert row["status"] == "cancelled" and row["broker_order_id"] is None
            assert row["submitted_at"] is None
            assert (await events_of(conn, t)) == [
                ("cancel_requested", "cancelled", "cancelled before it was sent to the broker")
            ]
            # never reached the broker: market-sim has no order at all (the sim was reset)
            assert await ex.broker.list_orders(datetime.now(UTC) - timedelta(minutes=5)) == []
    finally:
        await conn.close()


async def _rejected(conn: asyncpg.Connection, trade_id: int) -> tuple[str, list[str]]:
    row = await wait_status(conn, trade_id, FINAL)
    assert row["status"] == "rejected", (row["status"], row["error"])
    assert row["broker_order_id"] is None and row["submitted_at"] is None
    detail = await conn.fetchval(
        "SELECT detail FROM trade_events WHERE trade_id = $1 AND to_status = 'rejected'", trade_id
    )
    return str(row["error"]), list(json.loads(detail).get("codes", []))


async def test_risk_rules_reject_with_reasons(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        risk_max_order_notional="20000",
        risk_max_daily_notional="30000",
        risk_max_quantity_equity=1000,
        risk_duplicate_window=30.0,
        risk_collar_pct="0.05",
    )
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, ask = await broker_quote(ex, "AAPL")
            cases: list[tuple[dict[str, Any], str, str]] = [
                ({"quantity": Decimal("1.5")}, "quantity_not_integer", "whole number"),
                ({"quantity": 1001}, "quantity_limit", "outside 1..1000"),
                (
                    {"order_type": "LIMIT", "limit_price": (ask * 2).quantize(Decimal("0.01"))},
                    "price_collar",
                    "outside the collar",
                ),
                (
                    {
                        "order_type": "LIMIT",
                        "limit_price": ask.quantize(Decimal("0.01")) + Decimal("0.001"),
                    },
                    "bad_tick",
                    "not a multiple of the tick",
                ),
                ({"quantity": int(20000 / ask) + 5}, "order_notional", "per-order maximum"),
                ({"instruction": "BUY_TO_OPEN"}, "invalid_request", "not an equity instruction"),
                ({"symbol": "BAD SYMBOL!"}, "invalid_request", "not an equity symbol"),
            ]
            for cols, code, text in cases:
                t = await insert_trade(conn, **cols)
                error, codes = await _rejected(conn, t)
                assert code in codes and text in error, (cols, error)
            # daily notional: two orders fit, the third does not
            qty = int(12000 / ask)
            first = await insert_trade(conn, symbol="MSFT", quantity=1)
            assert (await wait_status(conn, first, FINAL))["status"] == "filled"
            a = await insert_trade(conn, symbol="AAPL", quantity=qty)
            assert (await wait_status(conn, a, FINAL))["status"] == "filled"
            b = await insert_trade(conn, symbol="AAPL", quantity=qty + 1)
            assert (await wait_status(conn, b, FINAL))["status"] == "filled"
            c = await insert_trade(conn, symbol="AAPL", quantity=qty + 2)
            error, codes = await _rejected(conn, c)
            assert codes == ["daily_notional"] and "daily notional would reach" in error
            # duplicate within the window
            d1 = await insert_trade(conn, symbol="QQQ", quantity=1)
            d2 = await insert_trade(conn, symbol="QQQ", quantity=1)
            assert (await wait_status(conn, d1, FINAL))["status"] == "filled"
            error, codes = await _rejected(conn, d2)
            assert codes == ["duplicate"] and f"trade #{d1}" in error
            assert bid > 0
        finally:
            await conn.close()


async def test_switches_rate_buying_power_and_stale_quote(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    # kill switch + market orders off
    settings = make_settings(trading_enabled=False, risk_allow_market_orders=False)
    async with running(settings):
        conn = await asyncpg.connect(settings.database_url)
        try:
            error, codes = await _rejected(conn, await insert_trade(conn))
            assert set(codes) == {"trading_disabled", "market_orders_disabled"}
            assert "TRADING_ENABLED=false" in error and "market orders are disabled" in error
        finally:
            await conn.close()
    # rate limit and buying power (the `sim` fixture resets the paper account to 1M cash)
    settings = make_settings(
        risk_max_orders_per_minute=2,
        risk_max_order_notional="1000000000",
        risk_max_quantity_equity=10_000_000,
    )
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            for sym in ("AAPL", "MSFT"):
                t = await insert_trade(conn, symbol=sym)
                assert (await wait_status(conn, t, FINAL))["status"] == "filled"
            error, codes = await _rejected(conn, await insert_trade(conn, symbol="QQQ"))
            assert codes == ["rate_limit"] and "max 2/min" in error
            await conn.execute("UPDATE trades SET submitted_at = submitted_at - interval '2 min'")
            _bid, ask = await broker_quote(ex, "SPY")
            qty = int(2_000_000 / ask) + 1  # twice the account's cash
            error, codes = await _rejected(
                conn, await insert_trade(conn, symbol="SPY", quantity=qty)
            )
            assert codes == ["buying_power"] and "buying power is" in error
        finally:
            await conn.close()
    # stale quote from the streamer's Redis hash (quote source: redis only)
    settings = make_settings(executor_quote_source="redis", risk_quote_max_age=3.0)
    r = aioredis.Redis.from_url(redis_url)
    try:
        old_ms = int((time.time() - 10) * 1000)
        await r.hset(
            last_quote_key("AAPL"),
            mapping={"last": "100", "bid": "99.9", "ask": "100.1", "ts": str(old_ms)},
        )
        async with running(settings):
            conn = await asyncpg.connect(settings.database_url)
            try:
                error, codes = await _rejected(conn, await insert_trade(conn, symbol="AAPL"))
                assert codes == ["stale_quote"] and "max 3s" in error
                error, codes = await _rejected(conn, await insert_trade(conn, symbol="MSFT"))
                assert codes == ["no_quote"] and "no quote for MSFT" in error
            finally:
                await conn.close()
    finally:
        await r.aclose()


async def test_one_unsettled_order_per_symbol(make_settings: SettingsFactory) -> None:
    settings = make_settings(executor_workers=4)
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            bid, _ = await broker_quote(ex, "META")
            low = (bid * Decimal("0.97")).quantize(Decimal("0.01"))
            first = await insert_trade(conn, symbol="META", order_type="LIMIT", limit_price=low)
            await wait_status(conn, first, ("working",))
            second = await insert_trade(conn, symbol="META", quantity=2)
            await asyncio.sleep(1.0)
            # waits while the first is unsettled
            assert (
                await conn.fetchval("SELECT status FROM trades WHERE id = $1", second) == "pending"
            )
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(
                    "UPDATE trades SET status = 'working', account_hash = $2, "
                    "submitted_at = now() WHERE id = $1",
                    second,
                    ex.account,
                )
            await conn.execute("UPDATE trades SET status='cancel_requested' WHERE id=$1", first)
            assert (await wait_status(conn, first, FINAL))["status"] == "cancelled"
            assert (await wait_status(conn, second, FINAL))["status"] == "filled"
        finally:
            await conn.close()


async def test_reconcile_summary_and_heartbeat_counters(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            t = await insert_trade(conn, symbol="AAPL")
            await wait_status(conn, t, FINAL)
        finally:
            await conn.close()
        r = aioredis.Redis.from_url(redis_url)
        try:
            raw = await r.get(EXECUTOR_RECONCILE_KEY)
        finally:
            await r.aclose()
        assert raw is not None
        summary = json.loads(raw)
        # The order was linked on acceptance: no pass had an unlinked row to reconcile, and
        # the broker answered (no "error" key).
        assert summary == {
            "time": summary["time"],
            "checked": 0,
            "resolved": 0,
            "still_unknown": 0,
            "instance": ex.instance,
        }
        age = datetime.now(UTC) - datetime.fromisoformat(summary["time"])
        assert timedelta(0) <= age < timedelta(seconds=5), summary
        stats = ex.stats()
        assert stats["claimed"] == 1 and stats["accepted"] == 1 and stats["filled"] == 1
        assert stats["reconciled"] == 0 and stats.get("unknown", 0) == 0
        assert stats["last_submit_latency_ms"] > 0


async def test_option_limit_orders(make_settings: SettingsFactory) -> None:
    """Buy-to-open and sell-to-close as LIMIT orders on an in-the-money call (price > $3, so
    the option tick is 0.10), priced marketable on the tick."""
    settings = make_settings()
    async with running(settings) as ex:
        conn = await asyncpg.connect(settings.database_url)
        try:
            resp = await ex.broker.client.get_option_chain("SPY", strike_count=10)
            exp_map = resp.json()["callExpDateMap"]
            strikes = exp_map[sorted(exp_map)[-1]]
            occ = str(strikes[sorted(strikes, key=float)[0]][0]["symbol"])
            bid, ask = await broker_quote(ex, occ)
            assert bid > 3, (occ, bid)
            tick = Decimal("0.10")
            buy_px = ((ask / tick).to_integral_value(rounding="ROUND_CEILING")) * tick
            bto = await insert_trade(
                conn,
                symbol=occ,
                asset_type="OPTION",
                instruction="BUY_TO_OPEN",
                quantity=2,
                order_type="LIMIT",
                limit_price=buy_px,
            )
            row = await wait_status(conn, bto, FINAL)
            assert row["status"] == "filled", row["error"]
            assert row["avg_fill_price"] <= buy_px and row["notional"] == buy_px * 200
            bid, ask = await broker_quote(ex, occ)
            sell_px = ((bid / tick).to_integral_value(rounding="ROUND_FLOOR")) * tick
            stc = await insert_trade(
                conn,
                symbol=occ,
                asset_type="OPTION",
                instruction="SELL_TO_CLOSE",
                quantity=2,
                order_type="LIMIT",
                limit_price=sell_px,
            )
            row = await wait_status(conn, stc, FINAL)
            assert row["status"] == "filled", row["error"]
            assert row["avg_fill_price"] >= sell_px
        finally:
            await conn.close()
