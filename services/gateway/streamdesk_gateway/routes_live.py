"""The live WebSocket feed: every committed-flush message, verbatim, to each client."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from .guard import WS_SUBPROTOCOL
from .state import State

router = APIRouter()


@router.websocket("/ws")
async def ws(socket: WebSocket) -> None:
    state: State = socket.app.state.sd
    # A browser that offered subprotocols fails the handshake unless one is selected; the
    # credential-carrying one (guard.py) is never echoed back.
    offered = socket.scope.get("subprotocols") or ()
    await socket.accept(subprotocol=WS_SUBPROTOCOL if WS_SUBPROTOCOL in offered else None)
    if state.fanout is None:
        await socket.close(code=1013)
        return
    client = state.fanout.add()
    try:
        while True:
            try:
                message = await asyncio.wait_for(client.queue.get(), timeout=15.0)
            except TimeoutError:
                message = json.dumps({"type": "ping"})
            await socket.send_text(message)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        state.fanout.remove(client)
