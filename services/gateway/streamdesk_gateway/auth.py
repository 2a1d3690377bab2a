"""Who may call the gateway: the token, login sessions and the failed-attempt limiter.

One secret, the gateway token: ``GATEWAY_TOKEN``, or a random one generated on first start
into the data directory (mode 0600) and reused afterwards. API clients send it as
``Authorization: Bearer``; a browser trades it once (``POST /api/login``) for a session
cookie (HttpOnly, SameSite=Strict). The cookie is signed, not stored: ``<expiry>.<nonce>.<mac>``
with an HMAC-SHA256 under a key derived from the token, so sessions survive a gateway restart
(a crash restarted by the supervisor must not log every browser out) and changing the token
ends them all. A Supabase operator's login (``identity.py``) is ``<expiry>.<nonce>.<user
id>.<mac>`` and ends with their access token at the latest. Logout revokes the nonce until
its expiry (kept in memory, bounded: a gateway restart forgets revocations, but the
logged-out browser has already dropped its cookie). Comparisons are constant-time; failed
attempts are counted per client address and answered 429 past the limit.

Session expiry is a wall-clock time carried in the cookie (the app's ``Clock``); the limiter's
window is a deadline on ``time.monotonic`` (injectable for tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import monotonic, time
from uuid import UUID

from .config import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "sd_session"
TOKEN_BYTES = 32


def _write_new_token(path: Path) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        # link() fails if another process created the file first: then its token wins.
        os.link(tmp, path)
    except FileExistsError:
        return ""
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return token


def load_or_create_token(settings: Settings) -> str:
    """The gateway token: ``GATEWAY_TOKEN``, else the token file (created on first use)."""
    if settings.gateway_token is not None:
        return settings.gateway_token.get_secret_value()
    path = settings.token_path()
    for _ in range(2):
        try:
            token = path.read_text().strip()
        except FileNotFoundError:
            token = _write_new_token(path)
            if token:
                log.info("generated a gateway token", extra={"token_path": str(path)})
                return token
            continue
        if len(token) < 16:
            raise ValueError(f"{path} holds no usable token (delete it to generate a new one)")
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return token
    raise RuntimeError(f"could not read or create {path}")


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison (hmac.compare_digest over the UTF-8 bytes)."""
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Session:
    """A genuine login session: its expiry (epoch s), nonce, and the Supabase operator it
    was opened for (None: opened with the gateway token)."""

    expiry: float
    nonce: str
    user_id: UUID | None


class Sessions:
    """Signed login sessions with an expiry; logged-out ones revoked (at most ``limit`` kept,
    oldest forgotten first)."""

    def __init__(
        self, key: bytes, ttl: float, limit: int, *, wall: Callable[[], float] = time
    ) -> None:
        self._key = key
        self.ttl = ttl
        self.limit = limit
        self._now = wall
        self._revoked: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        """Revocations currently remembered."""
        return len(self._revoked)

    def _mac(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def create(self, user_id: UUID | None = None, *, until: float | None = None) -> str:
        """A new session cookie value: the service identity's, or ``user_id``'s (a Supabase
        operator), ending after the TTL or at ``until`` (the access token's expiry) if sooner."""
        expiry = int(self._now() + self.ttl)
        if until is not None:
            expiry = min(expiry, int(until))
        payload = f"{expiry}.{secrets.token_urlsafe(TOKEN_BYTES // 2)}"
        if user_id is not None:
            payload += f".{user_id}"
        return f"{payload}.{self._mac(payload)}"

    def parse(self, sid: str) -> Session | None:
        """The session ``sid`` stands for when this token signed it and it is unexpired and
        not logged out; None otherwise."""
        parts = sid.split(".")
        if len(parts) not in (3, 4) or not parts[0].isdigit() or len(parts[0]) > 12:
            return None
        payload = ".".join(parts[:-1])
        if not hmac.compare_digest(parts[-1], self._mac(payload)):
            return None
        expiry = float(parts[0])
        if expiry <= self._now() or parts[1] in self._revoked:
            return None
        user_id: UUID | None = None
        if len(parts) == 4:
            try:
                user_id = UUID(parts[2])
            except ValueError:
                return None
        return Session(expiry, parts[1], user_id)

    def valid(self, sid: str) -> bool:
        """Whether ``sid`` is a session this token signed, unexpired and not logged out."""
        return self.parse(sid) is not None

    def drop(self, sid: str) -> None:
        """End ``sid`` (logout): its nonce is refused until the session would have expired."""
        parsed = self.parse(sid)
        if parsed is None:
            return
        now = self._now()
        for nonce in [n for n, exp in self._revoked.items() if exp <= now]:
            del self._revoked[nonce]
        while len(self._revoked) >= self.limit:
            self._revoked.popitem(last=False)
        self._revoked[parsed.nonce] = parsed.expiry


class FailureLimiter:
    """Failed token attempts per client address in a sliding window, bounded in memory."""

    def __init__(
        self,
        max_failures: int,
        window: float,
        *,
        max_clients: int = 4096,
        monotonic: Callable[[], float] = monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self._now = monotonic
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again (0: it may now)."""
        times = self._failures.get(client)
        if times is None:
            return 0
        now = self._now()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return 0
        if len(times) < self.max_failures:
            return 0
        return max(1, int(times[0] + self.window - now + 0.999))

    def failed(self, client: str) -> None:
        """Count one failed attempt by ``client``."""
        times = self._failures.pop(client, None) or deque(maxlen=self.max_failures)
        times.append(self._now())
        self._failures[client] = times
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


class Auth:
    """The gateway's token, its sessions and its limiter, as built from ``Settings``."""

    def __init__(
        self,
        settings: Settings,
        *,
        monotonic: Callable[[], float] = monotonic,
        wall: Callable[[], float] = time,
    ) -> None:
        self.token = load_or_create_token(settings)
        key = hmac.new(self.token.encode(), b"streamdesk gateway session v1", "sha256").digest()
        self.sessions = Sessions(
            key, settings.gateway_session_ttl, settings.gateway_max_sessions, wall=wall
        )
        self.limiter = FailureLimiter(
            settings.gateway_login_max_failures, settings.gateway_login_window, monotonic=monotonic
        )
        self.cookie_secure = settings.gateway_cookie_secure
        self.session_ttl = settings.gateway_session_ttl

    def check_token(self, given: str) -> bool:
        """Whether ``given`` is the gateway token (constant time)."""
        return same_secret(given, self.token)
