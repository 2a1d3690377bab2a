"""Every SQL statement of the strategy service, and the one transaction per decision.

An order decision (the strategy's new orders and cancels, its ``state`` and the runtime's
resume point) is written in **one** transaction, so after a crash either all of it is there
or none of it is and the replayed signal produces it again; the trade insert is ``ON CONFLICT
(client_order_id) DO NOTHING``, so a decision written once is never written twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

#: Statuses in which a strategy order is still open (may fill or change).
OPEN_STATUSES = ("pending", "submitting", "working", "cancel_requested", "unknown")


@dataclass(frozen=True, slots=True)
class StrategyRow:
    """One row of ``strategies``."""

    id: str
    module: str
    params: dict[str, Any]
    tickers: tuple[str, ...]
    enabled: bool
    mode: str
    quantity_max: int
    max_position: int
    max_orders_per_day: int
    max_loss_per_day: Decimal
    state: dict[str, Any]
    runtime: dict[str, Any]
    disabled_reason: str
    flatten_requested_at: datetime | None
    updated_at: datetime

    def config_key(self) -> tuple[Any, ...]:
        """What requires the strategy object to be rebuilt when it changes."""
        return (self.module, json.dumps(self.params, sort_keys=True), self.tickers, self.mode)


@dataclass(frozen=True, slots=True)
class OrderRow:
    """The columns of a strategy's ``trades`` row the runtime follows."""

    id: int
    client_order_id: str
    symbol: str
    instruction: str
    quantity: int
    order_type: str
    limit_price: float | None
    status: str
    filled_quantity: int
    avg_fill_price: float | None
    error: str | None
    updated_at: datetime


@dataclass(slots=True)
class NewOrder:
    """A trade row to insert for a strategy."""

    client_order_id: str
    symbol: str
    instruction: str
    quantity: int
    order_type: str
    limit_price: float | None


@dataclass(slots=True)
class Decision:
    """What one strategy decided while handling some events; written in one transaction."""

    orders: list[NewOrder] = field(default_factory=list)
    cancels: list[int] = field(default_factory=list)  # trade ids
    state: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = None


_STRATEGY_COLUMNS = (
    "id, module, params, tickers, enabled, mode, quantity_max, max_position, "
    "max_orders_per_day, max_loss_per_day, state, runtime, disabled_reason, "
    "flatten_requested_at, updated_at"
)
_ORDER_COLUMNS = (
    "id, client_order_id, symbol, instruction, quantity, order_type, limit_price, status, "
    "filled_quantity, avg_fill_price, error, updated_at"
)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def strategy_row(r: asyncpg.Record) -> StrategyRow:
    """A ``strategies`` record as a :class:`StrategyRow`."""
    return StrategyRow(
        id=r["id"],
        module=r["module"],
        params=dict(_json(r["params"]) or {}),
        tickers=tuple(r["tickers"] or ()),
        enabled=r["enabled"],
        mode=r["mode"],
        quantity_max=r["quantity_max"],
        max_position=r["max_position"],
        max_orders_per_day=r["max_orders_per_day"],
        max_loss_per_day=Decimal(r["max_loss_per_day"]),
        state=dict(_json(r["state"]) or {}),
        runtime=dict(_json(r["runtime"]) or {}),
        disabled_reason=r["disabled_reason"],
        flatten_requested_at=r["flatten_requested_at"],
        updated_at=r["updated_at"],
    )


def order_row(r: asyncpg.Record) -> OrderRow:
    """A ``trades`` record as an :class:`OrderRow`."""
    return OrderRow(
        id=r["id"],
        client_order_id=r["client_order_id"],
        symbol=r["symbol"],
        instruction=r["instruction"],
        quantity=int(r["quantity"]),
        order_type=r["order_type"],
        limit_price=None if r["limit_price"] is None else float(r["limit_price"]),
        status=r["status"],
        filled_quantity=int(r["filled_quantity"]),
        avg_fill_price=None if r["avg_fill_price"] is None else float(r["avg_fill_price"]),
        error=r["error"],
        updated_at=r["updated_at"],
    )


