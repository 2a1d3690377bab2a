"""Logging set-up: JSON lines when stderr is not a terminal, readable lines when it is.

Call :func:`setup_logging` once at a service's entry point; modules use
``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_RESERVED = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with ``extra=`` fields merged in."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    """Readable single lines for a terminal, with ``extra=`` fields as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _RESERVED and not k.startswith("_")
        ]
        return f"{line} {' '.join(extras)}" if extras else line


def setup_logging(service: str, level: str = "INFO", fmt: str = "auto") -> None:
    """Configure the root logger once for ``service``.

    ``fmt`` is ``json``, ``text`` or ``auto`` (JSON unless stderr is a TTY).
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter that would otherwise drown the service's own lines. Some of it
    # must never be on at DEBUG: websockets and schwab.streaming dump whole frames, and the
    # streamer's LOGIN request carries the Schwab access token.
    noisy_loggers = (
        "websockets", "httpx", "httpcore", "asyncio", "uvicorn.access", "authlib",
        "schwab.streaming",
    )  # fmt: skip
    for noisy in noisy_loggers:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
