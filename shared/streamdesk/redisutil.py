"""Redis client construction (redis-py asyncio)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis


def create_redis(url: str, *, decode_responses: bool = False, **kwargs: Any) -> aioredis.Redis:
    """An asyncio Redis client with timeouts, health checks and bounded connections.

    Bytes responses by default: tick payloads are binary msgpack.
    """
    return aioredis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_timeout=kwargs.pop("socket_timeout", 10.0),
        socket_connect_timeout=kwargs.pop("socket_connect_timeout", 5.0),
        health_check_interval=kwargs.pop("health_check_interval", 30),
        max_connections=kwargs.pop("max_connections", 16),
        **kwargs,
    )
