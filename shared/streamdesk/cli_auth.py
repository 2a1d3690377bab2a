"""``streamdesk auth``: log in to Schwab (headless-friendly) and show the token's age.

``streamdesk auth`` runs schwab-py's *manual* login flow: it prints the authorization URL,
you open it in any browser (the VM needs none), log in, and paste the address your browser
was redirected to. The token is written through :class:`streamdesk.schwab.TokenStore`
(atomic replace, mode 0600, under a file lock) to ``SCHWAB_TOKEN_PATH``; every service loads
the file again when it (re)connects, and a streamer stopped by an expired token resumes by
itself once the new file appears.

In paper mode (``TRADING_MODE=paper``, market-sim) it fetches a fresh token from the simulator
instead; no browser involved.

``streamdesk auth --status`` prints the token's age; exit code 0 while it is usable, 1 when it
is missing or expired (Schwab refresh tokens live 7 days; a warning is printed from day 5).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

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


def _login(settings: CommonSettings) -> int:
    from .schwab import TokenStore, ensure_paper_token, schwab

    if settings.trading_mode is TradingMode.PAPER:
        ensure_paper_token(settings, force=True)
        print(f"paper mode: new token from {settings.schwab_base_url} written")
    else:
        store = TokenStore(settings.schwab_token_path)
        client: Any = schwab.auth.client_from_manual_flow(
            settings.schwab_api_key,
            settings.schwab_app_secret,
            settings.schwab_callback_url,
            str(store.path),
            token_write_func=store.write,
        )
        session = getattr(client, "session", None)
        if session is not None:
            session.close()
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
