"""Strategies: list, enable, disable, flatten (operators only: behind the gateway's guard),
and the P&L per strategy of a day.

The rows and the P&L are ``streamdesk.cli_strategy`` / ``streamdesk.cli_report``'s, the same
code as ``streamdesk strategy`` and ``streamdesk report``; a change is a row update whose
trigger wakes the strategy service (docs/strategies.md, "Live runtime").
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from streamdesk.cli_report import build_report
from streamdesk.cli_strategy import (
    StrategyCliError,
    list_strategies,
    request_flatten,
    set_enabled,
)

from .state import State, get_state

log = logging.getLogger(__name__)

router = APIRouter(tags=["strategies"])
StateDep = Annotated[State, Depends(get_state)]
StrategyId = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="The strategy's id")
]


class StrategyError(BaseModel):
    """A refusal: ``error`` says why."""

    error: str


class StrategyOut(BaseModel):
    """One strategy as the service runs it."""

    id: str
    module: str
    tickers: list[str]
    enabled: bool
    mode: str
    max_position: int
    max_orders_per_day: int
    max_loss_per_day: float
    disabled_reason: str
    flatten_requested: bool
    open_alerts: int
    open_orders: int


class StrategyAlertOut(BaseModel):
    """An open alert of a strategy (a limit reached, an error)."""

    id: int
    at: str
    strategy_id: str
    kind: str
    message: str


class StrategiesOut(BaseModel):
    """Every strategy and the open alerts."""

    strategies: list[StrategyOut]
    alerts: list[StrategyAlertOut]


class StrategyDayOut(BaseModel):
    """One strategy's P&L of the day (amounts as decimal strings)."""

    strategy: str
    fills: int
    bought: str
    sold: str
    realized: str
    unrealized: str | None
    paper: bool
    positions: dict[str, str]


class StrategyPnlOut(BaseModel):
    """P&L per strategy of a New York day, from the fills (average cost)."""

    day: str
    strategies: list[StrategyDayOut]


R404: dict[int | str, dict[str, Any]] = {
    404: {"model": StrategyError, "description": "No such strategy."}
}


async def _one(state: State, sid: str) -> StrategyOut | JSONResponse:
    for row in await list_strategies(state.db):
        if row["id"] == sid:
            return StrategyOut(**row)
    return JSONResponse({"error": f"no strategy {sid!r}"}, status_code=404)


@router.get("/api/strategies")
async def strategies(state: StateDep) -> StrategiesOut:
    """Every strategy (mode, limits, why it is disabled) and the open alerts."""
    rows = await list_strategies(state.db)
    alerts = await state.db.fetch(
        "SELECT id, at, strategy_id, kind, message FROM strategy_alerts "
        "WHERE resolved_at IS NULL ORDER BY id DESC LIMIT 100"
    )
    return StrategiesOut(
        strategies=[StrategyOut(**r) for r in rows],
        alerts=[
            StrategyAlertOut(
                id=a["id"],
                at=a["at"].isoformat(),
                strategy_id=a["strategy_id"],
                kind=a["kind"],
                message=a["message"],
            )
            for a in alerts
        ],
    )


@router.get("/api/strategies/pnl")
async def strategies_pnl(
    state: StateDep, day: Annotated[date, Query(description="New York day, YYYY-MM-DD")]
) -> StrategyPnlOut:
    """P&L per strategy of ``day`` (realized by average cost, unrealized at the day's last
    1-minute close), the same figures as ``streamdesk report --day``."""
    rows = await build_report(state.db, day)
    return StrategyPnlOut(
        day=day.isoformat(), strategies=[StrategyDayOut(**r.as_dict()) for r in rows]
    )


async def _act(state: State, sid: str, action: str) -> StrategyOut | JSONResponse:
    try:
        if action == "flatten":
            await request_flatten(state.db, sid)
        else:
            await set_enabled(state.db, sid, action == "enable")
    except StrategyCliError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    log.info("strategy %s: %s requested from the dashboard", sid, action)
    return await _one(state, sid)


@router.post("/api/strategies/{strategy_id}/enable", response_model=StrategyOut, responses=R404)
async def strategy_enable(state: StateDep, strategy_id: StrategyId) -> Any:
    """Enable a strategy (its open alerts are resolved)."""
    return await _act(state, strategy_id, "enable")


@router.post("/api/strategies/{strategy_id}/disable", response_model=StrategyOut, responses=R404)
async def strategy_disable(state: StateDep, strategy_id: StrategyId) -> Any:
    """Disable a strategy: no new signals; open orders and positions stay."""
    return await _act(state, strategy_id, "disable")


@router.post("/api/strategies/{strategy_id}/flatten", response_model=StrategyOut, responses=R404)
async def strategy_flatten(state: StateDep, strategy_id: StrategyId) -> Any:
    """Cancel the strategy's open orders, close its positions with market orders, disable it."""
    return await _act(state, strategy_id, "flatten")
