"""The streamer websocket endpoint (``streamerInfo.streamerSocketUrl`` points here)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from streamdesk_sim._routes import SimDep

router = APIRouter()


@router.websocket("/ws")
async def streamer(ws: WebSocket, sim: SimDep) -> None:
    await sim.streamer.serve_ws(ws)
