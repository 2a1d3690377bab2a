"""Webhook alerts against a real HTTP receiver on loopback: once per change, not per check."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from market_clock import PINNED_DAYS, MarketMoment

from streamdesk.clock import SYSTEM_CLOCK
from streamdesk.constants import HEALTH_STATE_KEY
from streamdesk.heartbeat import Heartbeat
from streamdesk.partitions import ensure_partition
from streamdesk_health.alerts import Alert, AlertSender, Change
from streamdesk_health.config import Settings
from streamdesk_health.monitor import HealthMonitor
from streamdesk_health.status import Status

SettingsFactory = Callable[..., Settings]


class Receiver:
    """A tiny webhook endpoint recording every JSON body it gets."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = status
        self.delay = delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


async def _until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _fresh_ticks(
    db_url: str, tickers: list[str], stop: asyncio.Event, started: asyncio.Event
) -> None:
    """A healthy market feed: one row per ticker per second at the (pinned) clock's now."""
    conn = await asyncpg.connect(db_url)
    try:
        for day in PINNED_DAYS:
            for table in ("equity_data", "indicators", "option_prices"):
                await ensure_partition(conn, table, day)
        while not stop.is_set():
            now = SYSTEM_CLOCK.now().replace(microsecond=0)
            await conn.executemany(
                'INSERT INTO equity_data (ticker, "timestamp", price, volume) '
                "VALUES ($1, $2, 1.0, 1) ON CONFLICT DO NOTHING",
                [(t, now) for t in tickers],
            )
            started.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
    finally:
        await conn.close()


@pytest.mark.integration
async def test_webhook_fires_once_per_change_not_per_check(
    make_settings: SettingsFactory,
    redis_url: str,
    db_url: str,
    receiver: Receiver,
    market_clock: MarketMoment,
) -> None:
    # At both pinned moments the only change is the heartbeat's: the data stay fresh, so
    # freshness is ok whether the market is open (fresh rows) or closed (not alarmed).
    stop_feed, feeding = asyncio.Event(), asyncio.Event()
    feed = asyncio.create_task(_fresh_ticks(db_url, ["SPY", "QQQ"], stop_feed, feeding))
    await asyncio.wait_for(feeding.wait(), 10)
    settings = make_settings(
        health_webhook_url=receiver.url,
        health_webhook_min_interval_s=0,
        health_webhook_topic="streamdesk-ops",
        health_expected_services="indicators",
        health_check_interval=0.05,
    )
    client = aioredis.Redis.from_url(redis_url)
    hb = Heartbeat(client, "indicators", instance="i1", interval=0.1, ttl=5)
    await hb.beat()
    mon = HealthMonitor(settings)
    mon.start()
    try:
        # The stack starts healthy apart from nothing: indicators ok, others fine -> no alert.
        await _until(lambda: mon.rounds >= 5)
        assert mon.snapshot is not None
        freshness = mon.snapshot.components["freshness"]
        assert freshness.status == Status.OK, freshness.reason
        assert freshness.figures["market_open"] is market_clock.market_open
        assert receiver.bodies == []
        # One change: the service stops cleanly (key removed) -> exactly one POST.
        await hb.stop(remove=True)
        await _until(lambda: len(receiver.bodies) >= 1)
        rounds = mon.rounds
        await _until(lambda: mon.rounds >= rounds + 10)
        assert len(receiver.bodies) == 1
        body = receiver.bodies[0]
        assert body["status"] == "down" and body["previous_status"] == "ok"
        assert body["changes"] == [
            {
                "component": "indicators",
                "from": "ok",
                "to": "down",
                "reason": "no heartbeat (not running?)",
            }
        ]
        assert "StreamDesk DOWN" in body["text"] and body["content"] == body["text"]
        # ntfy JSON publishing: topic, title, message.
        assert body["topic"] == "streamdesk-ops"
        assert body["title"] == "StreamDesk DOWN (was ok)"
        assert body["message"] == "- indicators: ok -> down (no heartbeat (not running?))"
        # It comes back: one more POST.
        await hb.beat()
        await _until(lambda: len(receiver.bodies) >= 2)
        rounds = mon.rounds
        await _until(lambda: mon.rounds >= rounds + 10)
        assert len(receiver.bodies) == 2
        assert receiver.bodies[1]["status"] == "ok"
        assert receiver.bodies[1]["changes"][0]["to"] == "ok"
        assert mon.alerter is not None and mon.alerter.sent == 2
        stored = json.loads(await client.get(HEALTH_STATE_KEY))
        assert stored["components"]["indicators"] == "ok"
    finally:
        stop_feed.set()
        await feed
        await mon.stop()
        await hb.stop()
        await client.aclose()


@pytest.mark.integration
async def test_restart_does_not_repeat_the_last_alert(
    make_settings: SettingsFactory, receiver: Receiver
) -> None:
    settings = make_settings(
        health_webhook_url=receiver.url,
        health_webhook_min_interval_s=0,
        health_expected_services="indicators",
    )
    first = HealthMonitor(settings)
    first.start()
    try:
        await _until(lambda: len(receiver.bodies) == 1)
    finally:
        await first.stop()
    # A new process reads what was last alerted from Redis: the same "down" is not news.
    second = HealthMonitor(settings)
    second.start()
    try:
        await _until(lambda: second.rounds >= 5)
        assert len(receiver.bodies) == 1
    finally:
        await second.stop()


@pytest.mark.integration
async def test_no_alerts_during_the_startup_grace(
    make_settings: SettingsFactory, receiver: Receiver
) -> None:
    settings = make_settings(
        health_webhook_url=receiver.url,
        health_webhook_min_interval_s=0,
        health_alert_grace_s=60,
        health_expected_services="indicators",
    )
    mon = HealthMonitor(settings)
    try:
        for _ in range(3):
            snap = await mon.run_once()
        assert snap.components["indicators"].status.value == "down"
        await asyncio.sleep(0.2)
        assert receiver.bodies == []
    finally:
        await mon.stop()


@pytest.mark.unit
async def test_rate_limit_coalesces_and_a_slow_webhook_never_blocks_notify() -> None:
    with Receiver(delay=0.3) as slow:
        sender = AlertSender(slow.url, min_interval=0.5, timeout=2.0, maxsize=4)
        task = asyncio.create_task(sender.run())
        try:
            start = time.perf_counter()
            for i in range(10):
                sender.notify(Alert("down", "ok", [Change(f"c{i}", "ok", "down", "x")]))
            assert time.perf_counter() - start < 0.05  # notify never waits for the network
            await _until(lambda: sender.sent >= 1 and sender.queue.empty(), timeout=5)
            await sender.flush(5)
            # 10 changes into a queue of 4: the oldest were dropped and counted, the rest
            # went out in at most two rate-limited POSTs.
            assert sender.dropped >= 5
            assert 1 <= len(slow.bodies) <= 2
            names = [c["component"] for b in slow.bodies for c in b["changes"]]
            assert "c9" in names and "c0" not in names
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.unit
async def test_failed_webhook_is_counted_not_raised() -> None:
    with Receiver(status=400) as refusing:
        sender = AlertSender(refusing.url, min_interval=0, timeout=2.0)
        task = asyncio.create_task(sender.run())
        try:
            sender.notify(Alert("down", "ok", [Change("redis", "ok", "down", "gone")]))
            await _until(lambda: sender.failed == 1)
            assert len(refusing.bodies) == 1  # a 4xx is not retried
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
