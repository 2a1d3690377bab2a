"""``gateway``: dashboard, API and live feed on GATEWAY_HOST:GATEWAY_PORT (default :8080).

``gateway --login-url`` prints the dashboard's login URL (``http://127.0.0.1:<port>/#login=
<token>``) on stdout and exits, creating the token file on first use: ``make run`` shows it
to the operator. The token goes to that terminal only, never to a logger.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from streamdesk.config import ConfigError, load_settings
from streamdesk.log import setup_logging

from .app import create_app
from .auth import load_or_create_token
from .config import Settings

log = logging.getLogger("streamdesk_gateway")


def main() -> int:
    """Run the gateway until SIGTERM/SIGINT (uvicorn drains connections, bounded)."""
    try:
        settings = load_settings(Settings)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    if sys.argv[1:] == ["--login-url"]:
        token = load_or_create_token(settings)
        print(f"http://127.0.0.1:{settings.gateway_port}/#login={token}")
        return 0
    if sys.argv[1:]:
        print("usage: gateway [--login-url]", file=sys.stderr)
        return 2
    setup_logging("gateway", settings.log_level, settings.log_format)
    log.info(
        "gateway on http://%s:%d (%s trading)",
        settings.gateway_host,
        settings.gateway_port,
        settings.trading_mode.value,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        ws_max_size=1 << 16,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
