"""Supabase access tokens: signature and claims verified with PyJWT, signing keys from the
project's JWKS.

A Supabase project signs its users' access tokens either with an asymmetric key (ES256 or
RS256; the public keys are published at ``<SUPABASE_URL>/auth/v1/.well-known/jwks.json``) or,
for legacy projects, with the HS256 ``SUPABASE_JWT_SECRET``. Against algorithm confusion the
token's ``alg`` only picks among algorithms configured here, and the key is always one that
algorithm owns: an ES256/RS256 token is checked against a JWKS key of that very type (an
``oct`` key in a JWKS is never used), an HS256 token only against the configured secret,
and HS256 is refused outright when no secret is configured. ``none`` is never allowed.

The JWKS is fetched with httpx (async: never a blocking request inside the event loop),
kept ``SUPABASE_JWKS_TTL`` seconds, and fetched again early when a token names a ``kid`` it
does not hold (a key rotation); fetches are at least ``SUPABASE_JWKS_MIN_INTERVAL`` apart, so
a flood of made-up ``kid`` values costs at most one request per interval. A failed fetch keeps
the last good set (counted in ``jwks_fetch_failures`` and logged); with no set at all the
answer is :class:`KeysUnavailable` (503), never a crash.

``exp``, ``iat`` and ``nbf`` are PyJWT's checks against the real time: the token's issuer
stamps real time too, whatever clock the rest of the gateway runs on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from time import monotonic
from typing import Any
from uuid import UUID

import httpx
import jwt

from .identity import looks_like_jwt

log = logging.getLogger(__name__)

#: The asymmetric algorithms Supabase signs with, and the JWK key type each one needs.
ASYMMETRIC = {"ES256": ("EC", "P-256"), "RS256": ("RSA", None)}
#: Longest access token considered (Supabase's are about 1 KB).
#: Bound of one JWKS request, and of the document it answers.
JWKS_TIMEOUT = 5.0
JWKS_MAX_BYTES = 256 * 1024
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "role"]


class JwtRefused(Exception):
    """The token is not a valid access token of the project (401); ``reason`` is a stable
    word used in counters (``jwt_refused_<reason>``) and answers."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class KeysUnavailable(Exception):
    """No JWKS was ever fetched and the endpoint cannot be reached now (503)."""


@dataclass(frozen=True)
class Claims:
    """What the gateway uses of a verified token."""

    sub: UUID
    exp: int
    email: str | None


def _usable_key(data: Any) -> jwt.PyJWK | None:
    """``data`` as a verification key with its algorithm pinned, or None when it is not an
    ES256/RS256 signing key (symmetric keys, encryption keys, other curves are skipped)."""
    if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
        return None
    if data.get("use", "sig") != "sig":
        return None
    for alg, (kty, crv) in ASYMMETRIC.items():
        if data.get("kty") != kty or (crv is not None and data.get("crv") != crv):
            continue
        if data.get("alg", alg) != alg:
            return None
        try:
            return jwt.PyJWK(data, algorithm=alg)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            return None
    return None


