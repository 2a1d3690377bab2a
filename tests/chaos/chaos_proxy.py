"""A small asyncio TCP proxy that services reach Postgres and Redis through, so the chaos
harness can add latency and cut connections (as asyncpg's own tests put a proxy in front of
the server).

It runs its own event loop in a daemon thread, so the harness's blocking calls never stall
the traffic it forwards. Faults:

* ``set_latency(seconds)``: every chunk, in both directions, is held this long before it is
  forwarded (order is kept: one pump per direction);
* ``cut()``: abort every open connection now (both sides see a reset); new connections are
  accepted as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from streamdesk_dev.localservers import free_port


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:upstream_port``."""

    def __init__(self, upstream_port: int, name: str, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.name = name
        self.port = port or free_port()
        self.latency = 0.0
        self.cuts = 0
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> None:
        """Start the proxy thread and wait until it listens."""
        self._thread = threading.Thread(target=self._main, name=f"proxy-{self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"proxy {self.name} did not start")
        if self._error is not None:
            raise RuntimeError(f"proxy {self.name} failed to start") from self._error

    def stop(self, timeout: float = 10.0) -> None:
        """Close the listener and every connection; join the thread (bounded)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() or ignored after stop
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self._server.close()
            self._abort_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)

    # ------------------------------------------------------------------ faults
    def set_latency(self, seconds: float) -> None:
        """Hold every forwarded chunk ``seconds`` (0 = off)."""
        self.latency = max(0.0, seconds)

    def cut(self) -> int:
        """Abort every open connection; return how many were open."""
        loop = self._loop
        if loop is None:
            return 0
        fut = asyncio.run_coroutine_threadsafe(self._cut(), loop)
        return fut.result(10.0)

    async def _cut(self) -> int:
        self.cuts += 1
        return self._abort_all()

    def _abort_all(self) -> int:
        writers = list(self._writers)
        for w in writers:
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._writers.clear()
        return len(writers) // 2

    # ------------------------------------------------------------------ forwarding
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.upstream_port), 5.0
            )
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (writer, up_writer):
                self._writers.discard(w)
                with contextlib.suppress(Exception):
                    w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if self.latency:
                await asyncio.sleep(self.latency)
            writer.write(data)
            await writer.drain()

    def snapshot(self) -> dict[str, Any]:
        """Counters for the report."""
        return {"connections": self.connections, "cuts": self.cuts, "latency": self.latency}
