"""``trade-executor``: trades table -> Schwab orders, exactly once, with risk checks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from streamdesk.config import ConfigError, load_settings
from streamdesk.errors import HTTP_ERRORS, NETWORK_ERRORS, OperationalError, TemporaryError
from streamdesk.heartbeat import Heartbeat
from streamdesk.log import setup_logging
from streamdesk.shutdown import GracefulShutdown, log_task_exception

from .config import Settings
from .connections import open_executor

log = logging.getLogger(__name__)

SERVICE = "trade-executor"
#: Start-up failures that mean "try again later" or "a person must act" (exit code 3), not a
#: bug: the broker unreachable (``BrokerError`` is a ``TemporaryError``), the token refused
#: (``TokenExpiredError`` is an ``OperationalError``), the network, an HTTP transport error.
STARTUP_ERRORS: tuple[type[BaseException], ...] = (
    TemporaryError,
    OperationalError,
    *NETWORK_ERRORS,
    *HTTP_ERRORS,
)


async def run(settings: Settings) -> int:
    """Run the executor until SIGTERM/SIGINT (or a fatal error); return the exit code."""
    shutdown = GracefulShutdown(settings.shutdown_timeout)
    shutdown.install()
    try:
        async with open_executor(settings) as executor:
            heartbeat = Heartbeat(
                executor.redis,
                SERVICE,
                interval=settings.heartbeat_interval,
                ttl=settings.heartbeat_ttl,
                counters=executor.stats,
                instance=executor.instance,
            )
            heartbeat.start().add_done_callback(log_task_exception)
            log.info(
                "trade-executor starting",
                extra={
                    "instance": executor.instance,
                    "mode": settings.trading_mode.value,
                    "enabled": settings.trading_enabled,
                },
            )
            try:
                task = asyncio.create_task(executor.run(), name="executor")
                stop_wait = asyncio.create_task(shutdown.wait(), name="shutdown-wait")
                await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                executor.stop()
                stop_wait.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stop_wait
                try:
                    await asyncio.wait_for(task, settings.shutdown_timeout)
                except TimeoutError:
                    log.warning(
                        "executor did not stop within %.1fs; cancelled", settings.shutdown_timeout
                    )
            finally:
                await heartbeat.stop()
            if executor.fatal:
                return 3
    except STARTUP_ERRORS as exc:
        # Start-up could not reach the broker, Postgres or Redis: exit non-zero and let the
        # supervisor (compose restart policy, supervisord under make run) try again.
        log.critical("cannot run: %s: %s", type(exc).__name__, exc)
        return 3
    return 0


def main() -> int:
    """Console entry point."""
    try:
        settings = load_settings(Settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(SERVICE, settings.log_level, settings.log_format)
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
