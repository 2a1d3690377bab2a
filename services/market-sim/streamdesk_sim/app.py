"""FastAPI application: Schwab's REST subset, the streamer websocket and admin endpoints.

One router per area (``routes_oauth``, ``routes_trader``, ``routes_marketdata``,
``routes_streamer``, ``routes_admin``); every route reaches the simulator through the
``SimDep`` dependency (``app.state.sim``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from streamdesk_sim import (
    routes_admin,
    routes_marketdata,
    routes_oauth,
    routes_streamer,
    routes_trader,
)
from streamdesk_sim.config import Settings
from streamdesk_sim.http_faults import FaultMiddleware
from streamdesk_sim.sim import Sim

log = logging.getLogger(__name__)


def create_app(settings: Settings, sim: Sim | None = None) -> FastAPI:
    """Build the ASGI app (the market loops run in its lifespan).

    ``sim`` defaults to ``Sim(settings)``; the routes read the settings of the simulator.
    """
    sim = sim or Sim(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        loops = asyncio.create_task(sim.ticker.run_loops(stop), name="market-loops")
        log.info(
            "market-sim ready",
            extra={
                "seed": settings.seed,
                "clock": settings.clock.value,
                "load": settings.load_symbols,
            },
        )
        try:
            yield
        finally:
            stop.set()
            sim.faults.clear()
            sim.streamer.drop_websockets(1001)
            try:
                await asyncio.wait_for(loops, settings.shutdown_timeout)
            except TimeoutError:
                log.warning("market loops did not stop in time")

    app = FastAPI(title="StreamDesk market-sim", lifespan=lifespan, docs_url="/admin/docs")
    app.state.sim = sim
    app.add_middleware(FaultMiddleware, faults=sim.faults)
    # Added after the fault middleware, so it runs first: a request without a valid token is
    # refused before any injected delay.
    app.middleware("http")(routes_oauth.require_token)
    for router in (
        routes_oauth.router,
        routes_trader.router,
        routes_marketdata.router,
        routes_streamer.router,
        routes_admin.router,
    ):
        app.include_router(router)
    return app
