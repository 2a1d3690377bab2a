"""Database side of the executor: the statements of :mod:`.sql`, one function each.

A transition is one statement, hence one transaction (or part of the caller's) with its
``trade_events`` row; alerts are rows of ``executor_alerts``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from streamdesk.models import TradeStatus

from . import sql
from .broker import AccountSnapshot, Position

log = logging.getLogger(__name__)

#: A connection, or a pool's proxy of one.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

#: Columns a transition may set besides status (a whitelist: names go into SQL text).
_SETTABLE = frozenset(
    {
        "broker_order_id",
        "filled_quantity",
        "avg_fill_price",
        "error",
        "submitted_at",
        "claimed_by",
        "account_hash",
        "notional",
        "symbol",
        "leg",
        "broker_status",
        "stop_price",
        "quantity",
    }
)


async def transition(
    conn: Conn,
    trade_id: int,
    from_statuses: Collection[TradeStatus],
    to_status: TradeStatus,
    reason: str,
    detail: Mapping[str, Any] | None = None,
    **columns: Any,
) -> str | None:
    """Move trade ``trade_id`` from one of ``from_statuses`` to ``to_status``.

    Lock the row, check its status, update it and write the ``trade_events`` row, in one
    statement. Returns the previous status, or None when the row was not in one of
    ``from_statuses`` (someone else moved it first).
    """
    bad = set(columns) - _SETTABLE
    if bad:
        raise ValueError(f"cannot set {sorted(bad)}")
    names = list(columns)
    sets = "".join(f", {name} = ${i + 6}" for i, name in enumerate(names))
    old = await conn.fetchval(
        sql.TRANSITION.format(sets=sets),
        trade_id,
        TradeStatus(to_status).value,
        [TradeStatus(s).value for s in from_statuses],
        reason,
        json.dumps(dict(detail or {}), default=str),
        *(columns[n] for n in names),
    )
    return None if old is None else str(old)


async def raise_alert(
    conn: Conn,
    trade_id: int | None,
    kind: str,
    message: str,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Open an alert (once per trade and kind while unresolved); True if it is new."""
    row = await conn.fetchval(
        sql.RAISE_ALERT, trade_id, kind, message, json.dumps(dict(detail or {}), default=str)
    )
    return row is not None


async def resolve_alerts(conn: Conn, trade_id: int) -> None:
    """Mark the trade's open alerts resolved."""
    await conn.execute(sql.RESOLVE_ALERTS, trade_id)


# ---------------------------------------------------------------------------- intake


async def peek_pending(conn: Conn | asyncpg.Pool, account: str) -> asyncpg.Record | None:
    """The next claimable trade's id and symbol, read without locks (None: nothing to do)."""
    row: asyncpg.Record | None = await conn.fetchrow(sql.PEEK, account)
    return row


async def lock_account(conn: Conn, account: str) -> None:
    """Serialize claims of ``account`` across executors until the transaction ends."""
    await conn.execute(sql.LOCK_ACCOUNT, "sd-exec:" + account)


async def claim_pending(
    conn: Conn, account: str, day_start: datetime, duplicate_window: float
) -> dict[str, Any] | None:
    """Lock the next claimable trade (SKIP LOCKED) with its risk context columns (``ctx_*``)."""
    row = await conn.fetchrow(sql.CLAIM, account, day_start, duplicate_window)
    return None if row is None else dict(row)


async def broker_order_id_of(conn: Conn, trade_id: int) -> str | None:
    """The broker order id linked to the trade (None if none)."""
    value = await conn.fetchval(sql.BROKER_ORDER_ID_OF, trade_id)
    return None if value is None else str(value)


# ---------------------------------------------------------------------------- maintenance


async def unsent_cancels(conn: Conn, account: str, limit: int) -> list[int]:
    """Ids of trades whose cancel was requested before they were sent."""
    return [int(r["id"]) for r in await conn.fetch(sql.UNSENT_CANCELS, account, limit)]


async def orphans(conn: Conn, account: str, older_than: float, limit: int) -> list[int]:
    """Ids of ``submitting`` trades submitted more than ``older_than`` seconds ago."""
    return [int(r["id"]) for r in await conn.fetch(sql.ORPHANS, account, older_than, limit)]


