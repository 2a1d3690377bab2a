"""Temporary failures are named for the gap and move the right counters."""

from __future__ import annotations

import warnings

import httpx
import pytest

from streamdesk_streamer.client import StreamProtocolError, StreamTimeoutError
from streamdesk_streamer.errors import Failure, classify

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from schwab.streaming import UnexpectedResponseCode

pytestmark = pytest.mark.unit


def http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1/trader/v1/userPreference")
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


def test_refused_login_asks_for_a_token_refresh() -> None:
    response = {"response": [{"service": "ADMIN", "command": "LOGIN", "content": {"code": 3}}]}
    failure = classify(UnexpectedResponseCode(response, "code 3"))
    assert failure == Failure("login refused: code 3", login_refused=True)
    other = classify(UnexpectedResponseCode({"command": "SUBS"}, "code 22"))
    assert other == Failure("request refused: code 22")


def test_http_errors_count_as_connect_errors_and_401_as_a_refused_login() -> None:
    assert classify(http_error(503)) == Failure("HTTP 503 from the Schwab API", connect_error=True)
    assert classify(http_error(401)) == Failure(
        "HTTP 401 from the Schwab API", connect_error=True, login_refused=True
    )
    refused = classify(ConnectionRefusedError(111, "refused"))
    assert refused.connect_error and refused.reason.startswith("connection error: ")


def test_silence_and_protocol_errors_are_named() -> None:
    assert classify(StreamTimeoutError("no message or heartbeat for 30s")) == Failure(
        "missing heartbeat: no message or heartbeat for 30s"
    )
    assert classify(StreamProtocolError("server response ADMIN code 30")) == Failure(
        "protocol error: server response ADMIN code 30"
    )
    assert classify(KeyError("x")).reason == "error: KeyError: 'x'"
