"""Operations: service status, Schwab token and re-authentication, universe, kill switch.

The control plane itself (Postgres tables, Redis announcement) is ``streamdesk.control``;
these routes only validate, call it and shape the answers. Token contents are never returned
or logged: only the file's age.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from streamdesk import control
from streamdesk.cli_auth import LoginError, complete_login, redirect_state, start_login
from streamdesk.constants import ops_auth_key
from streamdesk.errors import NETWORK_ERRORS, http_errors
from streamdesk.tokens import TokenStore

from .ops_models import (
    AuthCompleteIn,
    AuthCompleteOut,
    AuthStartOut,
    KillSwitchIn,
    KillSwitchOut,
    OpsError,
    PauseOut,
    StatusOut,
    TokenOut,
    UniverseIn,
    UniverseOut,
)
from .ops_status import market_status, read_health, services_status, token_status
from .state import State, get_state

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])
StateDep = Annotated[State, Depends(get_state)]

#: A started browser login is valid this long (seconds).
AUTH_PENDING_TTL = 600
#: Bound of one token exchange with the broker (seconds).
AUTH_EXCHANGE_TIMEOUT = 15.0

Responses = dict[int | str, dict[str, Any]]
R404: Responses = {404: {"model": OpsError, "description": "Unknown service or symbol."}}
R422: Responses = {
    422: {"model": OpsError, "description": "Invalid input (the reason in `error`)."}
}
R409: Responses = {409: {"model": OpsError, "description": "The universe is full."}}
R502: Responses = {
    502: {"model": OpsError, "description": "The broker's token endpoint is unreachable."}
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _defaults(state: State) -> control.UniverseSpec:
    s = state.settings
    return control.UniverseSpec.of(s.tickers, s.option_underlyings)


# ------------------------------------------------------------------ status


@router.get("/api/status")
async def status(state: StateDep) -> StatusOut:
    """Market session, kill switch, health summary and every service's heartbeat."""
    now = state.clock.now()
    kill = await control.read_kill_switch(state.db)
    paused = await control.read_paused(state.db)
    services = await services_status(state.r, state.clock.time(), paused)
    return StatusOut(
        now=now.isoformat(),
        market=market_status(now, state.settings.market_hours),
        kill_switch=kill.engaged,
        health=await read_health(state.r),
        services=services,
    )


# ------------------------------------------------------------------ token


@router.get("/api/ops/token")
async def token(state: StateDep) -> TokenOut:
    """Age of the Schwab token file and the time left of its refresh token's 7 days."""
    store = TokenStore(state.settings.schwab_token_path, clock=state.clock)
    return await asyncio.to_thread(token_status, store, state.clock)


@router.post("/api/ops/auth/start")
async def auth_start(state: StateDep) -> AuthStartOut:
    """Start the manual login of ``streamdesk auth``: open ``authorize_url`` in a browser."""
    started = start_login(state.settings)
    await state.r.set(ops_auth_key(started.state), b"1", ex=AUTH_PENDING_TTL)
    return AuthStartOut(authorize_url=started.authorize_url, state=started.state)


@router.post("/api/ops/auth/complete", response_model=AuthCompleteOut, responses={**R422, **R502})
async def auth_complete(state: StateDep, body: AuthCompleteIn) -> Any:
    """Paste the address the browser was redirected to; the token file is replaced."""
    try:
        login_state = redirect_state(state.settings, body.redirect_url)
    except LoginError as exc:
        return _error(422, str(exc))
    if not await state.r.getdel(ops_auth_key(login_state)):
        return _error(422, "unknown or expired login (start it again)")
    try:
        await asyncio.wait_for(
            asyncio.to_thread(
                complete_login,
                state.settings,
                login_state,
                body.redirect_url,
                clock=state.clock,
                timeout=AUTH_EXCHANGE_TIMEOUT - 5,
            ),
            AUTH_EXCHANGE_TIMEOUT,
        )
    except LoginError as exc:
        return _error(422, str(exc))
    except NETWORK_ERRORS as exc:
        log.warning("token exchange failed: %s", type(exc).__name__)
        return _error(502, f"the broker's token endpoint is unreachable ({type(exc).__name__})")
    except http_errors() as exc:  # httpx/httpx2 transport errors are not OSError
        log.warning("token exchange failed: %s", type(exc).__name__)
        return _error(502, f"the broker's token endpoint failed ({type(exc).__name__})")
    log.info("Schwab login completed from the operations panel; token written")
    return AuthCompleteOut(ok=True)


# ------------------------------------------------------------------ pause


async def _pause(state: State, name: str, paused: bool) -> Any:
    try:
        value = await control.set_paused(state.db, name, paused, redis=state.r, clock=state.clock)
    except control.UnknownServiceError as exc:
        return _error(404, str(exc))
    return PauseOut(name=name, paused=value)


ServiceName = Annotated[str, Path(max_length=64, description="streamer or trade-executor")]


@router.post("/api/ops/services/{name}/pause", response_model=PauseOut, responses=R404)
async def pause(state: StateDep, name: ServiceName) -> Any:
    """Pause a service: the streamer unsubscribes, the executor stops claiming trades."""
    return await _pause(state, name, True)


@router.post("/api/ops/services/{name}/resume", response_model=PauseOut, responses=R404)
async def resume(state: StateDep, name: ServiceName) -> Any:
    """Resume a paused service."""
    return await _pause(state, name, False)


# ------------------------------------------------------------------ universe


@router.get("/api/ops/universe")
async def universe(state: StateDep) -> UniverseOut:
    """The streamed universe (seeded once from TICKERS / OPTION_UNDERLYINGS)."""
    return UniverseOut.of(await control.read_universe(state.db, defaults=_defaults(state)))


@router.post("/api/ops/universe", response_model=UniverseOut, responses={**R422, **R409})
async def universe_add(state: StateDep, body: UniverseIn) -> Any:
    """Add a ticker or option underlying; the streamer subscribes it within seconds."""
    try:
        spec = await control.add_symbol(
            state.db, body.kind, body.symbol, defaults=_defaults(state), redis=state.r
        )
    except control.UniverseFullError as exc:
        return _error(409, str(exc))
    except control.ControlError as exc:
        return _error(422, str(exc))
    return UniverseOut.of(spec)


@router.delete(
    "/api/ops/universe/{kind}/{symbol}", response_model=UniverseOut, responses={**R404, **R422}
)
async def universe_remove(
    state: StateDep,
    kind: Annotated[control.Kind, Path()],
    symbol: Annotated[str, Path(min_length=1, max_length=40)],
) -> Any:
    """Remove a ticker or option underlying; the streamer unsubscribes it."""
    try:
        spec = await control.remove_symbol(
            state.db, kind, symbol, defaults=_defaults(state), redis=state.r
        )
    except control.SymbolNotFoundError as exc:
        return _error(404, str(exc))
    except control.ControlError as exc:
        return _error(422, str(exc))
    return UniverseOut.of(spec)


# ------------------------------------------------------------------ kill switch


@router.get("/api/ops/kill-switch")
async def kill_switch(state: StateDep) -> KillSwitchOut:
    """The kill switch."""
    return KillSwitchOut.of(await control.read_kill_switch(state.db))


@router.post("/api/ops/kill-switch")
async def kill_switch_set(state: StateDep, body: KillSwitchIn) -> KillSwitchOut:
    """Engage or release the kill switch (the executor refuses every order while engaged)."""
    ks = await control.set_kill_switch(
        state.db, body.engaged, body.reason, redis=state.r, clock=state.clock
    )
    return KillSwitchOut.of(ks)
