"""Stateless OAuth tokens: HMAC-signed, so a restarted simulator still honours them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenInfo:
    """What a valid token says about itself."""

    kind: str  # "a" (access) or "r" (refresh)
    issued: float
    expires: float
    login: float  # time of the original authorization_code login (refresh chain start)


class TokenIssuer:
    """Issues and checks tokens; :meth:`revoke` invalidates everything issued earlier."""

    def __init__(self, secret: str, access_ttl: int, refresh_ttl: int) -> None:
        self._key = secret.encode()
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        # Revocation generations; a token is valid only while its kind's generation holds.
        self.generation = {"a": 0, "r": 0, "i": 0}

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def _make(self, kind: str, ttl: float, login: float, now: float) -> str:
        nonce = secrets.token_hex(6)
        gen = self.generation[kind]
        payload = (
            f"{kind}.{int(now * 1000)}.{int((now + ttl) * 1000)}.{int(login * 1000)}.{gen}.{nonce}"
        )
        return f"{payload}.{self._sign(payload)}"

    def issue(self, login: float | None = None) -> dict[str, object]:
        """A Schwab-shaped token response; ``login`` carries the refresh chain's start."""
        now = time.time()
        login = now if login is None else login
        # Schwab's refresh token expires 7 days after the original login, not after refresh.
        refresh_left = max(1.0, login + self.refresh_ttl - now)
        return {
            "expires_in": self.access_ttl,
            "token_type": "Bearer",
            "scope": "api",
            "refresh_token": self._make("r", refresh_left, login, now),
            "access_token": self._make("a", self.access_ttl, login, now),
            "id_token": self._make("i", self.access_ttl, login, now),
        }

    def check(self, token: str, kind: str) -> TokenInfo | None:
        """The token's info if it is genuine, of ``kind``, unexpired and not revoked."""
        parts = token.split(".")
        if len(parts) != 7:
            return None
        payload = ".".join(parts[:6])
        if not hmac.compare_digest(self._sign(payload), parts[6]):
            return None
        try:
            info = TokenInfo(
                parts[0], int(parts[1]) / 1000, int(parts[2]) / 1000, int(parts[3]) / 1000
            )
        except ValueError:
            return None
        if info.kind != kind or info.expires <= time.time():
            return None
        if parts[4] != str(self.generation[kind]):
            return None
        return info

    def revoke(self, *, access: bool = True, refresh: bool = False) -> None:
        """Invalidate every token of the given kinds issued until now."""
        if access:
            self.generation["a"] += 1
        if refresh:
            self.generation["r"] += 1
