"""Who a request is made as: the gateway's own token (a service identity) or a Supabase
operator, and the checks between a verified JWT and an operator.

The guard (``guard.py``) puts an :class:`Identity` into the ASGI scope of every request it
lets through; routes read it with :func:`get_identity`. A trade submitted as an operator
carries ``user_id = sub`` (the executor re-checks that the submitter is an operator when it
claims the row); one submitted with the gateway token keeps ``user_id`` NULL.

Being an operator is a row in ``public.operators`` (migrations/0080_operators.sql), read as
the table owner and cached for ``SUPABASE_OPERATOR_CACHE_TTL`` seconds (bounded), so removing
someone takes effect within seconds, even for a session cookie or a token not yet expired.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg
from starlette.requests import HTTPConnection

from .config import Settings

if TYPE_CHECKING:
    from .supabase_jwt import Claims

log = logging.getLogger(__name__)

#: Longer bearer strings are refused before any parsing.
MAX_TOKEN_LENGTH = 8192


def looks_like_jwt(value: str) -> bool:
    """Three non-empty dot-separated parts (a compact JWS), of a sane length."""
    parts = value.split(".")
    return len(value) <= MAX_TOKEN_LENGTH and len(parts) == 3 and all(parts)


#: The ASGI scope key the guard stores the caller's :class:`Identity` under.
SCOPE_KEY = "streamdesk.identity"
OPERATOR_SQL = "SELECT EXISTS (SELECT 1 FROM operators WHERE user_id = $1)"
#: Bound of the operator lookup (seconds) and of the cache (entries).
OPERATOR_QUERY_TIMEOUT = 5.0
OPERATOR_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Identity:
    """The caller: ``user_id`` None is the gateway's own token (or a session it opened)."""

    user_id: UUID | None = None

    @property
    def is_service(self) -> bool:
        """Whether this is the gateway's service identity."""
        return self.user_id is None


SERVICE = Identity()


def get_identity(connection: HTTPConnection) -> Identity:
    """FastAPI dependency: the identity the guard authenticated (service if none: a route
    outside the guard's paths)."""
    identity = connection.scope.get(SCOPE_KEY)
    return identity if isinstance(identity, Identity) else SERVICE


class Refusal(Exception):
    """Why a credential is not let through: the HTTP status, the detail and headers."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


class OperatorCache:
    """``sub`` -> is an operator, each answer kept ``ttl`` seconds (at most ``size``)."""

    def __init__(
        self, ttl: float, *, size: int = OPERATOR_CACHE_SIZE, monotonic: Callable[[], float]
    ) -> None:
        self.ttl = ttl
        self.size = size
        self._now = monotonic
        self._seen: OrderedDict[UUID, tuple[bool, float]] = OrderedDict()

    async def is_operator(self, pool: asyncpg.Pool | None, user_id: UUID) -> bool:
        """Whether ``user_id`` is in ``operators``; :class:`Refusal` 503 if it cannot be read."""
        now = self._now()
        cached = self._seen.get(user_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        if pool is None:
            raise Refusal(503, "the operator list cannot be read now", {"Retry-After": "5"})
        try:
            found = bool(await pool.fetchval(OPERATOR_SQL, user_id, timeout=OPERATOR_QUERY_TIMEOUT))
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            log.warning("operator lookup failed: %s", type(exc).__name__)
            raise Refusal(
                503, "the operator list cannot be read now", {"Retry-After": "5"}
            ) from exc
        self._seen.pop(user_id, None)
        self._seen[user_id] = (found, now + self.ttl)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return found


class SupabaseAuth:
    """Supabase sign-in at the gateway: a verified access token of an operator -> Identity."""

    def __init__(
        self,
        settings: Settings,
        counters: MutableMapping[str, int],
        *,
        monotonic: Callable[[], float] = monotonic,
    ) -> None:
        assert settings.supabase_url is not None
        # PyJWT and cryptography (~9 MB of RSS) are loaded only when Supabase sign-in is on.
        from . import supabase_jwt

        self._jwt = supabase_jwt
        self.counters = counters
        self.jwks = supabase_jwt.JwksCache(
            settings.jwks_url(),
            ttl=settings.supabase_jwks_ttl,
            min_interval=settings.supabase_jwks_min_interval,
            counters=counters,
            monotonic=monotonic,
        )
        secret = settings.supabase_jwt_secret
        self.verifier = supabase_jwt.SupabaseVerifier(
            issuer=settings.jwt_issuer(),
            audience=settings.supabase_jwt_audience,
            leeway=settings.supabase_jwt_leeway,
            jwks=self.jwks,
            secret=secret.get_secret_value() if secret is not None else None,
        )
        self.operators = OperatorCache(settings.supabase_operator_cache_ttl, monotonic=monotonic)
        for name in ("jwt_accepted", "jwt_not_operator", "jwt_keys_unavailable"):
            counters.setdefault(name, 0)

    async def aclose(self) -> None:
        """Release the JWKS client."""
        await self.jwks.aclose()

    async def claims(self, token: str, client: str) -> Claims:
        """The verified claims of ``token``; :class:`Refusal` (401 or 503) otherwise. Each
        refusal is counted by reason and logged without the token."""
        try:
            return await self.verifier.verify(token)
        except self._jwt.JwtRefused as exc:
            key = f"jwt_refused_{exc.reason}"
            self.counters[key] = self.counters.get(key, 0) + 1
            log.info("refused a Supabase token from %s: %s", client, exc.reason)
            header = f'Bearer error="invalid_token", error_description="{exc.reason}"'
            raise Refusal(
                401, f"invalid Supabase token ({exc.reason})", {"WWW-Authenticate": header}
            ) from exc
        except self._jwt.KeysUnavailable as exc:
            self.counters["jwt_keys_unavailable"] += 1
            log.warning("a Supabase token from %s cannot be checked: %s", client, exc)
            raise Refusal(503, str(exc), {"Retry-After": "30"}) from exc

    async def operator(self, user_id: UUID, pool: asyncpg.Pool | None) -> Identity:
        """The operator identity of ``user_id``; :class:`Refusal` 403 when they are not one."""
        if not await self.operators.is_operator(pool, user_id):
            self.counters["jwt_not_operator"] += 1
            log.info("refused Supabase user %s: not an operator", user_id)
            raise Refusal(
                403,
                "this Supabase user is not an operator of this StreamDesk "
                "(streamdesk operators add <user id>)",
            )
        self.counters["jwt_accepted"] += 1
        return Identity(user_id)

    async def identify(self, token: str, client: str, pool: asyncpg.Pool | None) -> Identity:
        """``token`` verified and its subject an operator, or :class:`Refusal`."""
        claims = await self.claims(token, client)
        return await self.operator(claims.sub, pool)
