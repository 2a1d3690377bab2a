"""OAuth, as Schwab's: the authorize redirect, the token endpoint, the bearer-token check."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from streamdesk_sim._routes import SimDep, error
from streamdesk_sim.sim import Sim

router = APIRouter()

#: Path prefixes whose every request needs a valid access token (else 401).
PROTECTED = ("/trader/", "/marketdata/")


async def require_token(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """HTTP middleware: 401 for a request under ``PROTECTED`` without a valid access token."""
    sim: Sim = request.app.state.sim
    if request.url.path.startswith(PROTECTED) and not _bearer_ok(sim, request):
        return JSONResponse(_UNAUTHORIZED, status_code=401)
    return await call_next(request)


@router.get("/v1/oauth/authorize")
async def authorize(request: Request) -> Response:
    q = request.query_params
    redirect = q.get("redirect_uri")
    if not redirect:
        return error(400, "redirect_uri is required")
    params = {"code": "market-sim-code", "session": "sim"}
    if q.get("state"):
        params["state"] = q["state"]
    sep = "&" if "?" in redirect else "?"
    return RedirectResponse(redirect + sep + urlencode(params), status_code=302)


@router.post("/v1/oauth/token")
async def token(request: Request, sim: SimDep) -> Response:
    settings = sim.settings
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    key, secret = _client_credentials(request, form)
    if (settings.app_key and key != settings.app_key) or (
        settings.app_secret and secret != settings.app_secret
    ):
        return _oauth_error(401, "invalid_client", "Unauthorized client")
    grant = form.get("grant_type")
    if grant == "authorization_code":
        if not form.get("code"):
            return _oauth_error(400, "invalid_request", "code is required")
        return JSONResponse(sim.tokens.issue())
    if grant == "refresh_token":
        info = sim.tokens.check(str(form.get("refresh_token", "")), "r")
        if info is None:
            return _oauth_error(
                400,
                "refresh_token_authentication_error",
                "Failed refresh token authentication",
            )
        return JSONResponse(sim.tokens.issue(login=info.login))
    return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")


_UNAUTHORIZED = {
    "errors": [{"status": "401", "title": "Unauthorized", "detail": "invalid access token"}]
}


def _oauth_error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


def _bearer_ok(sim: Sim, request: Request) -> bool:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return False
    return sim.tokens.check(auth[7:].strip(), "a") is not None


def _client_credentials(request: Request, form: Any) -> tuple[str | None, str | None]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            key, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None, None
        return key, secret
    return form.get("client_id"), form.get("client_secret")