async def load_strategies(conn: asyncpg.Connection | asyncpg.Pool) -> list[StrategyRow]:
    """Every strategy row, by id."""
    rows = await conn.fetch(f"SELECT {_STRATEGY_COLUMNS} FROM strategies ORDER BY id")
    return [strategy_row(r) for r in rows]


async def load_strategy(conn: asyncpg.Connection | asyncpg.Pool, sid: str) -> StrategyRow | None:
    """One strategy row, or None."""
    r = await conn.fetchrow(f"SELECT {_STRATEGY_COLUMNS} FROM strategies WHERE id = $1", sid)
    return None if r is None else strategy_row(r)


async def filled_orders(conn: asyncpg.Connection | asyncpg.Pool, sid: str) -> list[OrderRow]:
    """The strategy's orders with fills, oldest first (positions and P&L are replayed)."""
    rows = await conn.fetch(
        f"SELECT {_ORDER_COLUMNS} FROM trades WHERE strategy_id = $1 AND filled_quantity > 0 "
        "ORDER BY id",
        sid,
    )
    return [order_row(r) for r in rows]


async def open_orders(conn: asyncpg.Connection | asyncpg.Pool, sid: str) -> list[OrderRow]:
    """The strategy's open orders, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_ORDER_COLUMNS} FROM trades WHERE strategy_id = $1 "
        "AND status = ANY($2::text[]) ORDER BY id",
        sid,
        list(OPEN_STATUSES),
    )
    return [order_row(r) for r in rows]


async def orders_by_id(
    conn: asyncpg.Connection | asyncpg.Pool, ids: Sequence[int]
) -> list[OrderRow]:
    """Current rows of ``ids``."""
    rows = await conn.fetch(
        f"SELECT {_ORDER_COLUMNS} FROM trades WHERE id = ANY($1::bigint[]) ORDER BY id", list(ids)
    )
    return [order_row(r) for r in rows]


async def orders_since(conn: asyncpg.Connection | asyncpg.Pool, sid: str, since: datetime) -> int:
    """How many orders the strategy's runtime inserted at or after ``since`` (flattening
    orders excluded: they never count against the daily limit)."""
    n = await conn.fetchval(
        "SELECT count(*) FROM trades WHERE strategy_id = $1 AND created_at >= $2 "
        "AND client_order_id NOT LIKE $3",
        sid,
        since,
        f"{sid}:flatten:%",
    )
    return int(n or 0)


_INSERT_ORDER = """
INSERT INTO trades (user_id, symbol, asset_type, instruction, quantity, order_type,
                    limit_price, duration, status, source, strategy_id, client_order_id, paper)
VALUES ($1, $2, 'EQUITY', $3, $4, $5, $6, 'DAY', 'pending', 'strategy', $7, $8, $9)
ON CONFLICT (client_order_id) WHERE client_order_id IS NOT NULL DO NOTHING
RETURNING id
"""

_CANCEL = """
WITH old AS (
    SELECT id, status FROM trades WHERE id = $1 AND strategy_id = $2 FOR UPDATE
), upd AS (
    UPDATE trades t SET status = CASE WHEN old.status = 'pending' THEN 'cancelled'
                                      ELSE 'cancel_requested' END,
                        updated_at = now()
    FROM old WHERE t.id = old.id AND old.status IN ('pending', 'submitting', 'working', 'unknown')
    RETURNING t.id, old.status AS from_status, t.status AS to_status
)
INSERT INTO trade_events (trade_id, from_status, to_status, reason)
SELECT id, from_status, to_status,
       CASE WHEN to_status = 'cancelled' THEN 'cancelled by the strategy before submission'
            ELSE 'cancel requested by the strategy' END
