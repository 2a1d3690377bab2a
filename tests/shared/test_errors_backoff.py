"""The shared error taxonomy and back-off policy."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from streamdesk.backoff import Backoff
from streamdesk.errors import OperationalError, TemporaryError, http_status, is_temporary
from streamdesk.schwab import TokenExpiredError, TokenMissingError

pytestmark = pytest.mark.unit


def _status_error(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/x")
    return httpx.HTTPStatusError("x", request=request, response=httpx.Response(code))


@pytest.mark.parametrize(
    ("exc", "temporary"),
    [
        (TemporaryError("x"), True),
        (OperationalError("x"), False),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (asyncpg.CannotConnectNowError("starting up"), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (asyncpg.UniqueViolationError("dup"), False),  # a bug or a conflict, not an outage
        (RedisConnectionError(), True),
        (ResponseError("WRONGTYPE"), False),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (_status_error(503), True),
        (_status_error(429), True),
        (_status_error(400), False),
        (_status_error(401), False),
        (ValueError("bad"), False),
        (TokenExpiredError("expired"), False),
        (TokenMissingError("none"), False),
    ],
)
def test_is_temporary(exc: BaseException, temporary: bool) -> None:
    assert is_temporary(exc) is temporary


def test_token_errors_are_operational() -> None:
    assert issubclass(TokenExpiredError, OperationalError)
    assert issubclass(TokenMissingError, OperationalError)
    assert issubclass(TokenMissingError, FileNotFoundError)  # callers catching that still do


def test_http_status() -> None:
    assert http_status(_status_error(502)) == 502
    assert http_status(ValueError()) is None


def test_backoff_grows_caps_and_resets() -> None:
    b = Backoff(0.5, 4.0, jitter=False)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.failures == 6
    b.reset()
    assert b.next_delay() == 0.5
    for _ in range(10_000):  # a very long outage does not overflow
        b.next_delay()
    assert b.cap() == 4.0


def test_backoff_full_jitter_bounds() -> None:
    seen: list[tuple[float, float]] = []
    b = Backoff(1.0, 8.0, rng=lambda lo, hi: seen.append((lo, hi)) or hi)
    for _ in range(5):
        b.next_delay()
    assert seen == [(0.5, 1.0), (0.5, 2.0), (0.5, 4.0), (0.5, 8.0), (0.5, 8.0)]


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)
    with pytest.raises(ValueError):
        Backoff(1, 2, factor=0.5)


async def test_backoff_wait_ends_early_on_stop() -> None:
    stop = asyncio.Event()
    b = Backoff(30.0, 30.0, jitter=False)
    asyncio.get_running_loop().call_later(0.05, stop.set)
    t0 = time.monotonic()
    assert await b.wait(stop) is False
    assert time.monotonic() - t0 < 5
    assert await b.wait(stop) is False  # already set: no wait at all
    assert await Backoff(0.01, 0.01).wait(asyncio.Event()) is True
