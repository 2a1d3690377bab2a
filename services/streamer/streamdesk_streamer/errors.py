"""Why a session ended: the two kinds of error, and the endings that are not errors.

- *Temporary*: anything a reconnect may cure - network and HTTP errors, a closed websocket, a
  protocol error or refused request, a refused login (ADMIN LOGIN code, or HTTP 401 from the
  API), a missing heartbeat. :func:`classify` names it (the reason recorded on the gap and in
  the state key) and says which counters it moves; the supervisor reconnects with back-off.
- *Operational*: the refresh token expired or was refused, or there is no token file
  (``streamdesk.schwab.TokenExpiredError`` / ``TokenMissingError``): streaming stops with a
  CRITICAL line and waits for a new token file instead of crash-looping.
- Not errors: :class:`MarketClosed` and :class:`Paused` end a session on purpose.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass

from streamdesk.errors import NETWORK_ERRORS, http_errors, http_status

from .client import StreamProtocolError, StreamTimeoutError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from schwab.streaming import UnexpectedResponse, UnexpectedResponseCode, UnparsableMessage
    from websockets.exceptions import WebSocketException

log = logging.getLogger(__name__)


class MarketClosed(Exception):
    """The market closed while streaming: log out and idle."""


class Paused(Exception):
    """The operator paused the streamer: log out and wait for the resume."""


@dataclass(frozen=True)
class Failure:
    """A temporary failure: its reason and the counters it moves."""

    reason: str
    connect_error: bool = False
    #: The login or the access token was refused: refresh the token before retrying.
    login_refused: bool = False


def classify(exc: BaseException) -> Failure:
    """Name a temporary failure (refused logins and unexpected errors are logged here)."""
    if isinstance(exc, UnexpectedResponseCode):
        text = str(exc)
        if "LOGIN" in json.dumps(getattr(exc, "response", ""), default=str):
            log.error("streamer login refused: %s", text)
            return Failure(f"login refused: {text}", login_refused=True)
        return Failure(f"request refused: {text}")
    if isinstance(exc, StreamTimeoutError):
        return Failure(f"missing heartbeat: {exc}")
    status = http_status(exc)
    if status is not None:
        refused = status == 401
        if refused:
            # The access token was refused: a refused login too; refresh before retrying.
            log.error("Schwab API refused the access token (HTTP 401); refreshing it")
        return Failure(
            f"HTTP {status} from the Schwab API", connect_error=True, login_refused=refused
        )
    if isinstance(exc, (*NETWORK_ERRORS, *http_errors())):
        return Failure(f"connection error: {type(exc).__name__}: {exc}", connect_error=True)
    if isinstance(exc, WebSocketException):
        return Failure(f"websocket closed: {type(exc).__name__}: {exc}")
    if isinstance(exc, (StreamProtocolError, UnexpectedResponse, UnparsableMessage)):
        return Failure(f"protocol error: {exc}")
    log.error("unexpected streamer failure", exc_info=exc)
    return Failure(f"error: {type(exc).__name__}: {exc}")
