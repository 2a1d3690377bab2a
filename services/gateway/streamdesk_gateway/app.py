"""The gateway: dashboard API, live WebSocket feed and trade submission.

REST reads come from Postgres (history, option chain, trades, positions) and Redis (latest
quotes); the live feed forwards the writer's one-message-per-flush updates; trades are
validated with the same rules as the executor (``streamdesk.risk``) and inserted as
``pending`` rows — the executor does the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from streamdesk import __version__
from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.constants import last_quote_key
from streamdesk.db import close_pool, create_pool
from streamdesk.heartbeat import Heartbeat
from streamdesk.models import TradeRequest
from streamdesk.redisutil import create_redis
from streamdesk.risk import RiskContext, check_trade, quote_from_mapping
from streamdesk.shutdown import log_task_exception

from .config import Settings
from .live import Fanout

log = logging.getLogger(__name__)

BUILTIN_STATIC = Path(__file__).parent / "static"
TRADE_COLUMNS = (
    "id, created_at, symbol, asset_type, instruction, quantity, order_type, limit_price, "
    "duration, status, broker_order_id, filled_quantity, avg_fill_price, error, updated_at"
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in dict(record).items()}


class State:
    """What the app holds while running."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.redis: aioredis.Redis | None = None
        self.fanout: Fanout | None = None
        self.counters = {"trades_submitted": 0, "trades_refused": 0, "ws_clients": 0}

    @property
    def db(self) -> asyncpg.Pool:
        if self.pool is None:
            raise HTTPException(503, "database not connected")
        return self.pool

    @property
    def r(self) -> aioredis.Redis:
        if self.redis is None:
            raise HTTPException(503, "redis not connected")
        return self.redis


