"""Trades: list, one with its events, submission through the shared risk pre-check, cancel."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from streamdesk.constants import last_quote_key
from streamdesk.models import TradeRequest
from streamdesk.risk import RiskContext, check_trade, quote_from_mapping

from .state import State, get_state, row

router = APIRouter()
StateDep = Annotated[State, Depends(get_state)]

TRADE_COLUMNS = (
    "id, created_at, symbol, asset_type, instruction, quantity, order_type, limit_price, "
    "duration, status, broker_order_id, filled_quantity, avg_fill_price, error, updated_at"
)


@router.get("/api/trades")
async def trades(state: StateDep, limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    rows = await state.db.fetch(
        f"SELECT {TRADE_COLUMNS} FROM trades ORDER BY id DESC LIMIT $1", limit
    )
    return [row(r) for r in rows]


@router.get("/api/trades/{trade_id}")
async def trade(state: StateDep, trade_id: int) -> dict[str, Any]:
    found = await state.db.fetchrow(f"SELECT {TRADE_COLUMNS} FROM trades WHERE id = $1", trade_id)
    if found is None:
        raise HTTPException(404, f"no trade {trade_id}")
    events = await state.db.fetch(
        "SELECT at, from_status, to_status, reason, detail FROM trade_events "
        "WHERE trade_id = $1 ORDER BY id",
        trade_id,
    )
    out = row(found)
    out["events"] = [
        {
            **row(e),
            "detail": json.loads(e["detail"]) if isinstance(e["detail"], str) else e["detail"],
        }
        for e in events
    ]
    return out


@router.post("/api/trades", status_code=201)
async def submit(state: StateDep, body: dict[str, Any]) -> JSONResponse:
    settings = state.settings
    try:
        req = TradeRequest.model_validate(body)
    except ValidationError as exc:
        state.counters["trades_refused"] += 1
        reasons = [f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "invalid trade", "reasons": reasons}, status_code=422)
    raw = await state.r.hgetall(last_quote_key(req.symbol))
    bp = await state.db.fetchval(
        "SELECT buying_power FROM account_balances ORDER BY updated_at DESC LIMIT 1"
    )
    ctx = RiskContext(
        now=state.clock.now(),
        quote=quote_from_mapping(req.symbol, raw) if raw else None,
        live_broker=settings.trading_mode.value == "live",
        buying_power=bp,
    )
    result = check_trade(req, ctx, settings.risk_limits())
    if not result.ok:
        state.counters["trades_refused"] += 1
        return JSONResponse(
            {
                "error": "refused by risk checks",
                "reasons": [{"code": v.code, "reason": v.reason} for v in result.violations],
            },
            status_code=422,
        )
    inserted = await state.db.fetchrow(
        f"""
        INSERT INTO trades (symbol, asset_type, instruction, quantity, order_type,
                            limit_price, duration, source)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'gateway') RETURNING {TRADE_COLUMNS}
        """,
        req.symbol,
        req.asset_type.value,
        req.instruction.value,
        req.quantity,
        req.order_type.value,
        req.limit_price,
        req.duration.value,
    )
    state.counters["trades_submitted"] += 1
    assert inserted is not None
    return JSONResponse(row(inserted), status_code=201)


@router.post("/api/trades/{trade_id}/cancel")
async def cancel(state: StateDep, trade_id: int) -> dict[str, Any]:
    async with state.db.acquire() as conn, conn.transaction():
        found = await conn.fetchrow("SELECT status FROM trades WHERE id = $1 FOR UPDATE", trade_id)
        if found is None:
            raise HTTPException(404, f"no trade {trade_id}")
        old = found["status"]
        if old == "pending":
            new, reason = "cancelled", "cancelled by the user before submission"
        elif old == "working":
            new, reason = "cancel_requested", "cancel requested by the user"
        else:
            raise HTTPException(409, f"trade {trade_id} is {old}; it cannot be cancelled now")
        await conn.execute(
            "UPDATE trades SET status = $2, updated_at = now() WHERE id = $1", trade_id, new
        )
        await conn.execute(
            "INSERT INTO trade_events (trade_id, from_status, to_status, reason) "
            "VALUES ($1, $2, $3, $4)",
            trade_id,
            old,
            new,
            reason,
        )
    return {"id": trade_id, "status": new}
