"""The gateway's and the health service's uvicorn servers tick once a second while idle (not
uvicorn's ten times), still send a Date header, and stop at once when asked."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
import uvicorn

from streamdesk_gateway.__main__ import _IdleServer as GatewayIdleServer
from streamdesk_gateway.__main__ import _Server as GatewayServer
from streamdesk_health.__main__ import _Server as HealthServer


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


@pytest.mark.parametrize("cls", [GatewayServer, GatewayIdleServer, HealthServer])
async def test_idle_server_ticks_once_a_second_and_stops_at_once(cls: type) -> None:
    port = _free_port()
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server: uvicorn.Server = cls(config)
    ticks: list[float] = []
    on_tick = server.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(time.monotonic())
        return await on_tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=None))
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "never started"
            await asyncio.sleep(0.02)
        reply = await _get(port)
        assert reply.startswith(b"HTTP/1.1 200") and b"\r\ndate: " in reply.lower()
        n0 = len(ticks)
        window = 3.0
        await asyncio.sleep(window)
        # uvicorn's own loop would tick ~30 times in this window
        assert len(ticks) - n0 <= window + 1, ticks
        assert len(ticks) - n0 >= 2  # it still ticks (Date header, max-requests check)
        t0 = time.monotonic()
        server.should_exit = True
        await asyncio.wait_for(task, 5.0)
        assert time.monotonic() - t0 < 0.5
    finally:
        if not task.done():
            server.should_exit = True
            task.cancel()
            await asyncio.wait({task}, timeout=5)
