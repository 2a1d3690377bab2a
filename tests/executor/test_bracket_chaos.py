"""Brackets under chaos: 3 executor processes, broker faults and kill -9 during placement.

Phase A: each of the four order faults once, on a bracket's placement (no kills). Phase B: a
certain crash: every executor killed -9 while one waits on a hung, already-accepted bracket.
Phase C: brackets keep coming while random executors are killed -9 (restarted at once), order
faults fire at random and reads of an order tree are delayed past the broker timeout (the leg
link right after acceptance fails). Then the faults clear and the verdict, against market-sim's
own order log: 0 duplicated orders (one tree per entry row, every sim order on exactly one
row), 0 orphaned legs (every leg final, or working under a live entry), rows' statuses the
broker's. Last, the prices fall through every stop-loss: each tree ends with exactly one exit
filled and the other cancelled (or none filled), rows and broker agreeing.
"""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from bracket_helpers import cents, sim_orders
from chaos_fleet import Fleet, fleet_env
from executor_helpers import FINAL, SettingsFactory, broker_quote

from streamdesk_executor.connections import open_executor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Market entries (they fill: the next bracket of the symbol is claimed after).
SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD"]
#: One limit entry each, under the market: it works (its exits wait), and holds its symbol's
#: one open top-level order, so no other bracket uses these symbols.
LIMIT_SYMBOLS = ["INTC", "ORCL", "CRM", "ADBE", "CSCO", "KO", "WMT", "DIS"]
N_BRACKETS = 40
FAULTS = ["500_after_accept", "no_location", "drop_after_accept", "hang_after_accept"]
BROKER_TIMEOUT = 1.0
FAULT_REASONS = {
    "500_after_accept": "broker error 500 after sending",
    "no_location": "accepted without a Location header",
    "drop_after_accept": "connection error after sending: RemoteProtocolError",
    "hang_after_accept": f"no answer within {BROKER_TIMEOUT:g}s (broker call timeout)",
}
SETTLE_DEADLINE = 30.0
#: market-sim order status -> the row's status (a live leg is `working` whatever the broker
#: calls it).
ROW_STATUS = {
    "FILLED": "filled",
    "CANCELED": "cancelled",
    "REJECTED": "rejected",
    "EXPIRED": "expired",
    "WORKING": "working",
    "AWAITING_PARENT_ORDER": "working",
}


