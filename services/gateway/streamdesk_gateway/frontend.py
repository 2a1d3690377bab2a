"""Serving the dashboard: the built frontend (``frontend/dist``), or how to build it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StreamDesk</title></head>
<body style="font:15px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto">
<h1>StreamDesk</h1>
<p>The dashboard is not built. <code>make run</code> builds it (Node &ge; 20), or by hand:
<code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>, then reload this page.
A build elsewhere is served with <code>GATEWAY_STATIC_DIR=/path/to/dist</code>.</p>
<p>The API is up: <a href="/docs">/docs</a>.</p>
</body></html>
"""


class SinglePageApp(StaticFiles):
    """Static files, with ``index.html`` for client-side routes (a path without a file
    extension that names no file), so a reload of ``/orders`` still opens the app."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            last = path.rsplit("/", 1)[-1]
            api = path == "api" or path.startswith(("api/", "ws"))
            if exc.status_code != 404 or api or "." in last:
                raise
            return await super().get_response("index.html", scope)


def mount_frontend(app: FastAPI, static_dir: Path | None) -> None:
    """Serve ``static_dir`` at ``/`` (after every route), or a page saying how to build it."""
    if static_dir is not None:
        app.mount("/", SinglePageApp(directory=static_dir, html=True), name="dashboard")
        return

    @app.get("/", include_in_schema=False)
    async def not_built() -> HTMLResponse:
        return HTMLResponse(NOT_BUILT)
