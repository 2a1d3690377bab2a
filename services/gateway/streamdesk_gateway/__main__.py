"""``gateway``: dashboard, API and live feed on GATEWAY_HOST:GATEWAY_PORT (default :8080)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from streamdesk.config import ConfigError, load_settings
from streamdesk.log import setup_logging

from .app import create_app
from .config import Settings

log = logging.getLogger("streamdesk_gateway")


def main() -> int:
    """Run the gateway until SIGTERM/SIGINT (uvicorn drains connections, bounded)."""
    try:
        settings = load_settings(Settings)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
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
