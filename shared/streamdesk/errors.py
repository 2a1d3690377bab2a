"""The two kinds of error every service tells apart, and which library errors are which.

Modelled on freqtrade's ``exceptions.py``:

- :class:`TemporaryError` - a reconnect or a later retry may cure it (a dropped connection, a
  timeout, a database restarting, HTTP 5xx/429). Retried with back-off
  (:class:`streamdesk.backoff.Backoff`), counted, logged at WARNING.
- :class:`OperationalError` - retrying will not help until a person acts (an expired or
  refused Schwab token, a missing token file, refused credentials, broken configuration). The
  service stops the affected work, logs at ERROR/CRITICAL, and raises an alert; it does not
  crash-loop.

Library errors are not wrapped at every call site: :func:`is_temporary` (and the tuples it is
built from) answers "is this one of the temporary kind?" for asyncpg, redis-py, httpx/httpx2
and the operating system, in one place.
"""

from __future__ import annotations

import functools
import sys

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError


class StreamDeskError(Exception):
    """Base of StreamDesk's own errors."""


class TemporaryError(StreamDeskError):
    """A failure that a retry with back-off may cure."""


class OperationalError(StreamDeskError):
    """A failure that needs a person (credentials, tokens, configuration): stop and alert."""


@functools.cache
def http_errors() -> tuple[type[Exception], ...]:
    """Every httpx/httpx2 error class (transport errors and ``HTTPStatusError``).

    A function, not a constant, so that a service that never speaks HTTP (health) does not
    pay for importing httpx. schwab-py's sessions come from authlib, which runs on httpx2 (a
    fork with its own exception classes) when that is installed, else on httpx: both count.
    """
    import httpx  # deliberately lazy

    types: list[type[Exception]] = [httpx.HTTPError]
    try:
        import httpx2
    except ImportError:  # pragma: no cover - depends on the installed authlib stack
        pass
    else:
        types.append(httpx2.HTTPError)
    return tuple(types)


def __getattr__(name: str) -> tuple[type[Exception], ...]:
    # ``HTTP_ERRORS`` reads like a constant but is built (and httpx imported) on first use.
    if name == "HTTP_ERRORS":
        return http_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Connection-level failures of the operating system and of ``asyncio.wait_for``.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, ConnectionError)

#: Postgres errors that a new attempt (possibly on a new connection) may cure: the server
#: restarting or refusing connections for now, a lost connection, lock conflicts.
POSTGRES_TEMPORARY: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,  # admin shutdown, crash shutdown
    asyncpg.InsufficientResourcesError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.InterfaceError,
    *NETWORK_ERRORS,
)

#: Redis errors that a reconnect may cure.
REDIS_TEMPORARY: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    *NETWORK_ERRORS,
)

#: Any Redis failure, temporary or not (a refused command too): what a best-effort step
#: (publishing a notification, recording usage, releasing a lease) counts and swallows.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, *REDIS_TEMPORARY)

#: HTTP statuses that mean "try again later".
TEMPORARY_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def http_status(exc: BaseException) -> int | None:
    """The HTTP status carried by an httpx/httpx2 ``HTTPStatusError``, else None."""
    if type(exc).__name__ != "HTTPStatusError":
        return None
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def is_temporary(exc: BaseException) -> bool:
    """True if ``exc`` is of the temporary kind (retry with back-off), False otherwise.

    Our own :class:`TemporaryError` and :class:`OperationalError` say so themselves; an
    ``HTTPStatusError`` is temporary for :data:`TEMPORARY_HTTP_STATUS` only; other httpx
    errors (transport, timeouts), network, Postgres connection-level and Redis connection
    errors are temporary.
    """
    if isinstance(exc, TemporaryError):
        return True
    if isinstance(exc, OperationalError):
        return False
    status = http_status(exc)
    if status is not None:
        return status in TEMPORARY_HTTP_STATUS
    if isinstance(exc, (*POSTGRES_TEMPORARY, *REDIS_TEMPORARY)):
        return True
    # No httpx error can exist unless httpx (or httpx2) was imported.
    loaded = "httpx" in sys.modules or "httpx2" in sys.modules
    return loaded and isinstance(exc, http_errors())