async def _wait_consumed(sim: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while sim.state()["faults"]["order_fault"] is not None:
        assert time.monotonic() < deadline, "order fault was not consumed"
        await asyncio.sleep(0.05)


async def _settled(conn: asyncpg.Connection) -> bool:
    """No row in flight, every leg linked or final."""
    n = await conn.fetchval(
        "SELECT count(*) FROM trades WHERE status IN "
        "('pending', 'submitting', 'unknown', 'cancel_requested') "
        "OR (parent_id IS NOT NULL AND broker_order_id IS NULL AND status <> ALL($1::text[]))",
        list(FINAL),
    )
    return int(n) == 0


async def _wait_settled(conn: asyncpg.Connection, since: float, what: str) -> float:
    while not await _settled(conn):
        if time.monotonic() - since > SETTLE_DEADLINE:
            stuck = await conn.fetch(
                "SELECT id, parent_id, leg, status, broker_order_id, error FROM trades "
                "WHERE status <> ALL($1::text[]) ORDER BY id",
                list(FINAL),
            )
            raise AssertionError(f"{what}: not settled in {SETTLE_DEADLINE}s: {stuck}")
        await asyncio.sleep(0.2)
    return time.monotonic() - since


def _verdict(rows: list[asyncpg.Record], orders: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Compare the rows with the sim's order log: the counts of what went wrong, and the
    ids of the rows concerned (``bad``)."""
    entries = [r for r in rows if r["leg"] == "entry"]
    legs = [r for r in rows if r["parent_id"] is not None]
    by_id = {r["id"]: r for r in rows}
    linked = [r["broker_order_id"] for r in rows if r["broker_order_id"] is not None]
    real = {str(i) for i, o in orders.items() if o["strategy"] != "OCO"}
    tops = [i for i, o in orders.items() if o["parent_id"] is None]
    duplicates = (
        (len(linked) - len(set(linked)))  # one broker order on two rows
        + len(real - set(linked))  # a broker order no row tracks (placed twice, or lost)
        + (len(tops) - sum(r["broker_order_id"] is not None for r in entries))
    )
    orphans = 0
    mismatched = 0
    bad: list[int] = []
    for leg in legs:
        entry = by_id[leg["parent_id"]]
        if leg["status"] in FINAL:
            pass
        elif (
            leg["status"] != "working"
            or leg["broker_order_id"] is None
            or entry["status"] not in ("working", "filled")
            or orders[int(leg["broker_order_id"])]["status"] not in ROW_STATUS
            or ROW_STATUS[orders[int(entry["broker_order_id"])]["status"]] != entry["status"]
        ):
            orphans += 1
            bad.append(leg["id"])
    for r in rows:
        if r["broker_order_id"] is None:
            assert r["status"] == "rejected" and "never reached the broker" in r["error"], dict(r)
            continue
        broker = orders[int(r["broker_order_id"])]["status"]
        if ROW_STATUS.get(broker) != r["status"]:
            mismatched += 1
            bad.append(r["id"])
    return {"duplicates": duplicates, "orphans": orphans, "mismatched": mismatched, "bad": bad}


CLEAN = {"duplicates": 0, "orphans": 0, "mismatched": 0, "bad": []}


async def _agreed(conn: asyncpg.Connection, sim: Any, what: str) -> list[asyncpg.Record]:
    """Rows once they agree with the broker. The sync is polling (a fill reaches its row
    within a pass or two), so a snapshot may catch a row a pass behind; what is wrong for
    longer than the deadline is a failure: a duplicate or an orphan never heals."""
    deadline = time.monotonic() + 10.0
    while True:
        rows = await conn.fetch("SELECT * FROM trades ORDER BY id")
        found = _verdict(rows, sim_orders(sim))
        if found == CLEAN:
            return rows
        if time.monotonic() > deadline:
            detail = [
                (r["id"], r["parent_id"], r["leg"], r["status"], r["broker_order_id"])
                for r in rows
                if r["id"] in found["bad"]
            ]
            raise AssertionError(f"{what}: {found} {detail}")
        await asyncio.sleep(0.2)


async def test_brackets_under_faults_and_kills(
    make_settings: SettingsFactory, sim: Any, tmp_path: Path
) -> None:
    rng = random.Random(20261202)
    extra = {
        "executor_broker_timeout": BROKER_TIMEOUT,
        "executor_submit_grace": 0.5,
        "executor_absent_after": 5.0,
        "executor_alert_after": 5.0,
        "executor_workers": 3,
        "shutdown_timeout": 3.0,
    }
    settings = make_settings(**extra)
    fleet = Fleet(fleet_env(settings, extra), tmp_path)
    conn = await asyncpg.connect(settings.database_url)
    injected = {"order_faults": 0, "tree_read_faults": 0}
    try:
        async with open_executor(settings) as probe:
            account = probe.account
            quotes = {s: await broker_quote(probe, s) for s in SYMBOLS + LIMIT_SYMBOLS}
        for slot in range(3):
            fleet.start(slot)
        plan = LIMIT_SYMBOLS + [rng.choice(SYMBOLS) for _ in range(N_BRACKETS - len(LIMIT_SYMBOLS))]
        rng.shuffle(plan)

        async def insert(count: int) -> None:
            for _ in range(count):
                sym = plan.pop()
                bid, ask = quotes[sym]
                limit = cents(bid * Decimal("0.97")) if sym in LIMIT_SYMBOLS else None
                low = limit if limit is not None else bid
                await conn.execute(
                    "INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type, "
                    "limit_price, take_profit_price, stop_loss_price) "
                    "VALUES ($1, 'EQUITY', 'BUY', $2, $3, $4, $5, $6)",
                    sym,
                    rng.randint(1, 3),
                    "MARKET" if limit is None else "LIMIT",
                    limit,
                    cents(ask * Decimal("1.05")),
                    cents(low * Decimal("0.95")),
                )

        def fault() -> None:
            sim.order_fault(rng.choice(FAULTS), count=1)
            injected["order_faults"] += 1

        # Phase A: each fault once, seen on a bracket.
        for mode in FAULTS:
            sim.order_fault(mode, count=1)
            injected["order_faults"] += 1
            await insert(1)
            await _wait_consumed(sim)
            if mode == "hang_after_accept":
                await asyncio.sleep(BROKER_TIMEOUT + 0.3)
                sim.clear_faults()
        # Phase B: the certain crash, while an accepted bracket's answer hangs.
        sim.order_fault("hang_after_accept", count=1)
        injected["order_faults"] += 1
        await insert(1)
        await _wait_consumed(sim)
        for slot in range(3):
            fleet.kill9(slot)
        sim.clear_faults()
        for slot in range(3):
            fleet.start(slot)
        # Phase C: brackets flow, random kills, faults, slow tree reads.
        remaining = N_BRACKETS - len(FAULTS) - 1
        cancels = 0
        while remaining > 0 or fleet.kills < 12:
            if remaining > 0:
                n = min(3, remaining)
                await insert(n)
                remaining -= n
            # a kill within milliseconds of the insert lands in a claim or a placement
            await asyncio.sleep(rng.uniform(0.0, 0.06))
            slot = rng.randrange(3)
            fleet.kill9(slot)
            fleet.start(slot)
            if cancels < 2 and rng.random() < 0.3:
                # cancel a working limit bracket (entry and exits) while executors die
                cancels += await conn.fetchval(
                    "WITH c AS (UPDATE trades SET status = 'cancel_requested' WHERE id = "
                    "(SELECT id FROM trades WHERE leg = 'entry' AND status = 'working' "
                    "AND order_type = 'LIMIT' ORDER BY id LIMIT 1) RETURNING id) "
                    "SELECT count(*) FROM c"
                )
            await asyncio.sleep(rng.uniform(0.2, 0.5))
            roll = rng.random()
            if roll < 0.4:
                fault()
            elif roll < 0.7:
                sim.http_fault(
                    delay=BROKER_TIMEOUT + 0.5,
                    path_prefix=f"/trader/v1/accounts/{account}/orders/",
                    count=1,
                )
                injected["tree_read_faults"] += 1
        await asyncio.sleep(0.5)
        sim.clear_faults()
        assert fleet.alive() == 3
        settle_s = await _wait_settled(conn, time.monotonic(), "after the chaos")

        rows = await _agreed(conn, sim, "after the chaos")
        assert sum(r["leg"] == "entry" for r in rows) == N_BRACKETS
        assert sum(r["parent_id"] is not None for r in rows) == 2 * N_BRACKETS
        reasons = {
            e["reason"]
            for e in await conn.fetch("SELECT reason FROM trade_events WHERE to_status='unknown'")
        }
        for mode, reason in FAULT_REASONS.items():
            assert reason in reasons, (mode, reasons)
        assert "executor stopped before the broker answered" in reasons
        orphaned = await conn.fetchval(
            "SELECT count(DISTINCT e.trade_id) FROM trade_events e JOIN trades t "
            "ON t.id = e.trade_id WHERE t.leg = 'entry' "
            "AND e.reason = 'executor stopped before the broker answered'"
        )

        # The limit entries fill, then every stop-loss triggers: exactly one exit per tree.
        for sym, (bid, _) in quotes.items():
            sim.set_price(sym, float(cents(bid * Decimal("0.965"))))
        await asyncio.sleep(1.0)
        for sym, (bid, _) in quotes.items():
            sim.set_price(sym, float(cents(bid * Decimal("0.90"))))

        async def all_final() -> bool:
            n = await conn.fetchval(
                "SELECT count(*) FROM trades WHERE status <> ALL($1::text[])", list(FINAL)
            )
            return int(n) == 0

        deadline = time.monotonic() + SETTLE_DEADLINE
        while not await all_final():
            assert time.monotonic() < deadline, await conn.fetch(
                "SELECT id, leg, status, broker_status FROM trades WHERE status <> ALL($1)",
                list(FINAL),
            )
            await asyncio.sleep(0.2)
        rows = await _agreed(conn, sim, "after the stop-losses")
        exits_filled: dict[int, int] = {}
        for r in rows:
            if r["parent_id"] is not None:
                exits_filled.setdefault(r["parent_id"], 0)
                exits_filled[r["parent_id"]] += r["status"] == "filled"
        assert max(exits_filled.values()) == 1
        filled_entries = [r["id"] for r in rows if r["leg"] == "entry" and r["status"] == "filled"]
        assert all(exits_filled[e] == 1 for e in filled_entries)
        print(
            f"bracket chaos: {N_BRACKETS} brackets, {len(sim_orders(sim))} sim orders, "
            f"kills={fleet.kills}, order faults={injected['order_faults']}, "
            f"tree-read faults={injected['tree_read_faults']}, duplicates=0, orphans=0, "
            f"settled {settle_s:.1f}s after the faults cleared, "
            f"entries filled={len(filled_entries)}, cancelled brackets={cancels}, "
            f"entries orphaned by a kill={orphaned}, never reached="
            f"{sum(r['leg'] == 'entry' and r['broker_order_id'] is None for r in rows)}"
        )
    finally:
        fleet.stop_all()
        await conn.close()
