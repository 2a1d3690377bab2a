"""``health``: serve /health, /metrics, /livez and /readyz on HEALTH_PORT (8081)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import sys

import uvicorn

from streamdesk.config import ConfigError, load_settings
from streamdesk.log import setup_logging

from .app import create_app
from .config import Settings

log = logging.getLogger(__name__)


def _trim_heap() -> None:
    """Give freed import-time heap back to the OS (glibc only); keeps idle RSS low."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


async def serve(settings: Settings) -> None:
    """Run uvicorn until SIGTERM/SIGINT; uvicorn drains, then the lifespan stops the monitor."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.health_host,
        port=settings.health_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(settings.shutdown_timeout / 2)),
        loop="asyncio",
        http="h11",
        ws="none",
    )
    server = uvicorn.Server(config)
    log.info(
        "health listening on %s:%d (expected services: %s)",
        settings.health_host,
        settings.health_port,
        ",".join(settings.health_expected_services),
    )
    _trim_heap()
    await server.serve()


def main() -> int:
    """Entry point of the ``health`` console script."""
    try:
        settings = load_settings(Settings)
    except ConfigError as exc:
        print(f"health: {exc}", file=sys.stderr)
        return 2
    setup_logging("health", settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
