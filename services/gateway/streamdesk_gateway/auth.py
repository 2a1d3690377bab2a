"""Who may call the gateway: the token, login sessions and the failed-attempt limiter.

One secret, the gateway token: ``GATEWAY_TOKEN``, or a random one generated on first start
into the data directory (mode 0600) and reused afterwards. API clients send it as
``Authorization: Bearer``; a browser trades it once (``POST /api/login``) for an opaque
session id in an HttpOnly, SameSite=Strict cookie. Sessions live in memory only: a restart
logs browsers out, which costs one click on the login URL. Comparisons are constant-time;
failed attempts are counted per client address and answered 429 past the limit.

Durations (session expiry, the limiter's window) are deadlines, not "now": they use
``time.monotonic`` (injectable for tests), as the clock module prescribes.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import tempfile
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from time import monotonic

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


class Sessions:
    """Login sessions: random ids with an expiry, at most ``limit`` (oldest evicted)."""

    def __init__(
        self, ttl: float, limit: int, *, monotonic: Callable[[], float] = monotonic
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self._now = monotonic
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def create(self) -> str:
        """A new session id."""
        self._purge()
        while len(self._expiry) >= self.limit:
            self._expiry.popitem(last=False)
        sid = secrets.token_urlsafe(TOKEN_BYTES)
        self._expiry[sid] = self._now() + self.ttl
        return sid

    def valid(self, sid: str) -> bool:
        """Whether ``sid`` is a live session (dict lookup of a 256-bit random id)."""
        expiry = self._expiry.get(sid)
        if expiry is None:
            return False
        if expiry <= self._now():
            del self._expiry[sid]
            return False
        return True

    def drop(self, sid: str) -> None:
        """End ``sid`` (logout)."""
        self._expiry.pop(sid, None)

    def _purge(self) -> None:
        now = self._now()
        for sid in [s for s, exp in self._expiry.items() if exp <= now]:
            del self._expiry[sid]


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

    def __init__(self, settings: Settings, *, monotonic: Callable[[], float] = monotonic) -> None:
        self.token = load_or_create_token(settings)
        self.sessions = Sessions(
            settings.gateway_session_ttl, settings.gateway_max_sessions, monotonic=monotonic
        )
        self.limiter = FailureLimiter(
            settings.gateway_login_max_failures, settings.gateway_login_window, monotonic=monotonic
        )
        self.cookie_secure = settings.gateway_cookie_secure
        self.session_ttl = settings.gateway_session_ttl

    def check_token(self, given: str) -> bool:
        """Whether ``given`` is the gateway token (constant time)."""
        return same_secret(given, self.token)
