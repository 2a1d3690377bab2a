"""Market-data and account reads: config, quotes, history, bars, option chain, positions,
balances and stream gaps (Postgres and Redis)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from streamdesk import __version__
from streamdesk.constants import last_quote_key
from streamdesk.risk import quote_from_mapping

from .state import State, get_state, row

router = APIRouter()
StateDep = Annotated[State, Depends(get_state)]


@router.get("/api/config")
async def config(state: StateDep) -> dict[str, Any]:
    settings = state.settings
    return {
        "tickers": settings.tickers,
        "trading_mode": settings.trading_mode.value,
        "trading_enabled": settings.trading_enabled,
        "market_orders": settings.risk_allow_market_orders,
        "version": __version__,
    }


@router.get("/api/quotes")
async def quotes(state: StateDep) -> dict[str, Any]:
    tickers = state.settings.tickers
    pipe = state.r.pipeline(transaction=False)
    for ticker in tickers:
        pipe.hgetall(last_quote_key(ticker))
    out: dict[str, Any] = {}
    for ticker, raw in zip(tickers, await pipe.execute(), strict=True):
        q = quote_from_mapping(ticker, raw) if raw else None
        if q is not None:
            out[ticker] = {
                "bid": float(q.bid),
                "ask": float(q.ask),
                "last": float(q.last),
                "ts": q.ts,
            }
    return out


@router.get("/api/history/{ticker}")
async def history(
    state: StateDep, ticker: str, minutes: int = Query(60, ge=1, le=60 * 24 * 7)
) -> dict[str, Any]:
    rows = await state.db.fetch(
        """
        SELECT e."timestamp", e.price, e.volume, i.sma9, i.vwap
        FROM equity_data e
        LEFT JOIN indicators i ON i.ticker = e.ticker AND i."timestamp" = e."timestamp"
        WHERE e.ticker = $1 AND e."timestamp" > now() - make_interval(mins => $2)
        ORDER BY e."timestamp" DESC LIMIT $3
        """,
        ticker.upper(),
        minutes,
        state.settings.gateway_history_max_points,
    )
    rows = list(reversed(rows))
    return {
        "ticker": ticker.upper(),
        "t": [int(r["timestamp"].timestamp() * 1000) for r in rows],
        "price": [r["price"] for r in rows],
        "volume": [r["volume"] for r in rows],
        "sma9": [r["sma9"] for r in rows],
        "vwap": [r["vwap"] for r in rows],
    }


@router.get("/api/bars/{ticker}")
async def bars(
    state: StateDep, ticker: str, days: int = Query(5, ge=1, le=400)
) -> list[dict[str, Any]]:
    rows = await state.db.fetch(
        "SELECT bucket, open, high, low, close, volume, vwap FROM bars_1m "
        "WHERE ticker = $1 AND bucket > now() - make_interval(days => $2) ORDER BY bucket",
        ticker.upper(),
        days,
    )
    return [row(r) for r in rows]


@router.get("/api/options/{underlying}")
async def options(state: StateDep, underlying: str) -> list[dict[str, Any]]:
    rows = await state.db.fetch(
        """
        SELECT DISTINCT ON (ticker) ticker, "timestamp", option_type, strike_price,
               expiration_date, last_price, bid, ask, delta, gamma, theta, vega,
               implied_volatility, open_interest, underlying_price
        FROM option_prices
        WHERE underlying = $1 AND "timestamp" > now() - interval '1 day'
        ORDER BY ticker, "timestamp" DESC
        """,
        underlying.upper(),
    )
    out = [row(r) for r in rows]
    for item in out:
        item["expiration_date"] = str(item["expiration_date"])
    out.sort(key=lambda x: (x["expiration_date"], x["strike_price"], x["option_type"]))
    return out


@router.get("/api/positions")
async def positions(state: StateDep) -> list[dict[str, Any]]:
    rows = await state.db.fetch("SELECT * FROM positions ORDER BY symbol")
    return [row(r) for r in rows]


@router.get("/api/balances")
async def balances(state: StateDep) -> list[dict[str, Any]]:
    return [row(r) for r in await state.db.fetch("SELECT * FROM account_balances")]


@router.get("/api/gaps")
async def gaps(state: StateDep, limit: int = Query(20, ge=1, le=500)) -> list[dict[str, Any]]:
    rows = await state.db.fetch(
        "SELECT id, source, started_at, ended_at, symbols, reason FROM stream_gaps "
        "ORDER BY started_at DESC LIMIT $1",
        limit,
    )
    return [row(r) for r in rows]
