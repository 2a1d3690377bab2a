"""``gateway``: dashboard, API and live feed on GATEWAY_HOST:GATEWAY_PORT (default :8080).

``gateway --login-url`` prints the dashboard's login URL (``http://127.0.0.1:<port>/#login=
<token>``) on stdout and exits, creating the token file on first use: ``make run`` shows it
to the operator. The token goes to that terminal only, never to a logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator

import uvicorn

from streamdesk.config import ConfigError, load_settings
from streamdesk.log import setup_logging
from streamdesk.shutdown import GracefulShutdown
from streamdesk.uvicorn_server import IdleServer
from streamdesk.uvicorn_server import serve as serve_server

from .app import create_app
from .auth import load_or_create_token
from .config import Settings

log = logging.getLogger("streamdesk_gateway")


_IdleServer = IdleServer


class _Server(_IdleServer):
    """uvicorn without its own signal handling: SIGTERM goes through GracefulShutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        ws_max_size=1 << 16,
    )


_serve = serve_server


async def serve(settings: Settings) -> int:
    """The gateway on the running loop until SIGTERM/SIGINT: what ``streamdesk-stack`` runs
    beside other services in one interpreter (``main`` runs the same app alone).

    Returns 0 after a requested stop, 1 if the server could not start or stop in time.
    """
    server = _Server(_config(settings))
    shutdown = GracefulShutdown(settings.shutdown_timeout)
    shutdown.install()
    log.info("gateway on http://%s:%d", settings.gateway_host, settings.gateway_port)
    serve_task = asyncio.create_task(_serve(server), name="gateway-uvicorn")
    stop_task = asyncio.create_task(shutdown.wait(), name="gateway-stop")
    await asyncio.wait({serve_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stop_task.cancel()
    try:
        code = await asyncio.wait_for(serve_task, settings.shutdown_timeout + 5)
    except TimeoutError:
        log.warning("gateway did not stop within %.1fs", settings.shutdown_timeout + 5)
        return 1
    finally:
        await asyncio.gather(stop_task, return_exceptions=True)
    if code:  # uvicorn's exit code when it cannot bind
        return code
    return 0 if server.started else 1


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
    # uvicorn.run's own Server (and its signal handling), with the once-a-second main loop
    _IdleServer(_config(settings)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
