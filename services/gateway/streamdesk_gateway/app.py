"""The gateway: dashboard API, live WebSocket feed and trade submission.

REST reads come from Postgres (history, option chain, trades, positions) and Redis (latest
quotes); the live feed forwards the writer's one-message-per-flush updates; trades are
validated with the same rules as the executor (``streamdesk.risk``) and inserted as
``pending`` rows — the executor does the rest. The routes live in ``routes_*.py``, one module
per area; this module builds the app, its lifespan and what is shared by every route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from streamdesk import __version__
from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.db import close_pool, create_pool
from streamdesk.heartbeat import Heartbeat
from streamdesk.redisutil import create_redis
from streamdesk.shutdown import log_task_exception

from . import routes_live, routes_market, routes_ops, routes_trades
from .config import Settings
from .live import Fanout
from .state import State

log = logging.getLogger(__name__)

BUILTIN_STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> FastAPI:
    """Build the FastAPI app for ``settings`` (``clock`` decides market hours for the risk
    pre-check)."""
    state = State(settings, clock)

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

    for module in (routes_market, routes_trades, routes_ops, routes_live):
        app.include_router(module.router)

    static_dir = settings.gateway_static_dir
    if static_dir is not None and (static_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=static_dir, html=True), name="dashboard")
    else:

        @app.get("/")
        async def index() -> FileResponse:
            return FileResponse(BUILTIN_STATIC / "index.html")

    return app
