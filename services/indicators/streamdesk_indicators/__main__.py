"""``indicators``: tick streams -> per-second rows, SMA9/VWAP, exactly once in Postgres."""

from __future__ import annotations

import asyncio
import logging
import sys

from streamdesk.config import ConfigError, load_settings
from streamdesk.log import setup_logging
from streamdesk.shutdown import GracefulShutdown

from .config import Settings
from .runner import IndicatorsService

log = logging.getLogger(__name__)


async def run(settings: Settings) -> int:
    """Run the service until SIGTERM/SIGINT, then drain within ``SHUTDOWN_TIMEOUT``."""
    shutdown = GracefulShutdown(settings.shutdown_timeout)
    shutdown.install()
    service = IndicatorsService(settings, shutdown)
    task = asyncio.create_task(service.run(), name="indicators")
    stop = asyncio.create_task(shutdown.event.wait(), name="indicators-stop")
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            # stop requested: the service stops reading, flushes and acks; bounded
            done, _ = await asyncio.wait({task}, timeout=settings.shutdown_timeout)
            if not done:
                log.warning(
                    "drain exceeded %.1fs; leaving the rest pending in Redis",
                    settings.shutdown_timeout,
                )
                task.cancel()
                await asyncio.wait({task}, timeout=5.0)
                return 1
        return task.result()
    finally:
        stop.cancel()
        await asyncio.wait({stop}, timeout=1.0)


def main() -> int:
    """Entry point of the ``indicators`` console script."""
    try:
        settings = load_settings(Settings)
    except ConfigError as exc:
        print(f"indicators: {exc}", file=sys.stderr)
        return 2
    setup_logging("indicators", settings.log_level, settings.log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # else a line per Realtime broadcast
    return asyncio.run(run(settings))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
