"""Webhook alerts: one JSON POST per state change, rate-limited, never blocking the checks.

The monitor calls :meth:`AlertSender.notify` (non-blocking, bounded queue; the oldest alert is
dropped when full). One sender task POSTs them; changes that arrive while the rate limit holds
are coalesced into the next POST. The POST itself is the standard library's blocking client
run in a worker thread: it keeps httpx (and its CLI dependencies) out of this small process.
The body carries ``text`` (Slack), ``content`` (Discord) and
``title``/``message`` (+ ``topic`` when configured: ntfy JSON publishing) with a readable
summary, plus structured fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streamdesk.errors import TEMPORARY_HTTP_STATUS

log = logging.getLogger(__name__)


@dataclass
class Change:
    """One component (or the overall stack) moving from one status to another."""

    component: str
    previous: str
    current: str
    reason: str


@dataclass
class Alert:
    """All changes seen in one check round."""

    status: str
    previous_status: str
    changes: list[Change]
    at: float = field(default_factory=time.time)


def render(alerts: list[Alert], stack_url: str, topic: str | None = None) -> dict[str, Any]:
    """The JSON body of one POST for one or more coalesced alerts.

    With ``topic`` the body is also a valid ntfy JSON publish (POST to the server root URL):
    ntfy reads ``topic``, ``title`` and ``message``.
    """
    changes = [c for a in alerts for c in a.changes]
    status, previous = alerts[-1].status, alerts[0].previous_status
    icon = {"ok": "OK", "degraded": "DEGRADED", "down": "DOWN"}.get(status, status.upper())
    lines = [f"StreamDesk {icon} (was {previous})"]
    lines += [
        f"- {c.component}: {c.previous} -> {c.current}" + (f" ({c.reason})" if c.reason else "")
        for c in changes
    ]
    text = "\n".join(lines)[:1900]  # Discord refuses content over 2000 characters
    return {
        "source": "streamdesk-health",
        "status": status,
        "previous_status": previous,
        "at": datetime.fromtimestamp(alerts[-1].at, UTC).isoformat(),
        "changes": [
            {"component": c.component, "from": c.previous, "to": c.current, "reason": c.reason}
            for c in changes
        ],
        "url": stack_url.rstrip("/") + "/health",
        "text": text,
        "content": text,
        "title": lines[0],
        "message": "\n".join(lines[1:])[:1900] or lines[0],
        **({"topic": topic} if topic else {}),
    }


class AlertSender:
    """Bounded queue plus one sender task that POSTs alerts to a webhook."""

    def __init__(
        self,
        url: str,
        *,
        min_interval: float = 30.0,
        timeout: float = 5.0,
        stack_url: str = "",
        topic: str | None = None,
        maxsize: int = 64,
    ) -> None:
        self.url = url
        self.min_interval = min_interval
        self.timeout = timeout
        self.stack_url = stack_url
        self.topic = topic
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=maxsize)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._last_post = -float("inf")
        self._idle = asyncio.Event()
        self._idle.set()

    def notify(self, alert: Alert) -> None:
        """Queue ``alert`` without waiting; drop the oldest one if the queue is full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            log.warning("alert queue full; dropped the oldest alert")
        self.queue.put_nowait(alert)
        self._idle.clear()

    def _post_blocking(self, data: bytes) -> int:
        req = urllib.request.Request(  # noqa: S310 - the scheme is validated in Settings
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "streamdesk-health"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    async def _post(self, body: dict[str, Any]) -> bool:
        data = json.dumps(body).encode()
        for attempt in range(2):
            try:
                status = await asyncio.wait_for(
                    asyncio.to_thread(self._post_blocking, data), self.timeout + 1
                )
            except (OSError, TimeoutError) as exc:
                log.warning("webhook POST failed (attempt %d): %s", attempt + 1, type(exc).__name__)
            else:
                if status < 300:
                    return True
                log.warning("webhook answered HTTP %d (attempt %d)", status, attempt + 1)
                if status not in TEMPORARY_HTTP_STATUS:
                    return False  # a permanent refusal: retrying would not help
            await asyncio.sleep(1.0)
        return False

    async def _send_batch(self, first: Alert) -> None:
        wait = self._last_post + self.min_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # bounded by min_interval
        batch = [first]
        while not self.queue.empty():
            batch.append(self.queue.get_nowait())
        self._last_post = time.monotonic()
        if await self._post(render(batch, self.stack_url, self.topic)):
            self.sent += 1
        else:
            self.failed += 1

    async def run(self) -> None:
        """Send queued alerts until cancelled."""
        while True:
            first = await self.queue.get()
            await self._send_batch(first)
            if self.queue.empty():
                self._idle.set()

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) until the queue is empty; used on shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
