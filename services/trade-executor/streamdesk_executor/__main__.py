"""``trade-executor``: trades table -> Schwab orders, exactly once, with risk checks."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from urllib.parse import urlparse

from streamdesk.config import ConfigError, TradingMode, load_settings
from streamdesk.db import close_pool, create_pool
from streamdesk.heartbeat import Heartbeat
from streamdesk.log import setup_logging
from streamdesk.redisutil import create_redis
from streamdesk.schwab import TokenExpiredError, ensure_paper_token, make_client
from streamdesk.shutdown import GracefulShutdown, log_task_exception

from .broker import BrokerError, SchwabBroker, resolve_account_hash
from .config import Settings
from .executor import Executor

log = logging.getLogger(__name__)

SERVICE = "trade-executor"


def is_live_broker(base_url: str) -> bool:
    """True when ``base_url`` is Schwab's real API (not market-sim)."""
    host = urlparse(base_url).hostname or ""
    return host == "api.schwabapi.com" or host.endswith(".schwabapi.com")


async def run(settings: Settings) -> int:
    """Run the executor until SIGTERM/SIGINT (or a fatal error); return the exit code."""
    shutdown = GracefulShutdown(settings.shutdown_timeout)
    shutdown.install()
    instance = settings.executor_instance or f"{socket.gethostname()}-{os.getpid()}"
    live = is_live_broker(settings.schwab_base_url)
    if live and settings.trading_mode is not TradingMode.LIVE:
        log.error(
            "SCHWAB_BASE_URL is Schwab's live API but TRADING_MODE=paper: every trade will be "
            "rejected; set TRADING_MODE=live to trade real money"
        )
    if settings.trading_mode is TradingMode.PAPER and not live:
        await asyncio.wait_for(asyncio.to_thread(ensure_paper_token, settings), 30.0)
    client = make_client(settings, asyncio=True, timeout=settings.executor_broker_timeout)
    pool = await create_pool(
        settings.database_url,
        min_size=2,
        max_size=settings.executor_workers + 3,
        application_name=f"{SERVICE}:{instance}",
    )
    redis = create_redis(settings.redis_url)
    heartbeat: Heartbeat | None = None
    code = 0
    try:
        account = await resolve_account_hash(
            client, settings.schwab_account_hash, settings.executor_broker_timeout
        )
        broker = SchwabBroker(client, account, timeout=settings.executor_broker_timeout)
        executor = Executor(settings, pool, redis, broker, instance=instance, live_broker=live)
        heartbeat = Heartbeat(
            redis,
            SERVICE,
            interval=settings.heartbeat_interval,
            ttl=settings.heartbeat_ttl,
            counters=executor.stats,
            instance=instance,
        )
        heartbeat.start().add_done_callback(log_task_exception)
        log.info(
            "trade-executor starting",
            extra={
                "instance": instance,
                "mode": settings.trading_mode.value,
                "enabled": settings.trading_enabled,
            },
        )
        task = asyncio.create_task(executor.run(), name="executor")
        stop_wait = asyncio.create_task(shutdown.wait(), name="shutdown-wait")
        await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        executor.stop()
        stop_wait.cancel()
        try:
            await asyncio.wait_for(task, settings.shutdown_timeout)
        except TimeoutError:
            log.warning("executor did not stop within %.1fs; cancelling", settings.shutdown_timeout)
        if executor.fatal:
            heartbeat.set_status("degraded", executor.fatal)
            code = 3
    except (BrokerError, TokenExpiredError) as exc:
        log.critical("cannot run: %s", exc)
        code = 3
    finally:
        if heartbeat is not None:
            await heartbeat.stop()
        await close_pool(pool)
        try:
            await asyncio.wait_for(redis.aclose(), 2.0)
        except Exception:
            log.debug("redis close failed")
        try:
            await asyncio.wait_for(client.close_async_session(), 2.0)
        except Exception:
            log.debug("broker session close failed")
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
