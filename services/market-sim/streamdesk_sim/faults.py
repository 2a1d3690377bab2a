"""Fault switches set through /admin/faults/... (tests make the simulator misbehave)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import StrEnum


class OrderFault(StrEnum):
    """What the next order placements suffer."""

    ERROR_500 = "500_after_accept"  # order created, the response is a 500
    NO_LOCATION = "no_location"  # 201 without the Location header
    DROP = "drop_after_accept"  # order created, the connection is cut before a response
    HANG = "hang_after_accept"  # order created, the response never comes (until cleared)


@dataclass
class Faults:
    """Current fault state; every switch is cleared by :meth:`clear`."""

    http_delay: float = 0.0
    http_hang: bool = False
    http_path_prefix: str = ""
    http_remaining: int | None = None  # None = until cleared
    order_fault: OrderFault | None = None
    order_remaining: int | None = None
    ws_paused_until: float = 0.0  # monotonic; inf = until resumed
    drops_pending: int = 0  # injected drops whose server error log is expected
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def clear(self) -> None:
        """Back to normal; wakes every hung request."""
        self.http_delay = 0.0
        self.http_hang = False
        self.http_path_prefix = ""
        self.http_remaining = None
        self.order_fault = None
        self.order_remaining = None
        self.ws_paused_until = 0.0
        self.released.set()
        self.released = asyncio.Event()

    def ws_paused(self) -> bool:
        """True while the stream is told to stop sending."""
        return time.monotonic() < self.ws_paused_until

    def take_http(self, path: str) -> tuple[float, bool]:
        """(delay, hang) for a request to ``path``; consumes one use of a counted fault."""
        if not (self.http_delay or self.http_hang) or path.startswith("/admin"):
            return 0.0, False
        if not path.startswith(self.http_path_prefix):
            return 0.0, False
        delay, hang = self.http_delay, self.http_hang
        if self.http_remaining is not None:
            self.http_remaining -= 1
            if self.http_remaining <= 0:
                self.http_delay, self.http_hang, self.http_remaining = 0.0, False, None
        return delay, hang

    def take_order(self) -> OrderFault | None:
        """The fault for this order placement, consuming one use."""
        fault = self.order_fault
        if fault is not None and self.order_remaining is not None:
            self.order_remaining -= 1
            if self.order_remaining <= 0:
                self.order_fault, self.order_remaining = None, None
        return fault

    def snapshot(self) -> dict[str, object]:
        """JSON view for /admin/state."""
        paused = self.ws_paused_until - time.monotonic()
        return {
            "http_delay": self.http_delay,
            "http_hang": self.http_hang,
            "http_path_prefix": self.http_path_prefix,
            "http_remaining": self.http_remaining,
            "order_fault": self.order_fault.value if self.order_fault else None,
            "order_remaining": self.order_remaining,
            "ws_paused_seconds": None
            if paused <= 0
            else (-1 if paused == float("inf") else paused),
        }
