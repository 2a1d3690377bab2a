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
from collections.abc import AsyncIterator, Callable
from time import monotonic

from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyCookie, HTTPBearer

from streamdesk import __version__
from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.db import close_pool, create_pool
from streamdesk.heartbeat import Heartbeat
from streamdesk.redisutil import create_redis
from streamdesk.shutdown import log_task_exception

from . import (
    routes_auth,
    routes_live,
    routes_market,
    routes_ops,
    routes_strategies,
    routes_trades,
)
from .auth import SESSION_COOKIE, Auth
from .config import Settings
from .frontend import mount_frontend
from .guard import AuthGuard, HostGuard
from .identity import SupabaseAuth
from .live import Fanout
from .models import GUARD_RESPONSES
from .state import State

log = logging.getLogger(__name__)

#: Documentation only (``auto_error=False``: they never refuse): the guard enforces them.
BEARER = HTTPBearer(
    auto_error=False,
    description="The gateway token, or a Supabase operator's access token (with SUPABASE_URL)",
)
COOKIE = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="POST /api/login")


def create_app(
    settings: Settings,
    *,
    clock: Clock = SYSTEM_CLOCK,
    monotonic: Callable[[], float] = monotonic,
) -> FastAPI:
    """Build the FastAPI app for ``settings`` (``clock`` decides market hours for the risk
    pre-check; ``monotonic`` times the failed-login window and the Supabase key and operator
    caches). Reads, or creates on first use, the gateway token."""
    state = State(settings, clock)
    state.auth = Auth(settings, monotonic=monotonic, wall=clock.time)
    if settings.supabase_url is not None:
        state.supabase = SupabaseAuth(settings, state.counters, monotonic=monotonic)

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
            # Flags as well as cancellations (see Fanout.stop): both loops end within a second
            # even when a cancel is swallowed, so the shutdown stays bounded.
            state.fanout.stop()
            await heartbeat.stop()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=5)
            await close_pool(state.pool)
            if state.supabase is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(state.supabase.aclose(), 5)
            # Bounded: a Redis connection closed under us must not hang the shutdown.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(state.redis.aclose(), 5)

    app = FastAPI(title="StreamDesk gateway", version=__version__, lifespan=lifespan)
    app.state.sd = state

    # Innermost first: the auth guard runs after CORS (preflights carry no credentials),
    # the Host guard before anything else.
    app.add_middleware(AuthGuard, state=state, cors_origins=settings.gateway_cors_origins)
    if settings.gateway_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.gateway_cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(HostGuard, allowed=settings.gateway_allowed_hosts)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default handler echoes the input back, and answers 500 when that input is
        # a body that is not UTF-8; the location and the message are the useful part.
        if request.method == "POST" and routes_trades.is_body_route(request.url.path):
            return routes_trades.invalid_body(state, request.url.path, exc.errors())
        errors = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]  # fmt: skip
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/livez", responses={400: GUARD_RESPONSES[400]})
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(routes_auth.router)
    for module in (routes_market, routes_trades, routes_ops, routes_strategies):
        app.include_router(
            module.router,
            dependencies=[Security(BEARER), Security(COOKIE)],
            responses=GUARD_RESPONSES,
        )
    app.include_router(routes_live.router)
    mount_frontend(app, settings.static_dir())
    return app
