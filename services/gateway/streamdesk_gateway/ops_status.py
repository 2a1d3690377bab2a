"""The status bar's facts: market session, service heartbeats, health summary, token age."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from streamdesk.clock import Clock
from streamdesk.config import MarketHoursMode
from streamdesk.constants import HEALTH_SUMMARY_KEY
from streamdesk.heartbeat import read_heartbeats
from streamdesk.market_calendar import NEW_YORK, session_bounds
from streamdesk.tokens import REFRESH_TOKEN_MAX_AGE, TokenStore

from .ops_models import HealthOut, MarketOut, ServiceOut, TokenOut

log = logging.getLogger(__name__)

#: Services that beat; listed (not alive) even when their heartbeat is missing.
EXPECTED_SERVICES = ("streamer", "indicators", "trade-executor", "gateway")


def market_status(now: datetime, mode: MarketHoursMode = MarketHoursMode.REGULAR) -> MarketOut:
    """Session at ``now`` (pre 07:00-09:30, regular, post -16:00/20:00 New York; holidays and
    half days from the exchange calendar) and when it next changes. ``open`` follows the
    ``MARKET_HOURS`` the services use: the regular session, the extended one, or ``always``
    (the simulator's 24/7 market), so the dashboard's stale-data warning agrees with them."""
    local = now.astimezone(NEW_YORK)
    session = "closed"
    next_change: datetime | None = None
    for offset in range(15):
        day = local.date() + timedelta(days=offset)
        reg = session_bounds(day, MarketHoursMode.REGULAR)
        ext = session_bounds(day, MarketHoursMode.EXTENDED)
        if reg is None or ext is None:
            continue
        marks = [(ext[0], "pre"), (reg[0], "regular"), (reg[1], "post"), (ext[1], "closed")]
        if offset == 0:
            for at, name in marks:
                if at <= local:
                    session = name
        later = [at for at, _ in marks if at > local]
        if later:
            next_change = later[0]
            break
    if mode is MarketHoursMode.ALWAYS:
        is_open = True
    elif mode is MarketHoursMode.EXTENDED:
        is_open = session in ("pre", "regular", "post")
    else:
        is_open = session == "regular"
    return MarketOut(
        open=is_open,
        session=session,  # type: ignore[arg-type]
        next_change_at=next_change.astimezone(UTC).isoformat() if next_change else None,
    )


async def read_health(redis: aioredis.Redis) -> HealthOut | None:
    """The health service's latest round (``sd:health:summary``), or None when it has not
    published one within a few rounds."""
    raw = await redis.get(HEALTH_SUMMARY_KEY)
    if not raw:
        return None
    try:
        value = json.loads(raw)
        components = {str(k): str(v) for k, v in value["components"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("unparsable health state in Redis")
        return None
    overall = components.pop("overall", None)
    if overall is None:
        return None
    at = value.get("at")
    return HealthOut(
        status=overall,
        components=components,
        at=float(at) if isinstance(at, (int, float)) else None,
    )


async def services_status(
    redis: aioredis.Redis, now: float, paused: dict[str, bool]
) -> list[ServiceOut]:
    """One entry per live heartbeat, plus the expected services that have none (not alive)."""
    out: list[ServiceOut] = []
    seen: set[str] = set()
    for hb in await read_heartbeats(redis):
        name = str(hb.get("service", "?"))
        seen.add(name)
        ts = hb.get("ts")
        counters = hb.get("counters")
        out.append(
            ServiceOut(
                name=name,
                instance=str(hb.get("instance")) if hb.get("instance") else None,
                alive=True,
                age_s=round(now - float(ts), 3) if isinstance(ts, (int, float)) else None,
                status=str(hb.get("status")) if hb.get("status") else None,
                reason=str(hb.get("reason")) if hb.get("reason") else None,
                paused=paused.get(name),
                counters=counters if isinstance(counters, dict) else {},
            )
        )
    for name in EXPECTED_SERVICES:
        if name not in seen:
            out.append(
                ServiceOut(
                    name=name,
                    instance=None,
                    alive=False,
                    age_s=None,
                    status=None,
                    reason="no heartbeat",
                    paused=paused.get(name),
                    counters={},
                )
            )
    out.sort(key=lambda s: (s.name, s.instance or ""))
    return out


def token_status(store: TokenStore, clock: Clock) -> TokenOut:
    """Age and remaining lifetimes of the token file; its contents stay on disk."""
    data = store.read()
    if data is None:
        return TokenOut(
            exists=False,
            created_at=None,
            age_s=None,
            refresh_expires_in_s=None,
            access_expires_in_s=None,
        )
    now = clock.time()
    created = float(data["creation_timestamp"])
    token: Any = data.get("token")
    expires_at = token.get("expires_at") if isinstance(token, dict) else None
    access_left = (
        round(float(expires_at) - now, 1)
        if isinstance(expires_at, (int, float)) and not isinstance(expires_at, bool)
        else None
    )
    return TokenOut(
        exists=True,
        created_at=datetime.fromtimestamp(created, UTC).isoformat(),
        age_s=round(now - created, 1),
        refresh_expires_in_s=round(created + REFRESH_TOKEN_MAX_AGE - now, 1),
        access_expires_in_s=access_left,
    )
