"""Database side of the state machine: one transaction per transition, with its event."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from typing import Any

import asyncpg

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
    }
)

#: Statuses in which an order may exist at the broker and is not final.
UNSETTLED = ("submitting", "working", "unknown", "cancel_requested")


async def transition(
    conn: Conn,
    trade_id: int,
    from_statuses: Collection[str],
    to_status: str,
    reason: str,
    detail: Mapping[str, Any] | None = None,
    **columns: Any,
) -> str | None:
    """Move trade ``trade_id`` from one of ``from_statuses`` to ``to_status``.

    One statement, hence one transaction (or part of the caller's): lock the row, check its
    status, update it and write the ``trade_events`` row. Returns the previous status, or None
    when the row was not in one of ``from_statuses`` (someone else moved it first).
    """
    bad = set(columns) - _SETTABLE
    if bad:
        raise ValueError(f"cannot set {sorted(bad)}")
    names = list(columns)
    sets = "".join(f", {name} = ${i + 6}" for i, name in enumerate(names))
    # The FOR UPDATE sub-select locks the row and, under READ COMMITTED, re-reads its latest
    # version after any wait, so the status check cannot act on a stale status.
    old = await conn.fetchval(
        f"""
        WITH upd AS (
            UPDATE trades t SET status = $2, updated_at = now(){sets}
            FROM (SELECT id, status FROM trades WHERE id = $1 FOR UPDATE) o
            WHERE t.id = o.id AND o.status = ANY($3::text[])
            RETURNING o.status AS old_status
        )
        INSERT INTO trade_events (trade_id, from_status, to_status, reason, detail)
        SELECT $1, old_status, $2, $4, $5::jsonb FROM upd
        RETURNING from_status
        """,
        trade_id,
        to_status,
        list(from_statuses),
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
        "INSERT INTO executor_alerts (trade_id, kind, message, detail) "
        "VALUES ($1, $2, $3, $4::jsonb) "
        "ON CONFLICT (trade_id, kind) WHERE resolved_at IS NULL DO NOTHING RETURNING id",
        trade_id,
        kind,
        message,
        json.dumps(dict(detail or {}), default=str),
    )
    return row is not None


async def resolve_alerts(conn: Conn, trade_id: int) -> None:
    """Mark the trade's open alerts resolved."""
    await conn.execute(
        "UPDATE executor_alerts SET resolved_at = now() "
        "WHERE trade_id = $1 AND resolved_at IS NULL",
        trade_id,
    )
