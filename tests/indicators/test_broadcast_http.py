"""The REST broadcast against a real HTTP server on 127.0.0.1 that answers like Supabase.

The receiver checks nothing itself: it records every request (method, path, headers, body,
client port) and answers from a script (status, delay, headers), 202 Accepted by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from streamdesk import constants
from streamdesk.clock import ManualClock
from streamdesk.realtime_budget import LADDER, LevelSize
from streamdesk_indicators.broadcast import BroadcastPublisher
from streamdesk_indicators.degrade import DegradeController
from streamdesk_indicators.reference_universe import reference_message

pytestmark = pytest.mark.integration

KEY = "sb-test-service-role-key-0123456789"
DAY = date(2026, 3, 10)
MARCH = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


class Receiver:
    """A stand-in for Supabase Realtime's REST endpoint on a free loopback port."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, float, dict[str, str]]] = []
        self.default: tuple[int, float, dict[str, str]] = (202, 0.0, {})
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Supabase's edge

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append(
                        {
                            "method": "POST",
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": json.loads(body),
                            "port": self.client_address[1],
                        }
                    )
                    status, delay, headers = (
                        receiver.script.pop(0) if receiver.script else receiver.default
                    )
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r["body"]["messages"][0]["payload"] for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _publisher(url: str, redis_url: str, **kw: Any) -> BroadcastPublisher:
    sizes = kw.pop("sizes", {n: LevelSize(30_000, 1_100) for n in range(len(LADDER))})
    controller = DegradeController(
        sizes,
        receivers=2,
        seconds_per_month=491_400,
        flush_interval=1.0,
        pinned=kw.pop("pinned", 0),
    )
    defaults: dict[str, Any] = {"timeout": 2.0, "retry_initial": 0.05, "clock": ManualClock(MARCH)}
    defaults.update(kw)
    return BroadcastPublisher(
        url=url,
        key=SecretStr(KEY),
        redis=aioredis.Redis.from_url(redis_url),
        controller=controller,
        **defaults,
    )


@contextlib.asynccontextmanager
async def _running(pub: BroadcastPublisher, stop_timeout: float = 2.0) -> AsyncIterator[None]:
    pub.start()
    try:
        yield
    finally:
        await pub.stop(stop_timeout)
        await pub.redis.aclose()


async def _until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@functools.cache
def _reference() -> bytes:
    return reference_message()


def _with_seq(seq: int) -> bytes:
    msg = json.loads(_reference())
    msg["seq"] = seq
    return json.dumps(msg, separators=(",", ":")).encode()


async def test_request_has_the_documented_shape(receiver: Receiver, redis_url: str) -> None:
    pub = _publisher(receiver.url, redis_url)
    msg = _reference()
    async with _running(pub):
        pub.offer(msg)
        await _until(lambda: pub.sent == 1)
        pub.offer(msg)
        await _until(lambda: pub.sent == 2)
    req = receiver.requests[0]
    assert req["method"] == "POST" and req["path"] == "/realtime/v1/api/broadcast"
    assert req["headers"]["apikey"] == KEY
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    assert req["headers"]["content-type"] == "application/json"
    assert set(req["body"]) == {"messages"} and len(req["body"]["messages"]) == 1
    m = req["body"]["messages"][0]
    assert set(m) == {"topic", "event", "payload", "private"}
    assert (m["topic"], m["event"], m["private"]) == ("streamdesk:market", "flush", True)
    payload = dict(m["payload"])
    assert (payload.pop("degrade"), payload.pop("flushes"), payload.pop("options_included")) == (
        0,
        1,
        True,
    )
    assert payload == json.loads(msg)
    assert receiver.requests[1]["port"] == req["port"]  # one connection, reused
    size = len(json.dumps(m["payload"], separators=(",", ":")))
    assert pub.bytes == 2 * size and pub.failed == 0
    r = aioredis.Redis.from_url(redis_url)
    try:
        usage = await r.hgetall(constants.realtime_usage_key("2026-03"))  # the injected month
    finally:
        await r.aclose()
    assert usage == {b"broadcasts": b"2", b"bytes": str(2 * size).encode()}
    assert pub.counters()["broadcast_month_sent"] == 2


async def test_temporary_errors_are_retried_with_back_off(
    receiver: Receiver, redis_url: str
) -> None:
    receiver.script = [(500, 0.0, {}), (429, 0.0, {"Retry-After": "0"}), (503, 0.0, {})]
    pub = _publisher(receiver.url, redis_url)
    async with _running(pub):
        pub.offer(_with_seq(1))
        await _until(lambda: pub.sent == 1)
    assert [r["body"]["messages"][0]["payload"]["seq"] for r in receiver.requests] == [1] * 4
    assert (pub.failed, pub.retries, pub.dropped, pub.state) == (3, 3, 0, "ok")
    assert pub.last_status == 202


