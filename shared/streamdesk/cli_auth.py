"""``streamdesk auth``: log in to Schwab (headless-friendly) and show the token's age.

``streamdesk auth`` runs schwab-py's *manual* login flow: it prints the authorization URL,
you open it in any browser (the VM needs none), log in, and paste the address your browser
was redirected to. The token is written through :class:`streamdesk.schwab.TokenStore`
(atomic replace, mode 0600, under a file lock) to ``SCHWAB_TOKEN_PATH``; every service loads
the file again when it (re)connects, and a streamer stopped by an expired token resumes by
itself once the new file appears.

In paper mode (``TRADING_MODE=paper``, market-sim) it fetches a fresh token from the simulator
instead; no browser involved.

The same flow runs from the dashboard's operations panel (``POST /api/ops/auth/start`` and
``/complete``): :func:`start_login` gives the authorization URL and its OAuth ``state``,
:func:`complete_login` exchanges the pasted redirect URL for a token. Both talk to
``SCHWAB_BASE_URL`` (market-sim in paper mode, whose authorize page redirects at once).

``streamdesk auth --status`` prints the token's age; exit code 0 while it is usable, 1 when it
is missing or expired (Schwab refresh tokens live 7 days; a warning is printed from day 5).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .clock import SYSTEM_CLOCK, Clock
from .config import CommonSettings, TradingMode, load_settings

#: Warn from this age (days): Schwab refresh tokens expire after 7 days.
WARN_DAYS = 5.0


def token_status(settings: CommonSettings, now: float | None = None) -> tuple[int, str]:
    """Exit code and a human-readable line about the token at ``SCHWAB_TOKEN_PATH``."""
    from .schwab import REFRESH_TOKEN_MAX_AGE, TokenStore

    store = TokenStore(settings.schwab_token_path)
    data = store.read()
    if data is None:
        return 1, f"no Schwab token at {store.path}: run `streamdesk auth`"
    now = time.time() if now is None else now
    age = now - float(data["creation_timestamp"])
    days, left = age / 86400, (REFRESH_TOKEN_MAX_AGE - age) / 86400
    if left <= 0:
        return 1, (
            f"token at {store.path} is {days:.1f} days old: EXPIRED (refresh tokens last 7 days)"
            "; run `streamdesk auth`"
        )
    line = f"token at {store.path} is {days:.1f} days old; it expires in {left:.1f} days"
    if days >= WARN_DAYS:
        line += ": WARNING, log in again soon with `streamdesk auth`"
    return 0, line


class LoginError(ValueError):
    """The pasted redirect URL or the token exchange was refused; the message says why."""


@dataclass(frozen=True, slots=True)
class LoginStart:
    """A started manual login: open ``authorize_url``; the redirect carries ``state``."""

    authorize_url: str
    state: str


def start_login(settings: CommonSettings) -> LoginStart:
    """Begin the manual OAuth flow (schwab-py's ``get_auth_context``; no network call).

    The URL is Schwab's login page, on ``SCHWAB_BASE_URL``'s origin when that is not Schwab
    (market-sim's authorize page redirects to the callback at once).
    """
    from .schwab import SCHWAB_ORIGIN, schwab

    ctx = schwab.auth.get_auth_context(settings.schwab_api_key, settings.schwab_callback_url)
    url = str(ctx.authorization_url)
    base = settings.schwab_base_url.rstrip("/")
    if base != SCHWAB_ORIGIN and url.startswith(SCHWAB_ORIGIN + "/"):
        url = base + url[len(SCHWAB_ORIGIN) :]
    return LoginStart(url, str(ctx.state))


def redirect_state(settings: CommonSettings, received_url: str) -> str:
    """The ``state`` of a pasted redirect URL after checking its shape (:class:`LoginError`)."""
    callback = urlsplit(settings.schwab_callback_url)
    try:
        got = urlsplit(received_url.strip())
        same_origin = (got.scheme, got.hostname, got.port) == (
            callback.scheme,
            callback.hostname,
            callback.port,
        )
    except ValueError:
        raise LoginError("the redirect URL is not a URL") from None
    if not same_origin or got.path.rstrip("/") != callback.path.rstrip("/"):
        raise LoginError(
            "the redirect URL must be the callback URL your browser was sent to "
            f"({settings.schwab_callback_url}?code=...&state=...)"
        )
    query = parse_qs(got.query)
    if query.get("error"):
        raise LoginError(f"Schwab refused the login: {query['error'][0][:100]}")
    if not query.get("code"):
        raise LoginError("the redirect URL has no authorization code (code=...)")
    states = query.get("state")
    if not states:
        raise LoginError("the redirect URL has no state (state=...)")
    return states[0]


def complete_login(
    settings: CommonSettings,
    state: str,
    received_url: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    timeout: float = 10.0,
) -> None:
    """Exchange the pasted redirect URL of the login started with ``state`` for a token.

    Checks the URL (:func:`redirect_state`), posts the code to the token endpoint of
    ``SCHWAB_BASE_URL`` and writes the token through :class:`~streamdesk.schwab.TokenStore`
    (atomic, 0600). Raises :class:`LoginError` on a bad URL or a refused exchange; the token
    is never logged nor returned.
    """
    from .schwab import TOKEN_ENDPOINT, OAuth2Client, OAuthError, RewriteTransport, TokenStore

    if redirect_state(settings, received_url) != state:
        raise LoginError("the redirect URL belongs to another login (state mismatch)")
    with OAuth2Client(
        settings.schwab_api_key,
        client_secret=settings.schwab_app_secret,
        redirect_uri=settings.schwab_callback_url,
        transport=RewriteTransport(settings.schwab_base_url),
        timeout=timeout,
    ) as oauth:
        try:
            token = oauth.fetch_token(
                TOKEN_ENDPOINT,
                authorization_response=received_url.strip(),
                auth=(settings.schwab_api_key, settings.schwab_app_secret),
                state=state,
            )
        except OAuthError as exc:
            raise LoginError(f"the token exchange was refused ({exc.error})") from None
    TokenStore(settings.schwab_token_path, clock=clock).write(
        {"creation_timestamp": int(clock.time()), "token": dict(token)}
    )


def _login(settings: CommonSettings) -> int:
    from .schwab import ensure_paper_token

    if settings.trading_mode is TradingMode.PAPER:
        ensure_paper_token(settings, force=True)
        print(f"paper mode: new token from {settings.schwab_base_url} written")
    else:
        started = start_login(settings)
        print("1. Open this address in any browser and log in to Schwab:\n")
        print("   " + started.authorize_url + "\n")
        print("2. Your browser is sent to the callback URL (the page may not load).")
        print("   Copy the WHOLE address from the address bar and paste it here.\n")
        received = input("Redirect URL> ").strip()
        try:
            complete_login(settings, started.state, received)
        except LoginError as exc:
            print(f"login failed: {exc}", file=sys.stderr)
            return 1
        print("logged in to Schwab; token written")
    code, line = token_status(settings)
    print(line)
    return code


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(CommonSettings)
    if args.status:
        code, line = token_status(settings)
        print(line, file=sys.stdout if code == 0 else sys.stderr)
        return code
    return _login(settings)


def register(subparsers: Any) -> None:
    """Add the ``auth`` subcommand to the ``streamdesk`` CLI."""
    p = subparsers.add_parser(
        "auth",
        help="log in to Schwab (manual flow, works headless) or show the token's age",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--status", action="store_true", help="only show the token's age")
    p.set_defaults(func=_run)
