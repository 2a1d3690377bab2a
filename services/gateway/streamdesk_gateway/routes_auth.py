"""Login: the gateway token (or a Supabase operator's access token) traded for a session
cookie; logout; who am I."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from .auth import SESSION_COOKIE, Auth
from .guard import session_id
from .identity import Identity, Refusal, get_identity, looks_like_jwt
from .models import GUARD_RESPONSES, LoginIn, SessionOut, error_response
from .state import State

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
        401: error_response("Wrong token, or an invalid or expired Supabase token"),
        403: error_response("A Supabase user who is not an operator"),
        429: error_response("Too many failed attempts from this client (see Retry-After)"),
        503: GUARD_RESPONSES[503],
    },
)
async def login(body: LoginIn, request: Request) -> Response:
    """Trade the gateway token, or a Supabase operator's access token, for an HttpOnly,
    SameSite=Strict session cookie. An operator's session ends with their access token at
    the latest (log in again with the refreshed one) and stops working within seconds of
    their removal from ``operators``."""
    auth = _auth(request)
    state: State = request.app.state.sd
    client = request.client.host if request.client else "unknown"
    wait = auth.limiter.retry_after(client)
    if wait:
        return JSONResponse(
            {"detail": "too many failed attempts"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    user_id: UUID | None = None
    until: float | None = None
    if not auth.check_token(body.token):
        if state.supabase is None or not looks_like_jwt(body.token):
            auth.limiter.failed(client)
            return JSONResponse({"detail": "wrong token"}, status_code=401)
        try:
            claims = await state.supabase.claims(body.token, client)
            user_id = (await state.supabase.operator(claims.sub, state.pool)).user_id
        except Refusal as refusal:
            if refusal.status == 401:
                auth.limiter.failed(client)
            headers = {k: v for k, v in refusal.headers.items() if k != "WWW-Authenticate"}
            return JSONResponse(
                {"detail": refusal.detail}, status_code=refusal.status, headers=headers
            )
        until = claims.exp
    old = session_id(request.headers)
    if old:
        auth.sessions.drop(old)
    response = Response(status_code=204)
    lifetime = auth.session_ttl if until is None else until - state.clock.time()
    response.set_cookie(
        SESSION_COOKIE,
        auth.sessions.create(user_id, until=until),
        max_age=max(1, int(min(lifetime, auth.session_ttl))),
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
async def session(identity: Annotated[Identity, Depends(get_identity)]) -> SessionOut:
    """200 when the caller is authenticated (the guard answers 401 otherwise), with the
    Supabase operator it is authenticated as (null: the gateway's token or its session)."""
    user_id = None if identity.user_id is None else str(identity.user_id)
    return SessionOut(authenticated=True, user_id=user_id)
