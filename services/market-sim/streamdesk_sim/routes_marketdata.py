"""Schwab's market-data API: quotes, option chains, expirations, price history, hours."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from streamdesk_sim import marketdata
from streamdesk_sim._routes import SimDep, error
from streamdesk_sim.price_history import price_history as candles

router = APIRouter()


@router.get("/marketdata/v1/quotes")
async def quotes(sim: SimDep, symbols: str = "", fields: str | None = None) -> Any:
    out: dict[str, Any] = {}
    for sym in [s.strip() for s in symbols.split(",") if s.strip()]:
        out[sym] = marketdata.quote(sim, sym)
    return out


@router.get("/marketdata/v1/{symbol}/quotes")
async def single_quote(symbol: str, sim: SimDep) -> Any:
    return {symbol: marketdata.quote(sim, symbol)}


@router.get("/marketdata/v1/chains")
async def chains(request: Request, sim: SimDep) -> Any:
    q = dict(request.query_params)
    symbol = q.pop("symbol", "")
    if not symbol:
        return error(400, "symbol is required")
    try:
        return marketdata.option_chain(sim, symbol.upper(), q)
    except (ValueError, OverflowError) as exc:
        return error(400, str(exc))


@router.get("/marketdata/v1/expirationchain")
async def expiration_chain(symbol: str, sim: SimDep) -> Any:
    return marketdata.expiration_chain(sim, symbol.upper())


@router.get("/marketdata/v1/pricehistory")
async def price_history(request: Request, sim: SimDep) -> Any:
    try:
        return candles(sim, dict(request.query_params))
    except (ValueError, OverflowError) as exc:
        return error(400, str(exc))


@router.get("/marketdata/v1/markets")
async def markets(sim: SimDep, markets: str = "equity", date: str | None = None) -> Any:
    try:
        return marketdata.market_hours(sim, markets.split(","), date)
    except (ValueError, OverflowError) as exc:
        return error(400, str(exc))


@router.get("/marketdata/v1/markets/{market_id}")
async def market(market_id: str, sim: SimDep, date: str | None = None) -> Any:
    try:
        return marketdata.market_hours(sim, [market_id], date)
    except (ValueError, OverflowError) as exc:
        return error(400, str(exc))
