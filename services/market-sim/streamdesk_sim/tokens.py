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
    """Issues and checks tokens; ``revoke_before`` invalidates everything issued earlier."""

    def __init__(self, secret: str, access_ttl: int, refresh_ttl: int) -> None:
        self._key = secret.encode()
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.revoked_access_before = 0.0
        self.revoked_refresh_before = 0.0

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def _make(self, kind: str, ttl: float, login: float, now: float) -> str:
        nonce = secrets.token_hex(6)
        payload = f"{kind}.{int(now * 1000)}.{int((now + ttl) * 1000)}.{int(login * 1000)}.{nonce}"
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
        if len(parts) != 6:
            return None
        payload = ".".join(parts[:5])
        if not hmac.compare_digest(self._sign(payload), parts[5]):
            return None
        try:
            info = TokenInfo(
                parts[0], int(parts[1]) / 1000, int(parts[2]) / 1000, int(parts[3]) / 1000
            )
        except ValueError:
            return None
        now = time.time()
        revoked = self.revoked_access_before if kind == "a" else self.revoked_refresh_before
        if info.kind != kind or info.expires <= now or info.issued < revoked:
            return None
        return info

    def revoke(self, *, access: bool = True, refresh: bool = False) -> None:
        """Invalidate every token of the given kinds issued until now."""
        # Small margin so a token issued in the same instant is revoked too.
        now = time.time() + 0.001
        if access:
            self.revoked_access_before = now
        if refresh:
            self.revoked_refresh_before = now
