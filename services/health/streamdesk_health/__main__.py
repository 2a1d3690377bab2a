"""``health``: serve /health, /metrics, /livez and /readyz on HEALTH_PORT (8081)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
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
from .config import Settings

log = logging.getLogger(__name__)


def _tune_malloc() -> None:
    """One malloc arena (worker threads would each get their own) and a trimmed heap.

    glibc only; elsewhere nothing happens. Keeps the idle RSS of this small process low.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 1)  # M_ARENA_MAX
        libc.malloc_trim(0)


class _Server(IdleServer):
    """uvicorn without its own signal handling: SIGTERM goes through GracefulShutdown, so a
    requested stop exits 0 instead of re-raising the signal (its once-a-second main loop:
    :class:`streamdesk.uvicorn_server.IdleServer`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


_serve = serve_server


async def serve(settings: Settings) -> int:
    """Run uvicorn until SIGTERM/SIGINT; uvicorn drains, then the lifespan stops the monitor.

    Returns the exit code: 0 after a requested stop, 1 if the server could not start.
    """
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
    server = _Server(config)
    shutdown = GracefulShutdown(settings.shutdown_timeout)
    shutdown.install()
    log.info(
        "health listening on %s:%d (expected services: %s)",
        settings.health_host,
        settings.health_port,
        ",".join(settings.health_expected_services),
    )
    _tune_malloc()
    serve_task = asyncio.create_task(_serve(server), name="uvicorn")
    stop_task = asyncio.create_task(shutdown.wait(), name="stop-signal")
    await asyncio.wait({serve_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stop_task.cancel()
    try:
        code = await asyncio.wait_for(serve_task, settings.shutdown_timeout)
    except TimeoutError:
        log.warning("server did not stop within %.1fs", settings.shutdown_timeout)
        return 1
    finally:
        await asyncio.gather(stop_task, return_exceptions=True)
    if code:  # uvicorn's exit code when it cannot bind
        return code
    return 0 if server.started else 1


def main() -> int:
    """Entry point of the ``health`` console script."""
    try:
        settings = load_settings(Settings)
    except ConfigError as exc:
        print(f"health: {exc}", file=sys.stderr)
        return 2
    setup_logging("health", settings.log_level, settings.log_format)
    return asyncio.run(serve(settings))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