FROM upd
RETURNING trade_id
"""


async def write_decision(
    pool: asyncpg.Pool,
    sid: str,
    decision: Decision,
    *,
    user_id: UUID | None,
    paper: bool,
) -> list[tuple[NewOrder, int | None]]:
    """Write ``decision`` in one transaction; return each order with its new trade id (None
    when the client order id existed already: the signal was replayed)."""
    out: list[tuple[NewOrder, int | None]] = []
    async with pool.acquire() as conn, conn.transaction():
        for o in decision.orders:
            tid = await conn.fetchval(
                _INSERT_ORDER,
                user_id,
                o.symbol,
                o.instruction,
                o.quantity,
                o.order_type,
                o.limit_price,
                sid,
                o.client_order_id,
                paper,
            )
            out.append((o, tid))
        for tid in decision.cancels:
            await conn.fetchval(_CANCEL, tid, sid)
        if decision.state is not None or decision.runtime:
            await conn.execute(
                "UPDATE strategies SET state = COALESCE($2::jsonb, state), "
                "runtime = COALESCE($3::jsonb, runtime) WHERE id = $1",
                sid,
                None if decision.state is None else json.dumps(decision.state),
                json.dumps(decision.runtime) if decision.runtime else None,
            )
    return out


async def order_id_of(pool: asyncpg.Pool, client_order_id: str) -> OrderRow | None:
    """The row of an existing client order id."""
    r = await pool.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM trades WHERE client_order_id = $1", client_order_id
    )
    return None if r is None else order_row(r)


async def disable(
    pool: asyncpg.Pool,
    sid: str,
    kind: str,
    message: str,
    detail: dict[str, Any],
    *,
    alert: bool = True,
) -> None:
    """Disable the strategy and (``alert``) raise an alert, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE strategies SET enabled = false, disabled_reason = $2, updated_at = now() "
            "WHERE id = $1",
            sid,
            message,
        )
        if not alert:
            return
        await conn.execute(
            "INSERT INTO strategy_alerts (strategy_id, kind, message, detail) "
            "VALUES ($1, $2, $3, $4::jsonb)",
            sid,
            kind,
            message,
            json.dumps(detail, default=str),
        )


async def alert(
    pool: asyncpg.Pool, sid: str, kind: str, message: str, detail: dict[str, Any]
) -> None:
    """Raise an alert without disabling; one open alert per (strategy, kind)."""
    await pool.execute(
        "INSERT INTO strategy_alerts (strategy_id, kind, message, detail) "
        "SELECT $1, $2, $3, $4::jsonb WHERE NOT EXISTS (SELECT 1 FROM strategy_alerts "
        "WHERE strategy_id = $1 AND kind = $2 AND resolved_at IS NULL)",
        sid,
        kind,
        message,
        json.dumps(detail, default=str),
    )


async def clear_flatten(pool: asyncpg.Pool, sid: str, requested_at: datetime) -> None:
    """The flatten request ``requested_at`` was acted on (a newer one stays)."""
    await pool.execute(
        "UPDATE strategies SET flatten_requested_at = NULL "
        "WHERE id = $1 AND flatten_requested_at = $2",
        sid,
        requested_at,
    )


async def is_operator(pool: asyncpg.Pool, user_id: UUID) -> bool:
    """Whether ``user_id`` is in ``operators``."""
    return bool(
        await pool.fetchval("SELECT EXISTS (SELECT 1 FROM operators WHERE user_id = $1)", user_id)
    )


async def finished_bar(
    pool: asyncpg.Pool, ticker: str, bucket: datetime
) -> tuple[asyncpg.Record | None, asyncpg.Record | None]:
    """The ``bars_1m`` row of ``ticker`` at ``bucket`` and the indicators of its last second."""
    async with pool.acquire() as conn:
        bar = await conn.fetchrow(
            "SELECT open, high, low, close, volume, vwap FROM bars_1m "
            "WHERE ticker = $1 AND bucket = $2",
            ticker,
            bucket,
        )
        ind = await conn.fetchrow(
            'SELECT sma9, vwap, ema9 FROM indicators WHERE ticker = $1 AND "timestamp" >= $2 '
            'AND "timestamp" < $2 + interval \'1 minute\' ORDER BY "timestamp" DESC LIMIT 1',
            ticker,
            bucket,
        )
    return bar, ind
