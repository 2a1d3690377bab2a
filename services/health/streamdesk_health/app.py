"""The FastAPI application: /health, /health/{component}, /metrics, /livez, /readyz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, Response

from streamdesk.clock import SYSTEM_CLOCK, Clock

from .config import Settings
from .metrics import CONTENT_TYPE, build_registry, render
from .monitor import HealthMonitor
from .status import Status


def _code(status: Status) -> int:
    # 503 only when down, so load balancers and probes keep a degraded stack in service.
    return 503 if status is Status.DOWN else 200


def create_app(
    settings: Settings, *, clock: Clock = SYSTEM_CLOCK, monitor: HealthMonitor | None = None
) -> FastAPI:
    """Build the app; the lifespan starts and stops the monitor (bounded)."""
    mon = monitor or HealthMonitor(settings, clock=clock)
    registry = build_registry(mon)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        mon.start()
        try:
            yield
        finally:
            await mon.stop(timeout=settings.shutdown_timeout / 2)

    app = FastAPI(
        title="StreamDesk health",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.monitor = mon

    async def current() -> JSONResponse | None:
        if mon.snapshot is None:
            return JSONResponse(
                {"status": "down", "reason": "first check round not finished", "components": {}},
                status_code=503,
            )
        return None

    @app.get("/health")
    async def health() -> JSONResponse:
        pending = await current()
        if pending is not None:
            return pending
        assert mon.snapshot is not None
        return JSONResponse(mon.snapshot.to_json(), status_code=_code(mon.snapshot.status))

    @app.get("/health/{component}")
    async def component(component: str) -> JSONResponse:
        if component not in mon.component_names:
            raise HTTPException(404, f"unknown component {component!r}")
        pending = await current()
        if pending is not None:
            return pending
        assert mon.snapshot is not None
        result = mon.snapshot.components.get(component)
        if result is None:  # pragma: no cover - every named component is checked each round
            raise HTTPException(404, f"unknown component {component!r}")
        body = {"component": component, **result.to_json()}
        return JSONResponse(body, status_code=_code(result.status))

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(render(registry), media_type=CONTENT_TYPE)

    @app.get("/livez")
    async def livez() -> JSONResponse:
        alive = mon.running
        return JSONResponse(
            {"status": "ok" if alive else "down"}, status_code=200 if alive else 503
        )

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        snap = mon.snapshot
        max_age = 3 * settings.health_check_interval + settings.health_check_timeout
        if snap is None:
            return JSONResponse({"status": "down", "reason": "no check yet"}, status_code=503)
        age = mon.clock.time() - snap.checked_at
        if age > max_age:
            return JSONResponse(
                {"status": "down", "reason": f"last check {age:.0f}s ago"}, status_code=503
            )
        return JSONResponse({"status": "ok", "round": snap.round})

    return app
