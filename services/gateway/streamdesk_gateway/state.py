"""What the gateway holds while running, and the helpers its routes share."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import HTTPException, Request

from streamdesk.clock import Clock

from .auth import Auth
from .config import Settings
from .identity import SupabaseAuth
from .live import Fanout


def jsonable(value: Any) -> Any:
    """A database value as JSON: Decimal as float, datetime as ISO-8601."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def row(record: asyncpg.Record) -> dict[str, Any]:
    """A database row as a JSON object."""
    return {k: jsonable(v) for k, v in dict(record).items()}


class State:
    """What the app holds while running."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.pool: asyncpg.Pool | None = None
        self.redis: aioredis.Redis | None = None
        self.fanout: Fanout | None = None
        self.auth: Auth | None = None
        #: Supabase sign-in, when SUPABASE_URL is set (identity.py).
        self.supabase: SupabaseAuth | None = None
        self.counters: dict[str, int] = {
            "trades_submitted": 0,
            "trades_refused": 0,
            "ws_clients": 0,
        }

    @property
    def db(self) -> asyncpg.Pool:
        if self.pool is None:
            raise HTTPException(503, "database not connected")
        return self.pool

    @property
    def r(self) -> aioredis.Redis:
        if self.redis is None:
            raise HTTPException(503, "redis not connected")
        return self.redis


def get_state(request: Request) -> State:
    """FastAPI dependency: the running app's ``State``."""
    state: State = request.app.state.sd
    return state
