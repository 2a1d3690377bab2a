"""HTTP fault injection: delayed or hung REST answers, a connection cut after an order.

The switches are set through ``/admin/faults/...`` (:mod:`~streamdesk_sim.routes_admin`) and
live in :class:`~streamdesk_sim.faults.Faults`; this module applies them to requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from streamdesk_sim.faults import Faults

#: The longest a hung request waits for ``/admin/faults/clear``, s.
MAX_HANG = 300.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class DropConnection(Exception):
    """Raised after a response has started so the server cuts the connection (fault)."""


async def hang(faults: Faults) -> None:
    """Wait until the faults are cleared (at most ``MAX_HANG``)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(faults.released.wait(), MAX_HANG)


class FaultMiddleware:
    """Applies HTTP delay/hang faults and the order "drop the connection" fault.

    A route asks for the drop by setting ``request.scope["state"]["drop_connection"]``.
    """

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        delay, hung = self.faults.take_http(scope["path"])
        if hung:
            await hang(self.faults)
        elif delay:
            await asyncio.sleep(delay)
        state: dict[str, Any] = scope.setdefault("state", {})

        async def guarded_send(message: Message) -> None:
            if state.get("drop_connection") and message["type"] == "http.response.start":
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", b"64")],
                    }
                )
                self.faults.drops_pending += 1
                raise DropConnection("fault: connection dropped after accepting the order")
            await send(message)

        await self.app(scope, receive, guarded_send)
