"""Helpers of the bracket tests: insert a bracket, wait on its legs, compare with market-sim."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
from executor_helpers import insert_trade

CENT = Decimal("0.01")
LIVE_LEG = ("AWAITING_PARENT_ORDER", "WORKING", "PENDING_ACTIVATION", "QUEUED", "ACCEPTED")


def cents(value: Decimal) -> Decimal:
    """``value`` on the equity tick."""
    return value.quantize(CENT)


async def insert_bracket(
    conn: asyncpg.Connection,
    symbol: str,
    bid: Decimal,
    ask: Decimal,
    *,
    entry_limit: Decimal | None = None,
    quantity: int = 2,
    tp_pct: str = "1.05",
    sl_pct: str = "0.95",
) -> int:
    """A long bracket: a market entry (or a limit at ``entry_limit``), a take-profit
    ``tp_pct`` above the ask and a stop-loss ``sl_pct`` below the bid (or the limit)."""
    low = min(bid, entry_limit) if entry_limit is not None else bid
    return await insert_trade(
        conn,
        symbol=symbol,
        quantity=quantity,
        order_type="MARKET" if entry_limit is None else "LIMIT",
        limit_price=entry_limit,
        take_profit_price=cents(ask * Decimal(tp_pct)),
        stop_loss_price=cents(low * Decimal(sl_pct)),
    )


async def legs(conn: asyncpg.Connection, entry_id: int) -> dict[str, asyncpg.Record]:
    """The legs of ``entry_id`` by role (``take_profit``, ``stop_loss``)."""
    rows = await conn.fetch("SELECT * FROM trades WHERE parent_id = $1 ORDER BY id", entry_id)
    return {r["leg"]: r for r in rows}


async def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float = 15.0,
) -> Any:
    """Poll the coroutine function ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def wait_legs(
    conn: asyncpg.Connection,
    entry_id: int,
    statuses: tuple[str, ...],
    *,
    broker_status: tuple[str, ...] | None = None,
    timeout: float = 15.0,
) -> dict[str, asyncpg.Record]:
    """Wait until every leg of ``entry_id`` is in ``statuses`` (and broker statuses)."""

    async def check() -> dict[str, asyncpg.Record] | None:
        found = await legs(conn, entry_id)
        ok = bool(found) and all(r["status"] in statuses for r in found.values())
        if ok and broker_status is not None:
            ok = all(r["broker_status"] in broker_status for r in found.values())
        return found if ok else None

    try:
        got: dict[str, asyncpg.Record] = await wait_for(
            f"legs of {entry_id} in {statuses}", check, timeout
        )
    except AssertionError:
        found = await legs(conn, entry_id)
        events = await conn.fetch(
            "SELECT trade_id, from_status, to_status, reason FROM trade_events "
            "WHERE trade_id = $1 OR trade_id IN (SELECT id FROM trades WHERE parent_id = $1) "
            "ORDER BY id",
            entry_id,
        )
        seen = [(r["leg"], r["status"], r["broker_status"]) for r in found.values()]
        raise AssertionError(
            f"legs of {entry_id}: {seen}; events {[tuple(e) for e in events]}"
        ) from None
    return got


def sim_orders(sim: Any) -> dict[int, dict[str, Any]]:
    """market-sim's every order (OCO containers too) by id."""
    return {int(o["order_id"]): o for o in sim.admin_get("broker/orders")}


def sim_tree(sim: Any, top_id: int | str) -> list[dict[str, Any]]:
    """The orders of the tree under ``top_id`` (itself first), OCO containers included."""
    orders = sim_orders(sim)
    out = [orders[int(top_id)]]
    for o in orders.values():
        parent = o["parent_id"]
        if parent is not None and any(int(parent) == int(t["order_id"]) for t in out):
            out.append(o)
    return out


async def request_cancel(conn: asyncpg.Connection, trade_id: int) -> None:
    """What the gateway's cancel does to a working row."""
    async with conn.transaction():
        old = await conn.fetchval(
            "UPDATE trades SET status = 'cancel_requested', updated_at = now() "
            "WHERE id = $1 AND status = 'working' RETURNING 'working'",
            trade_id,
        )
        assert old == "working", f"trade {trade_id} is not working"
        await conn.execute(
            "INSERT INTO trade_events (trade_id, from_status, to_status, reason) "
            "VALUES ($1, 'working', 'cancel_requested', 'cancel requested by the user')",
            trade_id,
        )


async def request_stop_move(conn: asyncpg.Connection, trade_id: int, price: Decimal) -> None:
    """What ``POST /api/trades/{id}/stop`` (or the RPC) does: set ``replace_stop_price``."""
    await conn.execute(
        "UPDATE trades SET replace_stop_price = $2, updated_at = now() WHERE id = $1",
        trade_id,
        price,
    )


async def events_of_tree(
    conn: asyncpg.Connection, entry_id: int
) -> list[tuple[int, str | None, str, str]]:
    """(trade_id, from, to, reason) of the entry's and its legs' events: one history."""
    rows = await conn.fetch(
        "SELECT trade_id, from_status, to_status, reason FROM trade_events "
        "WHERE trade_id = $1 OR trade_id IN (SELECT id FROM trades WHERE parent_id = $1) "
        "ORDER BY id",
        entry_id,
    )
    return [(r["trade_id"], r["from_status"], r["to_status"], r["reason"]) for r in rows]
