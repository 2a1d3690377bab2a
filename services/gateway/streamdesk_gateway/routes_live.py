"""The live WebSocket feed: every committed-flush message, verbatim, to each client."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from .state import State

router = APIRouter()


@router.websocket("/ws")
async def ws(socket: WebSocket) -> None:
    state: State = socket.app.state.sd
    await socket.accept()
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
