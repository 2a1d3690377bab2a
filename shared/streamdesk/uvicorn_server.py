"""The uvicorn server the gateway and health share (imported only by those two services).

:class:`IdleServer`'s main loop ticks once a second, not every 0.1 s: uvicorn's loop only
refreshes the second-resolution Date header and checks ``should_exit``, and ten wake-ups a
second were a good part of an idle process's CPU. Setting ``should_exit`` from the loop ends
it at once (from a signal handler, within the second). :func:`serve` turns uvicorn's
``sys.exit`` on a failed start into an exit code.
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn


class IdleServer(uvicorn.Server):
    """uvicorn with a once-a-second main loop that ``should_exit = True`` ends at once."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit = asyncio.Event()
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    async def main_loop(self) -> None:
        counter = 0  # uvicorn refreshes the Date header when counter % 10 == 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)


async def serve(server: uvicorn.Server) -> int:
    """``server.serve()``, with uvicorn's ``sys.exit`` on a failed start turned into a code.

    A ``SystemExit`` raised inside a task escapes the event loop itself and would end a
    process running other services beside this one (``streamdesk-stack``) without a drain.
    """
    try:
        await server.serve()
    except SystemExit as exc:
        return int(exc.code or 1)
    return 0