async def open_rows(conn: Conn, account: str, limit: int) -> list[dict[str, Any]]:
    """Sent, unsettled trades (working, unknown, cancel_requested), unlinked ones first."""
    return [dict(r) for r in await conn.fetch(sql.OPEN_ROWS, account, limit)]


async def linked_order_ids(conn: Conn, order_ids: Sequence[str]) -> set[str]:
    """Which of ``order_ids`` are already linked to a trade."""
    return {str(r[0]) for r in await conn.fetch(sql.LINKED_ORDER_IDS, list(order_ids))}


# ---------------------------------------------------------------------------- brackets


async def insert_leg(
    conn: Conn,
    entry_id: int,
    leg: str,
    instruction: str,
    order_type: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    reason: str,
    detail: Mapping[str, Any],
) -> int:
    """Insert one exit row of entry ``entry_id`` (``submitting``) with its event; its id."""
    leg_id = await conn.fetchval(
        sql.INSERT_LEG,
        entry_id,
        leg,
        instruction,
        order_type,
        limit_price,
        stop_price,
        reason,
        json.dumps(dict(detail), default=str),
    )
    if leg_id is None:
        raise LookupError(f"entry {entry_id} vanished while its legs were created")
    return int(leg_id)


async def legs_of(conn: Conn, entry_id: int) -> list[dict[str, Any]]:
    """The leg rows of entry ``entry_id``."""
    return [dict(r) for r in await conn.fetch(sql.LEGS_OF, entry_id)]


async def open_legs(
    conn: Conn, account: str, limit: int, after_id: int = 0
) -> list[dict[str, Any]]:
    """Unsettled legs with ``parent_status``, ``parent_order_id``, ``parent_error``: at most
    ``limit`` of them, ids above ``after_id``."""
    return [dict(r) for r in await conn.fetch(sql.OPEN_LEGS, account, limit, after_id)]


async def update_broker_view(
    conn: Conn, trade_id: int, broker_status: str, stop_price: Decimal | None
) -> bool:
    """Write the broker's status word and current stop if they changed (no event)."""
    return (
        await conn.fetchval(sql.UPDATE_BROKER_VIEW, trade_id, broker_status, stop_price) is not None
    )


# ---------------------------------------------------------------------------- stop moves


async def replace_requests(conn: Conn, account: str, limit: int) -> list[dict[str, Any]]:
    """Rows whose ``replace_stop_price`` is set."""
    return [dict(r) for r in await conn.fetch(sql.REPLACE_REQUESTS, account, limit)]


async def take_replace(
    conn: Conn, trade_id: int, price: Decimal, reason: str, detail: Mapping[str, Any]
) -> bool:
    """Clear the row's stop move ``price`` with an event; False if it is no longer asked."""
    old = await conn.fetchval(
        sql.TAKE_REPLACE, trade_id, price, reason, json.dumps(dict(detail), default=str)
    )
    return old is not None


async def relink(
    conn: Conn,
    trade_id: int,
    old_order_id: str,
    new_order_id: str,
    stop_price: Decimal | None,
    reason: str,
    detail: Mapping[str, Any],
) -> bool:
    """Move the row from broker order ``old_order_id`` to its successor, with an event."""
    old = await conn.fetchval(
        sql.RELINK,
        trade_id,
        old_order_id,
        new_order_id,
        stop_price,
        reason,
        json.dumps(dict(detail), default=str),
    )
    return old is not None


# ---------------------------------------------------------------------------- account


async def save_account(
    conn: Conn,
    account: str,
    snap: AccountSnapshot,
    asked_at: datetime,
    changed: Sequence[Position],
) -> None:
    """Write balances (as of ``asked_at``), upsert ``changed`` positions and delete those the
    broker no longer reports, in one transaction."""
    async with conn.transaction():
        await conn.execute(
            sql.UPSERT_BALANCES,
            account,
            snap.cash,
            snap.buying_power,
            snap.liquidation_value,
            asked_at,
        )
        await conn.executemany(
            sql.UPSERT_POSITION,
            [
                (
                    account,
                    p.symbol,
                    p.asset_type,
                    p.quantity,
                    p.average_price,
                    p.market_value,
                    p.day_pnl,
                )
                for p in changed
            ],
        )
        await conn.execute(sql.DELETE_GONE_POSITIONS, account, [p.symbol for p in snap.positions])
