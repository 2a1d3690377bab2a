"""The Schwab token file as the streamer watches it: its age, and waiting for a new one.

Every service and ``streamdesk auth`` write the same token file, and every (re)connect builds
its client from it, so a token refreshed elsewhere is picked up at the next reconnect. Here:
an hourly warning once the token is ``TOKEN_WARN_DAYS`` old (the refresh token expires after
``streamdesk.schwab.REFRESH_TOKEN_MAX_AGE``), its age for the heartbeat, and - after an
operational token error stopped streaming - polling every ``TOKEN_POLL_INTERVAL`` seconds
for a new token file, so the streamer resumes by itself without a crash loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from streamdesk.clock import Clock
from streamdesk.tokens import REFRESH_TOKEN_MAX_AGE, TokenStore

log = logging.getLogger(__name__)


class TokenWatch:
    """Reads the token file's age and notices a new token file."""

    def __init__(self, path: Path, clock: Clock, *, warn_days: float, poll_interval: float) -> None:
        self.path = path
        self.clock = clock
        self.warn_days = warn_days
        self.poll_interval = poll_interval
        self._warned_at = 0.0

    def age_seconds(self) -> float | None:
        """Age of the token file (since the original login), or None without one."""
        try:
            return TokenStore(self.path, clock=self.clock).age_seconds()
        except OSError:
            return None

    def warn_if_old(self) -> None:
        """Log a warning (at most hourly) once the token is ``warn_days`` old."""
        age = self.age_seconds()
        if age is None:
            return
        warn = self.warn_days * 86400
        now = time.monotonic()
        if age >= warn and now - self._warned_at > 3600:
            self._warned_at = now
            left = (REFRESH_TOKEN_MAX_AGE - age) / 86400
            log.warning(
                "Schwab token is %.1f days old; it expires in %.1f days: run `streamdesk auth`",
                age / 86400,
                left,
            )

    async def wait_for_new(self) -> None:
        """Return once the token file differs from what it is now (a new login or refresh)."""
        store = TokenStore(self.path)
        before = store.read()
        before_ts = before.get("creation_timestamp") if before else None
        before_access = before["token"].get("access_token") if before else None
        while True:
            await asyncio.sleep(self.poll_interval)
            data = store.read()
            if data is None:
                continue
            if (
                data.get("creation_timestamp") != before_ts
                or data["token"].get("access_token") != before_access
            ):
                log.info("new token file found; resuming")
                return
