"""``strategy``: runs the configured strategies on committed data (paper by default)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from streamdesk.config import ConfigError, load_settings
from streamdesk.db import close_pool, create_pool
from streamdesk.heartbeat import Heartbeat
from streamdesk.log import setup_logging
from streamdesk.redisutil import create_redis
from streamdesk.shutdown import GracefulShutdown, log_task_exception

from .config import Settings
from .service import FatalError, IdentityError, StrategyService

log = logging.getLogger(__name__)

SERVICE = "strategy"


async def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT or a fatal error; return the exit code (3: restart me)."""
    shutdown = GracefulShutdown(settings.shutdown_timeout)
    shutdown.install()
    try:
        pool = await create_pool(settings.database_url, application_name="strategy")
    except OSError as exc:
        log.critical("cannot reach Postgres: %s", exc)
        return 3
    redis = create_redis(settings.redis_url)
    service = StrategyService(settings, pool, redis)
    heartbeat = Heartbeat(
        redis,
        SERVICE,
        interval=settings.heartbeat_interval,
        ttl=settings.heartbeat_ttl,
        counters=service.stats,
        instance=service.instance,
    )
    service.on_status = heartbeat.set_status
    code = 0
    try:
        await service.start()
        heartbeat.start().add_done_callback(log_task_exception)
        log.info(
            "strategy service starting",
            extra={"strategies": len(service.runners), "paper": service.paper},
        )
        task = asyncio.create_task(service.run(), name="strategy")
        stop_wait = asyncio.create_task(shutdown.wait(), name="shutdown-wait")
        await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        service.stop()
        stop_wait.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stop_wait
        try:
            await asyncio.wait_for(task, settings.shutdown_timeout)
        except TimeoutError:
            log.warning("strategy service did not stop within %.1fs", settings.shutdown_timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(service.aclose(), settings.shutdown_timeout)
    except IdentityError as exc:
        log.critical("refusing to start: %s", exc)
        code = 2
    except FatalError as exc:
        log.critical("stopping: %s", exc)
        code = 3
    except Exception as exc:  # Postgres, Redis, the network: the restart resumes cleanly
        log.critical("stopping: %s: %s", type(exc).__name__, exc, exc_info=True)
        code = 3
    finally:
        await heartbeat.stop()
        await close_pool(pool)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(redis.aclose(), 2.0)
    return code


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