def create_app(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> FastAPI:
    """Build the FastAPI app for ``settings`` (``clock`` decides market hours for the risk
    pre-check)."""
    state = State(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.redis = create_redis(settings.redis_url)
        state.pool = await create_pool(settings.database_url, application_name="gateway")
        state.fanout = Fanout(state.redis, settings.gateway_ws_queue)
        heartbeat = Heartbeat(
            state.redis,
            "gateway",
            interval=settings.heartbeat_interval,
            ttl=settings.heartbeat_ttl,
            counters=lambda: {
                **state.counters,
                "ws_clients": len(state.fanout.clients) if state.fanout else 0,
                "live_messages": state.fanout.messages if state.fanout else 0,
            },
        )
        tasks = [asyncio.create_task(state.fanout.run(), name="fanout"), heartbeat.start()]
        for task in tasks:
            task.add_done_callback(log_task_exception)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=5)
            await heartbeat.stop()
            await close_pool(state.pool)
            await state.redis.aclose()

    app = FastAPI(title="StreamDesk gateway", version=__version__, lifespan=lifespan)
    app.state.sd = state

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default handler echoes the input back, and answers 500 when that input is
        # a body that is not UTF-8; the location and the message are the useful part.
        errors = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]  # fmt: skip
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        return {
            "tickers": settings.tickers,
            "trading_mode": settings.trading_mode.value,
            "trading_enabled": settings.trading_enabled,
            "market_orders": settings.risk_allow_market_orders,
            "version": __version__,
        }

    @app.get("/api/quotes")
    async def quotes() -> dict[str, Any]:
        pipe = state.r.pipeline(transaction=False)
        for ticker in settings.tickers:
            pipe.hgetall(last_quote_key(ticker))
        out: dict[str, Any] = {}
        for ticker, raw in zip(settings.tickers, await pipe.execute(), strict=True):
            q = quote_from_mapping(ticker, raw) if raw else None
            if q is not None:
                out[ticker] = {
                    "bid": float(q.bid),
                    "ask": float(q.ask),
                    "last": float(q.last),
                    "ts": q.ts,
                }
        return out

    @app.get("/api/history/{ticker}")
    async def history(
        ticker: str, minutes: int = Query(60, ge=1, le=60 * 24 * 7)
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
            settings.gateway_history_max_points,
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

    @app.get("/api/bars/{ticker}")
    async def bars(ticker: str, days: int = Query(5, ge=1, le=400)) -> list[dict[str, Any]]:
        rows = await state.db.fetch(
            "SELECT bucket, open, high, low, close, volume, vwap FROM bars_1m "
            "WHERE ticker = $1 AND bucket > now() - make_interval(days => $2) ORDER BY bucket",
            ticker.upper(),
            days,
        )
        return [_row(r) for r in rows]

    @app.get("/api/options/{underlying}")
    async def options(underlying: str) -> list[dict[str, Any]]:
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
        out = [_row(r) for r in rows]
        for item in out:
            item["expiration_date"] = str(item["expiration_date"])
        out.sort(key=lambda x: (x["expiration_date"], x["strike_price"], x["option_type"]))
        return out

    @app.get("/api/trades")
    async def trades(limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        rows = await state.db.fetch(
            f"SELECT {TRADE_COLUMNS} FROM trades ORDER BY id DESC LIMIT $1", limit
        )
        return [_row(r) for r in rows]

    @app.get("/api/trades/{trade_id}")
    async def trade(trade_id: int) -> dict[str, Any]:
        row = await state.db.fetchrow(f"SELECT {TRADE_COLUMNS} FROM trades WHERE id = $1", trade_id)
        if row is None:
            raise HTTPException(404, f"no trade {trade_id}")
        events = await state.db.fetch(
            "SELECT at, from_status, to_status, reason, detail FROM trade_events "
            "WHERE trade_id = $1 ORDER BY id",
            trade_id,
        )
        out = _row(row)
        out["events"] = [
            {
                **_row(e),
                "detail": json.loads(e["detail"]) if isinstance(e["detail"], str) else e["detail"],
            }
            for e in events
        ]
        return out

    @app.post("/api/trades", status_code=201)
    async def submit(body: dict[str, Any]) -> JSONResponse:
        try:
            req = TradeRequest.model_validate(body)
        except ValidationError as exc:
            state.counters["trades_refused"] += 1
            reasons = [
                f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors()
            ]
            return JSONResponse({"error": "invalid trade", "reasons": reasons}, status_code=422)
        raw = await state.r.hgetall(last_quote_key(req.symbol))
        bp = await state.db.fetchval(
            "SELECT buying_power FROM account_balances ORDER BY updated_at DESC LIMIT 1"
        )
        ctx = RiskContext(
            now=clock.now(),
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
        row = await state.db.fetchrow(
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
        assert row is not None
        return JSONResponse(_row(row), status_code=201)

    @app.post("/api/trades/{trade_id}/cancel")
    async def cancel(trade_id: int) -> dict[str, Any]:
        async with state.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT status FROM trades WHERE id = $1 FOR UPDATE", trade_id
            )
            if row is None:
                raise HTTPException(404, f"no trade {trade_id}")
            old = row["status"]
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

    @app.get("/api/positions")
    async def positions() -> list[dict[str, Any]]:
        rows = await state.db.fetch("SELECT * FROM positions ORDER BY symbol")
        return [_row(r) for r in rows]

    @app.get("/api/balances")
    async def balances() -> list[dict[str, Any]]:
        return [_row(r) for r in await state.db.fetch("SELECT * FROM account_balances")]

    @app.get("/api/gaps")
    async def gaps(limit: int = Query(20, ge=1, le=500)) -> list[dict[str, Any]]:
        rows = await state.db.fetch(
            "SELECT id, source, started_at, ended_at, symbols, reason FROM stream_gaps "
            "ORDER BY started_at DESC LIMIT $1",
            limit,
        )
        return [_row(r) for r in rows]

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        if state.fanout is None:
            await socket.close(code=1013)
            return
        client = state.fanout.add()
        try:
            while True:
                try:
                    message = await asyncio.wait_for(client.queue.get(), timeout=15.0)
                except TimeoutError:
                    message = json.dumps({"type": "ping"})
                await socket.send_text(message)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            state.fanout.remove(client)

    static_dir = settings.gateway_static_dir
    if static_dir is not None and (static_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=static_dir, html=True), name="dashboard")
    else:

        @app.get("/")
        async def index() -> FileResponse:
            return FileResponse(BUILTIN_STATIC / "index.html")

    return app