class JwksCache:
    """The project's public signing keys by ``kid``, refreshed as described above."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float,
        min_interval: float,
        counters: MutableMapping[str, int],
        monotonic: Callable[[], float] = monotonic,
    ) -> None:
        self.url = url
        self.ttl = ttl
        self.min_interval = min_interval
        self.counters = counters
        self._now = monotonic
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None  # made in the running loop, on first use
        for name in ("jwks_fetches", "jwks_fetch_failures", "jwks_keys"):
            counters.setdefault(name, 0)

    async def aclose(self) -> None:
        """Close the HTTP client (the keys are kept: an app restarted in a new event loop
        opens a new client)."""
        client, self._client = self._client, None
        self._lock = asyncio.Lock()
        if client is not None:
            await client.aclose()

    def _may_fetch(self) -> bool:
        return self._attempted_at is None or self._now() - self._attempted_at >= self.min_interval

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key named ``kid``, fetching the set when it is stale or lacks ``kid`` (and the
        rate limit allows). Raises :class:`KeysUnavailable` when there is no set at all."""
        keys = self._keys
        stale = keys is None or self._now() - self._fetched_at >= self.ttl
        if keys is not None and kid in keys and (not stale or self._lock.locked()):
            return keys[kid]  # fresh, or someone is refreshing: no need to wait for it
        if (stale or keys is None or kid not in keys) and self._may_fetch():
            async with self._lock:
                if self._may_fetch():  # not fetched while we waited for the lock
                    await self._refresh()
        if self._keys is None:
            raise KeysUnavailable("the project's signing keys cannot be fetched")
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._attempted_at = self._now()
        self.counters["jwks_fetches"] += 1
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=JWKS_TIMEOUT, follow_redirects=False)
        try:
            response = await self._client.get(self.url, headers={"accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > JWKS_MAX_BYTES:
                raise ValueError(f"{len(response.content)} bytes")
            document = json.loads(response.content)
            entries = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(entries, list):
                raise ValueError("no 'keys' list")
        except (httpx.HTTPError, ValueError) as exc:
            self.counters["jwks_fetch_failures"] += 1
            kept = "keeping the last good set" if self._keys is not None else "no keys yet"
            log.warning("JWKS fetch from %s failed (%s); %s", self.url, _why(exc), kept)
            return
        keys: dict[str, jwt.PyJWK] = {}
        for entry in entries:
            key = _usable_key(entry)
            if key is not None and key.key_id is not None:
                keys[key.key_id] = key
        skipped = len(entries) - len(keys)
        if skipped:
            log.info("JWKS: %d key(s) skipped (not ES256/RS256 signing keys)", skipped)
        if self._keys is None or set(keys) != set(self._keys):
            log.info("JWKS: %d signing key(s): %s", len(keys), ", ".join(sorted(keys)) or "-")
        self._keys = keys
        self._fetched_at = self._now()
        self.counters["jwks_keys"] = len(keys)


def _why(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__ if isinstance(exc, httpx.HTTPError) else f"invalid JWKS: {exc}"


#: PyJWT's exceptions -> our reasons (the first match wins: subclasses first).
_REASONS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidAlgorithmError, "algorithm"),
    (jwt.DecodeError, "malformed"),
]


class SupabaseVerifier:
    """Verifies a Supabase access token; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        leeway: float,
        jwks: JwksCache,
        secret: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.jwks = jwks
        self._secret = secret
        self.algorithms = frozenset(ASYMMETRIC) | ({"HS256"} if secret else set())

    async def verify(self, token: str) -> Claims:
        """The claims of ``token``; :class:`JwtRefused` (401) or :class:`KeysUnavailable`
        (503) otherwise."""
        if not looks_like_jwt(token):
            raise JwtRefused("malformed", "not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise JwtRefused("malformed", "unreadable header") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise JwtRefused("algorithm", f"algorithm {str(alg)[:16]!r} not accepted")
        key: jwt.PyJWK | str
        if alg == "HS256":
            assert self._secret is not None
            key = self._secret
        else:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid or len(kid) > 256:
                raise JwtRefused("unknown_key", "no key id")
            found = await self.jwks.key(kid)
            if found is None or found.algorithm_name != alg:
                raise JwtRefused("unknown_key", "signing key not in the project's JWKS")
            key = found
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            reason = next((r for t, r in _REASONS if isinstance(exc, t)), "invalid")
            raise JwtRefused(reason, str(exc)[:120]) from exc
        return _claims(payload)


def _claims(payload: dict[str, Any]) -> Claims:
    if payload.get("role") != "authenticated":
        raise JwtRefused("wrong_role", "role is not 'authenticated'")
    sub = payload.get("sub")
    try:
        uid = UUID(sub) if isinstance(sub, str) and len(sub) == 36 else None
    except ValueError:
        uid = None
    if uid is None:
        raise JwtRefused("bad_subject", "sub is not a UUID")
    email = payload.get("email")
    return Claims(sub=uid, exp=int(payload["exp"]), email=email if isinstance(email, str) else None)