async def test_timeouts_are_temporary(receiver: Receiver, redis_url: str) -> None:
    receiver.script = [(202, 1.5, {})]  # answers after the client's timeout
    pub = _publisher(receiver.url, redis_url, timeout=0.3)
    async with _running(pub):
        pub.offer(_with_seq(1))
        await _until(lambda: pub.sent == 1)
    assert pub.failed == 1 and "Timeout" in pub.last_error
    assert len(receiver.requests) == 2


async def test_newer_rows_are_merged_into_a_retry(receiver: Receiver, redis_url: str) -> None:
    receiver.script = [(500, 0.0, {})]
    pub = _publisher(receiver.url, redis_url, retry_initial=0.5)
    async with _running(pub):
        pub.offer(_with_seq(1))
        await _until(lambda: pub.failed == 1)
        pub.offer(_with_seq(2))  # arrives during the back-off
        await _until(lambda: pub.sent == 1)
    retried = receiver.payloads()[1]
    assert retried["seq"] == 2 and retried["flushes"] == 2 and len(retried["options"]) == 200


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failure_stops_broadcasting_loudly(
    receiver: Receiver, redis_url: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = [(status, 0.0, {})]
    pub = _publisher(receiver.url, redis_url)
    caplog.set_level(logging.INFO)
    async with _running(pub):
        pub.offer(_with_seq(1))
        await _until(lambda: pub.state == "auth_failed")
        for seq in range(2, 6):
            pub.offer(_with_seq(seq))
            await asyncio.sleep(0.05)
    assert len(receiver.requests) == 1
    assert (pub.auth_failures, pub.sent) == (1, 0)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    assert str(status) in text and "SUPABASE_SERVICE_ROLE_KEY" in text
    assert "writer keeps committing" in text
    assert KEY not in caplog.text
    assert pub.counters()["broadcast_state"] == "auth_failed"


async def test_client_errors_drop_the_payload(receiver: Receiver, redis_url: str) -> None:
    receiver.script = [(422, 0.0, {})]
    pub = _publisher(receiver.url, redis_url)
    async with _running(pub):
        pub.offer(_with_seq(1))
        await _until(lambda: pub.dropped == 1)
        pub.offer(_with_seq(2))
        await _until(lambda: pub.sent == 1)
    assert "HTTP 422" in pub.last_error and pub.failed == 0


async def test_slow_receiver_conflates_without_delaying_the_writer(
    receiver: Receiver, redis_url: str
) -> None:
    receiver.default = (202, 2.0, {})  # every answer takes 2 s
    pub = _publisher(receiver.url, redis_url, timeout=5.0)
    msgs = [_with_seq(seq) for seq in range(1, 31)]
    offer_s: list[float] = []
    loop = asyncio.get_running_loop()
    async with _running(pub, 0.5):  # then the request in flight is abandoned
        t0 = loop.time()
        for i, msg in enumerate(msgs):  # a flush every 100 ms for 3 s
            await asyncio.sleep(max(0.0, t0 + i * 0.1 - loop.time()))
            s = time.perf_counter()
            pub.offer(msg)
            offer_s.append(time.perf_counter() - s)
        elapsed = loop.time() - t0
        assert pub.sent == 1  # the first answer came at 2 s; the second is in flight
    assert elapsed < 2.9 + 0.5  # the 30 flushes kept their pace
    assert max(offer_s) < 0.005  # offer() returns at once
    # at most one request in flight: the rest were replaced in the slot
    assert pub.conflated >= 20
    assert len(receiver.requests) <= 3
    last = receiver.payloads()[-1]
    assert last["flushes"] > 1  # it covers the conflated flushes


async def test_month_usage_in_redis_raises_the_level(
    receiver: Receiver, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    r = aioredis.Redis.from_url(redis_url)
    try:  # by 16 March other runs used 400,000 broadcasts (see test_realtime_budget)
        await r.hset(
            constants.realtime_usage_key("2026-03"),
            mapping={"broadcasts": 400_000, "bytes": 40_000_000},
        )
    finally:
        await r.aclose()
    flat = {n: LevelSize(100, 100) for n in range(len(LADDER))}
    pub = _publisher(receiver.url, redis_url, sizes=flat, pinned=None)
    assert pub.controller.level == 0  # the plan alone
    caplog.set_level(logging.WARNING)
    async with _running(pub):
        pub.offer(_with_seq(1))
        await _until(lambda: pub.controller.level == 5)
        pub.offer(_with_seq(2))  # level 5 broadcasts every 2nd flush
        await _until(lambda: pub.sent == 1)
    (payload,) = receiver.payloads()
    assert payload["degrade"] == 5 and payload["flushes"] == 2
    assert payload["options"] == [] and payload["options_included"] is False
    counters = pub.counters()
    assert counters["broadcast_degrade"] == 5 and counters["broadcast_month_sent"] == 400_001
    assert counters["broadcast_degrade_reason"].startswith("this month runs ahead of plan")
    assert "Realtime degrade level 0 -> 5: this month runs ahead of plan" in caplog.text
