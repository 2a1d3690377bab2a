"""Login: the gateway token traded for a session cookie; logout; who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .auth import SESSION_COOKIE, Auth
from .guard import session_id
from .models import GUARD_RESPONSES, LoginIn, SessionOut, error_response

router = APIRouter(tags=["auth"])


def _auth(request: Request) -> Auth:
    auth: Auth = request.app.state.sd.auth
    return auth


@router.post(
    "/api/login",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Logged in; the session cookie is set"},
        400: GUARD_RESPONSES[400],
        401: error_response("Wrong token"),
        429: error_response("Too many failed attempts from this client (see Retry-After)"),
    },
)
async def login(body: LoginIn, request: Request) -> Response:
    """Trade the gateway token for an HttpOnly, SameSite=Strict session cookie."""
    auth = _auth(request)
    client = request.client.host if request.client else "unknown"
    wait = auth.limiter.retry_after(client)
    if wait:
        return JSONResponse(
            {"detail": "too many failed attempts"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    if not auth.check_token(body.token):
        auth.limiter.failed(client)
        return JSONResponse({"detail": "wrong token"}, status_code=401)
    old = session_id(request.headers)
    if old:
        auth.sessions.drop(old)
    response = Response(status_code=204)
    response.set_cookie(
        SESSION_COOKIE,
        auth.sessions.create(),
        max_age=int(auth.session_ttl),
        path="/",
        httponly=True,
        samesite="strict",
        secure=auth.cookie_secure,
    )
    return response


@router.post(
    "/api/logout",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Logged out (the cookie is cleared)"},
        400: GUARD_RESPONSES[400],
    },
)
async def logout(request: Request) -> Response:
    """End this browser's session (no-op without one)."""
    auth = _auth(request)
    sid = session_id(request.headers)
    if sid:
        auth.sessions.drop(sid)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=auth.cookie_secure
    )
    return response


@router.get("/api/session", responses=GUARD_RESPONSES)
async def session() -> SessionOut:
    """200 when the caller is authenticated (the guard answers 401 otherwise)."""
    return SessionOut(authenticated=True)
