"""Trades: list, one with its events (an entry's with its legs'), preview and submission
through the shared risk pre-check, cancel, and a stop move (``replace_stop_price``).

Shape errors of a trade or stop-move body answer 422 ``{error, reasons: [str]}`` (the app's
validation handler calls :func:`invalid_body` for :func:`is_body_route`), risk refusals 422
``{error, reasons: [{code, reason}]}``. Path ids are bigint: outside 1..2**63-1 they answer
422.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse

from streamdesk.constants import last_quote_key
from streamdesk.control import KillSwitch, read_kill_switch
from streamdesk.models import REQUEST_COLUMNS, TradeRequest
from streamdesk.risk import (
    BUYING_POWER_INSTRUCTIONS,
    Quote,
    RiskContext,
    RiskResult,
    Violation,
    check_trade,
    parse_request,
    quote_from_mapping,
)
from streamdesk.risk_orders import stop_move_violations

from .identity import Identity, get_identity
from .models import (
    INT64_MAX,
    CancelOut,
    PreviewOut,
    StopMoveIn,
    StopMoveOut,
    Trade,
    TradeDetail,
    TradeEvent,
    TradeRefusal,
    error_response,
)
from .state import State, get_state, row

router = APIRouter(tags=["trades"])
StateDep = Annotated[State, Depends(get_state)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
TradeId = Annotated[int, Path(ge=1, le=INT64_MAX, description="A trades.id (bigint)")]

TRADE_COLUMNS = (
    "id, created_at, symbol, asset_type, instruction, quantity, order_type, limit_price, "
    "duration, status, broker_order_id, filled_quantity, avg_fill_price, error, updated_at, "
    "stop_price, trail_type, trail_offset, stop_trigger, take_profit_price, stop_loss_price, "
    "parent_id, leg, broker_status"
)


def _column_value(value: Any) -> Any:
    """A request field as its column takes it (enums as their text)."""
    return value.value if isinstance(value, Enum) else value


OPEN_STATUSES = ("pending", "submitting", "working", "cancel_requested", "unknown")
#: POST routes whose body is a TradeRequest (their shape errors answer TradeRefusal).
BODY_ROUTES = frozenset({"/api/trades", "/api/trades/preview"})
#: The stop-move route, whose body and path errors answer TradeRefusal as well.
STOP_ROUTE = re.compile(r"/api/trades/[^/]+/stop")
#: Order types whose trigger can be moved (a trailing stop's moves by itself).
MOVABLE = ("STOP", "STOP_LIMIT")
REFUSAL = {"model": TradeRefusal, "description": "Invalid trade, or refused by the risk checks"}
EVENT_COLUMNS = "trade_id, at, from_status, to_status, reason, detail"


def is_body_route(path: str) -> bool:
    """Whether a POST to ``path`` answers its validation errors as :class:`TradeRefusal`."""
    return path in BODY_ROUTES or STOP_ROUTE.fullmatch(path) is not None


def invalid_body(state: State, path: str, errors: Sequence[Any]) -> JSONResponse:
    """422 for a body that does not validate (``TradeRequest``, ``StopMoveIn``): one reason
    per error, ``field: message`` (loc without ``body``, pydantic's "Value error, " cut)."""
    is_trade = path in BODY_ROUTES
    if is_trade:
        state.counters["trades_refused"] += 1
    reasons = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        msg = str(e.get("msg")).removeprefix("Value error, ")
        reasons.append(f"{'.'.join(loc) or 'request'}: {msg}")
    error = "invalid trade" if is_trade else "invalid stop move"
    return JSONResponse({"error": error, "reasons": reasons}, status_code=422)


def _event(e: Any) -> dict[str, Any]:
    detail = e["detail"]
    return {**row(e), "detail": json.loads(detail) if isinstance(detail, str) else detail}


async def _history(state: State, trade_id: int) -> list[dict[str, Any]]:
    """The trade's events and, for a bracket's entry, its legs' (one history, ``id`` order)."""
    events = await state.db.fetch(
        f"SELECT {EVENT_COLUMNS} FROM trade_events WHERE trade_id = $1 "
        "OR trade_id IN (SELECT id FROM trades WHERE parent_id = $1) ORDER BY id",
        trade_id,
    )
    return [_event(e) for e in events]


@router.get("/api/trades", response_model=list[Trade])
async def trades(
    state: StateDep,
    status: Literal["open", "all"] = Query("all", description="open: not yet final"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """The latest trades, newest first."""
    if status == "open":
        rows = await state.db.fetch(
            f"SELECT {TRADE_COLUMNS} FROM trades WHERE status = ANY($2::text[]) "
            "ORDER BY id DESC LIMIT $1",
            limit,
            list(OPEN_STATUSES),
        )
    else:
        rows = await state.db.fetch(
            f"SELECT {TRADE_COLUMNS} FROM trades ORDER BY id DESC LIMIT $1", limit
        )
    return [row(r) for r in rows]


@router.get(
    "/api/trades/{trade_id}",
    response_model=TradeDetail,
    responses={404: error_response("No such trade")},
)
async def trade(state: StateDep, trade_id: TradeId) -> dict[str, Any]:
    """One trade with its ``trade_events`` timeline; a bracket entry's includes its legs'
    events (each with its ``trade_id``)."""
    found = await state.db.fetchrow(f"SELECT {TRADE_COLUMNS} FROM trades WHERE id = $1", trade_id)
    if found is None:
        raise HTTPException(404, f"no trade {trade_id}")
    out = row(found)
    out["events"] = await _history(state, trade_id)
    return out


@router.get(
    "/api/trades/{trade_id}/events",
    response_model=list[TradeEvent],
    responses={404: error_response("No such trade")},
)
async def trade_events(state: StateDep, trade_id: TradeId) -> list[dict[str, Any]]:
    """The trade's ``trade_events``, and for a bracket's entry its legs' too, in ``id``
    order, each with its ``trade_id``."""
    if await state.db.fetchval("SELECT 1 FROM trades WHERE id = $1", trade_id) is None:
        raise HTTPException(404, f"no trade {trade_id}")
    return await _history(state, trade_id)


class Precheck:
    """The pre-check's verdict and the facts it used."""

    def __init__(
        self, result: RiskResult, quote: Quote | None, buying_power: Any, kill: KillSwitch
    ) -> None:
        self.result = result
        self.quote = quote
        self.buying_power = buying_power
        self.kill = kill


async def _precheck(state: State, req: TradeRequest) -> Precheck:
    raw = await state.r.hgetall(last_quote_key(req.symbol))
    bp = await state.db.fetchval(
        "SELECT buying_power FROM account_balances ORDER BY updated_at DESC LIMIT 1"
    )
    kill = await read_kill_switch(state.db)
    quote = quote_from_mapping(req.symbol, raw) if raw else None
    ctx = RiskContext(
        now=state.clock.now(),
        quote=quote,
        # The gateway's callers are its token (a service) or operators (other Supabase users
        # are refused before any route); the executor checks the stored user_id again.
        submitter_is_operator=True,
        live_broker=state.settings.trading_mode.value == "live",
        buying_power=bp,
        kill_switch=kill,
    )
    return Precheck(check_trade(req, ctx, state.settings.risk_limits()), quote, bp, kill)


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@router.post("/api/trades/preview", responses={422: REFUSAL})
async def preview(state: StateDep, req: TradeRequest) -> PreviewOut:
    """What submitting ``req`` would answer now (the same rules), without inserting it.

    ``buying_power_after`` is the synced buying power less the notional for instructions
    that consume it (buys and SELL_TO_OPEN, as the buying-power rule counts them), plus it
    for the others; null when either is unknown.
    """
    check = await _precheck(state, req)
    result, quote, bp = check.result, check.quote, check.buying_power
    after: Decimal | None = None
    if bp is not None and result.notional is not None:
        consumes = req.instruction in BUYING_POWER_INSTRUCTIONS
        after = bp - result.notional if consumes else bp + result.notional
    return PreviewOut.model_validate(
        {
            "ok": result.ok,
            "violations": [{"code": v.code, "reason": v.reason} for v in result.violations],
            "notional": _num(result.notional),
            "buying_power": _num(bp),
            "buying_power_after": _num(after),
            "quote": None
            if quote is None
            else {"bid": quote.bid, "ask": quote.ask, "last": quote.last, "ts": quote.ts},
        }
    )


@router.post(
    "/api/trades",
    status_code=201,
    response_model=Trade,
    responses={
        201: {"description": "Inserted as pending"},
        403: error_response("Origin not allowed, or the kill switch is engaged"),
        422: REFUSAL,
    },
)
async def submit(state: StateDep, identity: IdentityDep, req: TradeRequest) -> JSONResponse:
    """Insert ``req`` as a ``pending`` trade when the pre-check accepts it; the executor
    re-checks it with the full context and places it. 403 while the kill switch is engaged
    (``POST /api/ops/kill-switch``); the preview lists it as the ``kill_switch`` violation.

    Submitted as a Supabase operator, the row's ``user_id`` is theirs (the executor checks
    it against ``operators`` again); with the gateway token it stays NULL (a service)."""
    check = await _precheck(state, req)
    result = check.result
    if check.kill.engaged:
        state.counters["trades_refused"] += 1
        why = f": {check.kill.reason}" if check.kill.reason else ""
        return JSONResponse({"detail": f"the kill switch is engaged{why}"}, status_code=403)
    if not result.ok:
        state.counters["trades_refused"] += 1
        return JSONResponse(
            {
                "error": "refused by risk checks",
                "reasons": [{"code": v.code, "reason": v.reason} for v in result.violations],
            },
            status_code=422,
        )
    # Every request column (streamdesk.models.REQUEST_COLUMNS): a column left out would drop
    # part of the order (a stop price, a bracket's exits) on the way to the executor.
    values = [_column_value(getattr(req, name)) for name in REQUEST_COLUMNS]
    n = len(REQUEST_COLUMNS)
    inserted = await state.db.fetchrow(
        f"INSERT INTO trades ({', '.join(REQUEST_COLUMNS)}, source, user_id) "
        f"VALUES ({', '.join(f'${i + 1}' for i in range(n))}, 'gateway', ${n + 1}) "
        f"RETURNING {TRADE_COLUMNS}",
        *values,
        identity.user_id,
    )
    state.counters["trades_submitted"] += 1
    assert inserted is not None
    return JSONResponse(row(inserted), status_code=201)


@router.post(
    "/api/trades/{trade_id}/cancel",
    responses={
        404: error_response("No such trade"),
        409: error_response("The trade is final or already being cancelled"),
    },
)
async def cancel(state: StateDep, trade_id: TradeId) -> CancelOut:
    """``pending`` -> ``cancelled``; ``working`` -> ``cancel_requested`` (the executor cancels
    at the broker); any other status answers 409."""
    async with state.db.acquire() as conn, conn.transaction():
        found = await conn.fetchrow("SELECT status FROM trades WHERE id = $1 FOR UPDATE", trade_id)
        if found is None:
            raise HTTPException(404, f"no trade {trade_id}")
        old = found["status"]
        new: Literal["cancelled", "cancel_requested"]
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
    return CancelOut(id=trade_id, status=new)


@router.post(
    "/api/trades/{trade_id}/stop",
    response_model=StopMoveOut,
    responses={
        403: error_response("Another user's trade (a Supabase operator moves their own)"),
        404: error_response("No such trade"),
        409: error_response("The trade is not a working STOP or STOP_LIMIT order"),
        422: {"model": TradeRefusal, "description": "A bad stop price, or refused by the "
              "stop-move rules (tick, stop_side, stop_limit_collar)"},
    },
)  # fmt: skip
async def move_stop(
    state: StateDep, identity: IdentityDep, trade_id: TradeId, body: StopMoveIn
) -> StopMoveOut | JSONResponse:
    """Request a move of a working ``STOP`` / ``STOP_LIMIT`` order's trigger (a single order
    or a bracket's stop-loss leg): sets ``replace_stop_price`` (a newer request overwrites one
    not yet taken) and records a ``trade_events`` row; the executor replaces the broker order
    (re-checking ``stop_side``) and clears it. The price passes the executor's stop-move rules
    first (its tick, the side of the current quote, a stop-limit's collar to its limit).
    A Supabase operator moves only their own trades, as ``streamdesk_replace_stop`` does."""
    stop = body.stop_price
    async with state.db.acquire() as conn, conn.transaction():
        found = await conn.fetchrow(
            f"SELECT {', '.join(REQUEST_COLUMNS)}, status, user_id FROM trades "
            "WHERE id = $1 FOR UPDATE",
            trade_id,
        )
        if found is None:
            raise HTTPException(404, f"no trade {trade_id}")
        if identity.user_id is not None and found["user_id"] != identity.user_id:
            raise HTTPException(403, f"trade {trade_id} is not yours")
        status, kind = found["status"], found["order_type"]
        if status != "working" or kind not in MOVABLE:
            raise HTTPException(
                409,
                f"trade {trade_id} is a {status} {kind} order; only a working STOP or "
                "STOP_LIMIT can be moved",
            )
        req = parse_request(dict(found))
        if isinstance(req, Violation):
            raise HTTPException(409, f"trade {trade_id} cannot be moved: {req.reason}")
        raw = await state.r.hgetall(last_quote_key(req.symbol))
        quote = quote_from_mapping(req.symbol, raw) if raw else None
        refused = stop_move_violations(req, stop, quote, state.settings.risk_limits())
        if refused:
            return JSONResponse(
                {
                    "error": "stop move refused",
                    "reasons": [{"code": v.code, "reason": v.reason} for v in refused],
                },
                status_code=422,
            )
        await conn.execute(
            "UPDATE trades SET replace_stop_price = $2, updated_at = now() WHERE id = $1",
            trade_id,
            stop,
        )
        await conn.execute(
            "INSERT INTO trade_events (trade_id, from_status, to_status, reason, detail) "
            "VALUES ($1, $2, $2, 'stop move requested by the user', "
            "jsonb_build_object('stop_price', $3::numeric, 'replace_stop_price', $4::numeric))",
            trade_id,
            status,
            req.stop_price,
            stop,
        )
    return StopMoveOut(
        id=trade_id, status=status, stop_price=_num(req.stop_price), replace_stop_price=float(stop)
    )
