"""``market-sim``: run the Schwab-compatible simulator (REST + streamer websocket)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.server import ServerProtocol

from streamdesk.config import ConfigError, load_settings
from streamdesk.log import setup_logging
from streamdesk_sim.app import create_app
from streamdesk_sim.config import Settings
from streamdesk_sim.faults import Faults

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn handles the signals and a bounded shutdown)."""
    app = create_app(settings)
    logging.getLogger("uvicorn.error").addFilter(_QuietInjectedDrops(app.state.sim.faults))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws=ws_protocol(settings.ws_deflate_level),
        ws_per_message_deflate=settings.ws_deflate,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        lifespan="on",
    )
    server = _Server(config, app)
    await server.serve()


def ws_protocol(level: int) -> type[WebSocketsSansIOProtocol]:
    """uvicorn's sans-I/O websocket protocol, compressing at zlib ``level``.

    uvicorn offers permessage-deflate with the library's defaults (zlib level 6, which costs
    ~3 us of simulator CPU per load-mode update); a benchmark driving a client at 100k+
    updates/s sets a cheaper level so the load generator leaves the shared cores to the
    client under test. The client inflates either alike. Same window and memory settings.
    """

    class DeflateLevelProtocol(WebSocketsSansIOProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if self.config.ws_per_message_deflate:
                factory = ServerPerMessageDeflateFactory(
                    server_max_window_bits=12,
                    client_max_window_bits=12,
                    compress_settings={"memLevel": 5, "level": level},
                )
                self.conn = ServerProtocol(
                    extensions=[factory],
                    max_size=self.config.ws_max_size,
                    logger=logging.getLogger("uvicorn.error"),
                )

    return DeflateLevelProtocol


class _Server(uvicorn.Server):
    """Closes streamer sessions first on shutdown, so clients see a prompt close."""

    def __init__(self, config: uvicorn.Config, app: Any) -> None:
        super().__init__(config)
        self.sim = app.state.sim

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.sim.streamer.drop_websockets(1001)
        await super().shutdown(sockets)


class _QuietInjectedDrops(logging.Filter):
    """Replace uvicorn's traceback for an injected connection drop by one line."""

    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults

    def filter(self, record: logging.LogRecord) -> bool:
        if self.faults.drops_pending and record.getMessage().startswith("Exception in ASGI"):
            self.faults.drops_pending -= 1
            log.warning("fault injected: connection dropped after accepting an order")
            return False
        return True


def main() -> int:
    """Entry point of the ``market-sim`` console script."""
    try:
        settings = load_settings(Settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging("market-sim", settings.log_level, settings.log_format)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    log.info("starting market-sim on %s:%s", settings.host, settings.port)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
