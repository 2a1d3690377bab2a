"""ASGI guards in front of every route: the Host header, the Origin, and authentication.

- :class:`HostGuard` (outermost) answers 400 to a Host not in ``GATEWAY_ALLOWED_HOSTS``: a
  page on ``evil.example`` that re-binds its DNS name to 127.0.0.1 sends ``Host:
  evil.example`` and is refused before any route runs (DNS rebinding).
- :class:`AuthGuard` (innermost, after CORS) refuses, on ``/api/*`` (but ``/api/login`` and
  ``/api/logout``) and ``/ws``: an ``Origin`` that is neither this very origin nor in
  ``GATEWAY_CORS_ORIGINS`` (403), and a request without the token, a Supabase operator's
  access token (with ``SUPABASE_URL``) or a live session cookie (401; 403 for a Supabase user
  who is not an operator; 429 while the client is over its failed-attempt limit; 503 while
  the project's keys or the operator list cannot be read). A refused WebSocket is closed
  before it is accepted (the server answers the handshake with 403; a bad Host with 400
  where the server can). What it let through carries its :class:`~.identity.Identity` in
  the scope.

A browser cannot set headers on a WebSocket: on the same origin the session cookie does it;
a page holding a Supabase session elsewhere (an allowed cross origin) offers the subprotocols
``streamdesk`` and ``streamdesk.bearer.<access token>``, and the server selects
``streamdesk`` (the token is never echoed). Only a Supabase JWT is taken that way, never the
long-lived gateway token, and never from the query string (which access logs record).

Guards are plain ASGI so that they cover every route of every router, present and future,
WebSockets included, before FastAPI reads a body.
"""

from __future__ import annotations

import json
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import SESSION_COOKIE, Auth
from .identity import SCOPE_KEY, SERVICE, Identity, Refusal, looks_like_jwt
from .state import State

PUBLIC_API = frozenset({"/api/login", "/api/logout"})
#: The WebSocket subprotocol the live feed speaks, and the prefix of one carrying a JWT.
WS_SUBPROTOCOL = "streamdesk"
WS_BEARER_PREFIX = "streamdesk.bearer."


def host_name(host: str) -> str:
    """The name part of a Host header, lower-case, without the port (``[::1]`` kept)."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def needs_auth(path: str) -> bool:
    """Whether ``path`` is behind the token (the API and the live feed)."""
    if path in PUBLIC_API:
        return False
    return path == "/api" or path.startswith("/api/") or path == "/ws" or path.startswith("/ws/")


async def _deny(scope: Scope, receive: Receive, send: Send, status: int, detail: str,
                headers: dict[str, str] | None = None) -> None:  # fmt: skip
    body = json.dumps({"detail": detail}).encode()
    raw_headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if scope["type"] == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if status == 400 and "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status,
                        "headers": raw_headers})  # fmt: skip
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            # 1013 "try again later" for our own unavailability, 1008 "policy" otherwise.
            code = 1013 if status == 503 else 1008
            await send({"type": "websocket.close", "code": code, "reason": detail})
        return
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class HostGuard:
    """400 unless the Host header names an allowed host ('*' in the list allows any)."""

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.any = "*" in allowed
        self.allowed = frozenset(host_name(h) for h in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.any:
            host = Headers(scope=scope).get("host", "")
            if host_name(host) not in self.allowed:
                await _deny(scope, receive, send, 400, "host not allowed")
                return
        await self.app(scope, receive, send)


class AuthGuard:
    """Origin check and authentication for the API and the live feed."""

    def __init__(self, app: ASGIApp, state: State, cors_origins: list[str]) -> None:
        assert state.auth is not None
        self.app = app
        self.state = state
        self.auth: Auth = state.auth
        self.cors_origins = frozenset(cors_origins)

    def origin_allowed(self, origin: str, host: str) -> bool:
        """This very origin (its host[:port] is the Host header) or a configured one.

        The scheme is not compared: behind a TLS proxy the browser's origin is https while
        the gateway sees http; the Host header itself is already checked by HostGuard.
        """
        origin = origin.strip().lower().rstrip("/")
        if origin in self.cors_origins:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and parts.netloc == host.strip().lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not needs_auth(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and not self.origin_allowed(origin, headers.get("host", "")):
            await _deny(scope, receive, send, 403, "origin not allowed")
            return
        try:
            scope[SCOPE_KEY] = await self.authenticate(scope, headers)
        except Refusal as refusal:
            await _deny(scope, receive, send, refusal.status, refusal.detail, refusal.headers)
            return
        await self.app(scope, receive, send)

    async def authenticate(self, scope: Scope, headers: Headers) -> Identity:
        """The caller's identity, or :class:`Refusal` with the status, detail and headers."""
        supabase = self.state.supabase
        sid = session_id(headers)
        session = self.auth.sessions.parse(sid) if sid else None
        if session is not None:
            if session.user_id is None:
                return SERVICE
            if supabase is not None:
                return await supabase.operator(session.user_id, self.state.pool)
            # An operator's session while Supabase sign-in is off: not a credential now.
        credential, from_subprotocol = bearer_credential(scope, headers)
        if credential is None:
            raise Refusal(401, "not authenticated", {"WWW-Authenticate": "Bearer"})
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.auth.limiter.retry_after(client)
        if wait:
            raise Refusal(429, "too many failed attempts", {"Retry-After": str(wait)})
        if not from_subprotocol and self.auth.check_token(credential):
            return SERVICE
        if supabase is not None and looks_like_jwt(credential):
            try:
                claims = await supabase.claims(credential, client)
            except Refusal as refusal:
                if refusal.status == 401:
                    self.auth.limiter.failed(client)
                raise
            return await supabase.operator(claims.sub, self.state.pool)
        self.auth.limiter.failed(client)
        raise Refusal(401, "invalid token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def bearer_credential(scope: Scope, headers: Headers) -> tuple[str | None, bool]:
    """The credential the request carries and whether it came in a WebSocket subprotocol:
    ``Authorization`` first (any scheme: a non-Bearer one is a wrong credential, ``""``);
    then, on a WebSocket, a ``streamdesk.bearer.<jwt>`` subprotocol."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, given = authorization.partition(" ")
        return (given.strip() if scheme.lower() == "bearer" else ""), False
    if scope["type"] == "websocket":
        for protocol in scope.get("subprotocols") or ():
            if isinstance(protocol, str) and protocol.startswith(WS_BEARER_PREFIX):
                return protocol[len(WS_BEARER_PREFIX) :], True
    return None, False


def session_id(headers: Headers) -> str | None:
    """The session cookie's value, if any."""
    raw = headers.get("cookie")
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except CookieError:
        return None
    morsel = cookie.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None
