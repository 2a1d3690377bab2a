"""What the route modules share: the simulator as a dependency, Schwab's error body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.requests import HTTPConnection
from fastapi.responses import JSONResponse

from streamdesk_sim.sim import Sim


async def get_sim(conn: HTTPConnection) -> Sim:
    """The app's simulator (``app.state.sim``, set by ``create_app``).

    ``async`` so that FastAPI calls it on the event loop, not in its thread pool: the
    simulator is single-threaded by design.
    """
    sim: Sim = conn.app.state.sim
    return sim


SimDep = Annotated[Sim, Depends(get_sim)]


def error(status: int, message: str) -> JSONResponse:
    """A Schwab-shaped error response."""
    return JSONResponse({"message": message, "errors": [message]}, status_code=status)
