"""The executor's connections: settings -> schwab-py client, pool, Redis, account hash, and the
:class:`Executor` built over them (not yet running)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlparse

from streamdesk.config import TradingMode
from streamdesk.db import close_pool, create_pool
from streamdesk.redisutil import create_redis
from streamdesk.schwab import ensure_paper_token, make_client

from .config import Settings
from .executor import Executor
from .schwab_broker import SchwabBroker, resolve_account_hash

log = logging.getLogger(__name__)


def is_live_broker(base_url: str) -> bool:
    """True when ``base_url`` is Schwab's real API (not market-sim)."""
    host = urlparse(base_url).hostname or ""
    return host == "api.schwabapi.com" or host.endswith(".schwabapi.com")


@contextlib.asynccontextmanager
async def open_executor(settings: Settings) -> AsyncIterator[Executor]:
    """An :class:`Executor` with its connections, closed (bounded) on exit. Not yet running."""
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
    try:
        pool = await create_pool(
            settings.database_url,
            min_size=1,
            max_size=settings.executor_workers + 3,
            application_name=f"trade-executor:{instance}"[:63],
        )
        redis = create_redis(settings.redis_url)
        try:
            account = await resolve_account_hash(
                client, settings.schwab_account_hash, settings.executor_broker_timeout
            )
            broker = SchwabBroker(client, account, timeout=settings.executor_broker_timeout)
            yield Executor(settings, pool, redis, broker, instance=instance, live_broker=live)
        finally:
            await close_pool(pool)
            try:
                await asyncio.wait_for(redis.aclose(), 2.0)
            except Exception:
                log.debug("redis close failed")
    finally:
        try:
            await asyncio.wait_for(client.close_async_session(), 2.0)
        except Exception:
            log.debug("broker session close failed")
