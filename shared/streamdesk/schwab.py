"""The one way StreamDesk builds schwab-py clients, against Schwab or against market-sim.

The real, unmodified schwab-py always addresses ``https://api.schwabapi.com``. We give its
OAuth session an httpx transport that rewrites that origin to ``settings.schwab_base_url``, so
every call (REST, and the token refresh that authlib posts to ``TOKEN_ENDPOINT``) reaches
whichever server is configured, while responses (e.g. the ``Location`` header of a placed order)
stay exactly as the server sent them.

Tokens live in one file in schwab-py's own format (``{"creation_timestamp": ..., "token":
{...}}``), written atomically with mode 0600 under an ``fcntl`` lock, so
``schwab.auth.client_from_token_file`` can read it too.

Import schwab-py through this module (``from streamdesk.schwab import schwab_orders`` ...):
schwab-py's import emits deprecation warnings from its dependencies (``websockets.legacy``,
authlib's httpx shim) that this module silences once, at import.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.config import CommonSettings, TradingMode
from streamdesk.tokens import (
    REFRESH_TOKEN_MAX_AGE,
    TokenExpiredError,
    TokenMissingError,
    TokenStore,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*websockets\.legacy is deprecated.*")
    warnings.filterwarnings("ignore", message=r".*httpx module is deprecated.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"websockets\..*")
    import schwab
    import schwab.auth
    import schwab.orders.common as schwab_common
    import schwab.orders.equities as schwab_equities
    import schwab.orders.options as schwab_options
    import schwab.streaming
    import schwab.utils
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client

    # authlib's sessions are built on ``httpx2`` when it is installed, else on ``httpx``; our
    # transports must come from the same library.
    try:
        import httpx2 as httpx
    except ImportError:  # pragma: no cover - depends on the installed authlib stack
        import httpx  # type: ignore[no-redef]

log = logging.getLogger(__name__)

SCHWAB_ORIGIN = "https://api.schwabapi.com"
TOKEN_ENDPOINT: str = schwab.auth.TOKEN_ENDPOINT
#: Authorization code sent to market-sim by :func:`ensure_paper_token` (the sim accepts any).
PAPER_AUTH_CODE = "streamdesk-paper"

__all__ = [
    "PAPER_AUTH_CODE",
    "REFRESH_TOKEN_MAX_AGE",
    "SCHWAB_ORIGIN",
    "TOKEN_ENDPOINT",
    "AsyncRewriteTransport",
    "LiveLoginRequiredError",
    "OAuth2Client",
    "OAuthError",
    "RewriteTransport",
    "TokenExpiredError",
    "TokenMissingError",
    "TokenStore",
    "ensure_paper_token",
    "force_token_refresh",
    "make_client",
    "make_stream_client",
    "schwab",
    "schwab_common",
    "schwab_equities",
    "schwab_options",
]


class LiveLoginRequiredError(RuntimeError):
    """Raised by :func:`ensure_paper_token` in live mode: run ``streamdesk auth`` first."""


# --------------------------------------------------------------------------- transports


def _rewrite(request: httpx.Request, base: httpx.URL) -> None:
    if request.url.host != "api.schwabapi.com":
        return
    prefix = base.raw_path.decode().split("?")[0].rstrip("/")
    request.url = request.url.copy_with(
        scheme=base.scheme,
        host=base.host,
        port=base.port,
        path=prefix + request.url.path,
    )
    request.headers["Host"] = base.netloc.decode()


class RewriteTransport(httpx.BaseTransport):
    """Sends requests for ``https://api.schwabapi.com`` to ``base_url`` instead."""

    def __init__(self, base_url: str, inner: httpx.BaseTransport | None = None) -> None:
        self.base = httpx.URL(base_url)
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _rewrite(request, self.base)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class AsyncRewriteTransport(httpx.AsyncBaseTransport):
    """Async twin of :class:`RewriteTransport`."""

    def __init__(self, base_url: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.base = httpx.URL(base_url)
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _rewrite(request, self.base)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --------------------------------------------------------------------------- sessions


def _expired(exc: OAuthError) -> TokenExpiredError:
    return TokenExpiredError(
        f"Schwab refused the refresh token ({exc.error}): log in again "
        "(`streamdesk auth`, or delete the token file in paper mode)"
    )


class _Session(OAuth2Client):  # type: ignore[misc]
    """authlib session whose refresh failures surface as :class:`TokenExpiredError`."""

    def refresh_token(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().refresh_token(*args, **kwargs)
        except OAuthError as exc:
            raise _expired(exc) from exc


class _AsyncSession(AsyncOAuth2Client):  # type: ignore[misc]
    async def refresh_token(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().refresh_token(*args, **kwargs)
        except OAuthError as exc:
            raise _expired(exc) from exc


def make_client(
    settings: CommonSettings,
    *,
    asyncio: bool = False,
    timeout: float = 10.0,
    enforce_enums: bool = True,
) -> Any:
    """Build a schwab-py ``Client`` (or ``AsyncClient``) from the token file and settings.

    Requests go to ``settings.schwab_base_url`` with a ``timeout`` (seconds, per request);
    refreshed tokens are written back to
    ``settings.schwab_token_path``. Raises :class:`TokenMissingError` without a token file and
    :class:`TokenExpiredError` when the refresh token is older than Schwab's 7 days (or, later,
    when the server refuses it during a refresh).
    """
    store = TokenStore(settings.schwab_token_path)
    data = store.read()
    if data is None:
        raise TokenMissingError(
            f"no Schwab token at {settings.schwab_token_path}: run `streamdesk auth` "
            "(live) or call ensure_paper_token (paper)"
        )
    age = store.age_seconds()
    if age is not None and age > REFRESH_TOKEN_MAX_AGE:
        raise TokenExpiredError(
            f"the Schwab token at {settings.schwab_token_path} is {age / 86400:.1f} days old; "
            "refresh tokens last 7 days: log in again"
        )
    metadata = schwab.auth.TokenMetadata.from_loaded_token(data, store.write)
    writer = metadata.wrapped_token_write_func()
    common: dict[str, Any] = {
        "client_secret": settings.schwab_app_secret,
        "token": metadata.token,
        "token_endpoint": TOKEN_ENDPOINT,
        "leeway": 300,
        "timeout": timeout,
    }
    if asyncio:

        async def update_token(token: dict[str, Any], *args: Any, **kwargs: Any) -> None:
            writer(token, *args, **kwargs)

        session: Any = _AsyncSession(
            settings.schwab_api_key,
            update_token=update_token,
            transport=AsyncRewriteTransport(settings.schwab_base_url),
            **common,
        )
        aclient = schwab.client.AsyncClient(
            settings.schwab_api_key,
            session,
            token_metadata=metadata,
            enforce_enums=enforce_enums,
        )
        aclient.set_timeout(timeout)  # schwab-py's constructor resets it to 30 s
        return aclient
    session = _Session(
        settings.schwab_api_key,
        update_token=writer,
        transport=RewriteTransport(settings.schwab_base_url),
        **common,
    )
    client = schwab.client.Client(
        settings.schwab_api_key, session, token_metadata=metadata, enforce_enums=enforce_enums
    )
    client.set_timeout(timeout)  # schwab-py's constructor resets it to 30 s
    return client


def force_token_refresh(client: Any) -> None:
    """Mark the client's access token expired so the next request refreshes it.

    Use after a 401 (the server revoked the access token before its stated expiry).
    """
    client.session.token["expires_at"] = 0


def make_stream_client(client: Any, account_id: int | None = None) -> Any:
    """A schwab-py ``StreamClient`` for ``client`` (its websocket URL comes from the server's
    ``userPreference``, so against market-sim it is the sim's own websocket)."""
    return schwab.streaming.StreamClient(client, account_id=account_id)


def _token_is_usable(data: dict[str, Any] | None, now: float) -> bool:
    if data is None:
        return False
    age = now - float(data["creation_timestamp"])
    token = data["token"]
    return (
        age < REFRESH_TOKEN_MAX_AGE
        and isinstance(token, dict)
        and bool(token.get("access_token"))
        and bool(token.get("refresh_token"))
    )


def ensure_paper_token(
    settings: CommonSettings, *, force: bool = False, clock: Clock = SYSTEM_CLOCK
) -> bool:
    """In paper mode, make sure a usable token file exists; return True if one was created.

    Performs the OAuth ``authorization_code`` exchange against the configured server
    (market-sim accepts any code), so paper services start with zero manual steps. Refuses
    in live mode (:class:`LiveLoginRequiredError`): live tokens come from ``streamdesk auth``.
    """
    if settings.trading_mode is not TradingMode.PAPER:
        raise LiveLoginRequiredError(
            "TRADING_MODE=live: no automatic login; run `streamdesk auth` to create the token"
        )
    store = TokenStore(settings.schwab_token_path, clock=clock)
    if not force and _token_is_usable(store.read(), clock.time()):
        return False
    with OAuth2Client(
        settings.schwab_api_key,
        client_secret=settings.schwab_app_secret,
        redirect_uri=settings.schwab_callback_url,
        transport=RewriteTransport(settings.schwab_base_url),
        timeout=10.0,
    ) as oauth:
        try:
            token = oauth.fetch_token(
                TOKEN_ENDPOINT,
                grant_type="authorization_code",
                code=PAPER_AUTH_CODE,
                auth=(settings.schwab_api_key, settings.schwab_app_secret),
            )
        except OAuthError as exc:
            raise TokenExpiredError(f"paper login refused by the server ({exc.error})") from exc
    store.write({"creation_timestamp": int(clock.time()), "token": dict(token)})
    log.info("created paper-trading token", extra={"token_path": str(store.path)})
    return True
