"""Quotes for the risk checks: the streamer's Redis hash, else the broker (see QuoteSource)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import redis.asyncio as aioredis

from streamdesk.clock import SYSTEM_CLOCK, Clock
from streamdesk.constants import last_quote_key
from streamdesk.risk import Quote, quote_from_mapping

from .broker import Broker, BrokerError
from .config import QuoteSource

log = logging.getLogger(__name__)


class QuoteProvider:
    """Best available quote of a symbol; counts where each came from (``quotes_*``)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        broker: Broker,
        source: QuoteSource,
        max_age: float,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.redis = redis
        self.broker = broker
        self.source = source
        self.max_age = max_age
        self.clock = clock
        self.counters: Counter[str] = Counter()

    async def get(self, symbol: str) -> Quote | None:
        """Best available quote of ``symbol`` (None when there is none)."""
        quote: Quote | None = None
        if self.source is not QuoteSource.BROKER:
            try:
                raw = await asyncio.wait_for(self.redis.hgetall(last_quote_key(symbol)), 2.0)
            except Exception as exc:
                log.warning("quote read from Redis failed: %s", exc)
                raw = {}
            quote = quote_from_mapping(symbol, raw) if raw else None
            if quote is not None:
                self.counters["quotes_redis"] += 1
            fresh = quote is not None and quote.age_seconds(self.clock.now()) <= self.max_age
            if fresh or self.source is QuoteSource.REDIS:
                return quote
        try:
            broker_quote = await self.broker.quote(symbol)
        except NotImplementedError:
            return quote  # a venue without quotes (Broker.quote is optional)
        except BrokerError as exc:
            log.warning("broker quote for %s failed: %s", symbol, exc)
            return quote
        if broker_quote is not None:
            self.counters["quotes_broker"] += 1
            return broker_quote
        return quote
