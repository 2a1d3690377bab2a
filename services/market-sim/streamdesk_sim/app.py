"""FastAPI application: Schwab's REST subset, the streamer websocket and admin endpoints."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse

from streamdesk_sim import marketdata
from streamdesk_sim.config import Settings
from streamdesk_sim.faults import OrderFault
from streamdesk_sim.order_validation import OrderError
from streamdesk_sim.orders import parse_schwab_time
from streamdesk_sim.sim import Sim

log = logging.getLogger(__name__)

ORIGIN = "https://api.schwabapi.com"
MAX_HANG = 300.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class DropConnection(Exception):
    """Raised after a response has started so the server cuts the connection (fault)."""


class FaultMiddleware:
    """Applies HTTP delay/hang faults and the order "drop the connection" fault."""

    def __init__(self, app: ASGIApp, sim: Sim) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        delay, hang = self.sim.faults.take_http(scope["path"])
        if hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sim.faults.released.wait(), MAX_HANG)
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
                self.sim.faults.drops_pending += 1
                raise DropConnection("fault: connection dropped after accepting the order")
            await send(message)

        await self.app(scope, receive, guarded_send)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "errors": [message]}, status_code=status)


def create_app(settings: Settings, sim: Sim | None = None) -> FastAPI:
    """Build the ASGI app (the market loops run in its lifespan)."""
    sim = sim or Sim(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        loops = asyncio.create_task(sim.ticker.run_loops(stop), name="market-loops")
        log.info(
            "market-sim ready",
            extra={
                "seed": settings.seed,
                "clock": settings.clock.value,
                "load": settings.load_symbols,
            },
        )
        try:
            yield
        finally:
            stop.set()
            sim.faults.clear()
            sim.streamer.drop_websockets(1001)
            try:
                await asyncio.wait_for(loops, settings.shutdown_timeout)
            except TimeoutError:
                log.warning("market loops did not stop in time")

    app = FastAPI(title="StreamDesk market-sim", lifespan=lifespan, docs_url="/admin/docs")
    app.state.sim = sim
    app.add_middleware(FaultMiddleware, sim=sim)

    def bearer_ok(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return False
        return sim.tokens.check(auth[7:].strip(), "a") is not None

    @app.middleware("http")
    async def require_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith(("/trader/", "/marketdata/")) and not bearer_ok(request):
            return JSONResponse(_unauth_body(), status_code=401)
        return await call_next(request)

    # ------------------------------------------------------------------ OAuth

    @app.get("/v1/oauth/authorize")
    async def authorize(request: Request) -> Response:
        q = request.query_params
        redirect = q.get("redirect_uri")
        if not redirect:
            return _error(400, "redirect_uri is required")
        params = {"code": "market-sim-code", "session": "sim"}
        if q.get("state"):
            params["state"] = q["state"]
        sep = "&" if "?" in redirect else "?"
        return RedirectResponse(redirect + sep + urlencode(params), status_code=302)

    @app.post("/v1/oauth/token")
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        key, secret = _client_credentials(request, form)
        if (settings.app_key and key != settings.app_key) or (
            settings.app_secret and secret != settings.app_secret
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Unauthorized client"},
                status_code=401,
            )
        grant = form.get("grant_type")
        if grant == "authorization_code":
            if not form.get("code"):
                return JSONResponse(
                    {"error": "invalid_request", "error_description": "code is required"},
                    status_code=400,
                )
            return JSONResponse(sim.tokens.issue())
        if grant == "refresh_token":
            info = sim.tokens.check(str(form.get("refresh_token", "")), "r")
            if info is None:
                return JSONResponse(
                    {
                        "error": "refresh_token_authentication_error",
                        "error_description": "Failed refresh token authentication",
                    },
                    status_code=400,
                )
            return JSONResponse(sim.tokens.issue(login=info.login))
        return JSONResponse(
            {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r}"},
            status_code=400,
        )

    # ------------------------------------------------------------------ trader

    @app.get("/trader/v1/userPreference")
    async def user_preference(request: Request) -> Any:
        host = request.headers.get("host") or f"{settings.host}:{settings.port}"
        n = settings.account_number
        return {
            "accounts": [
                {
                    "accountNumber": n,
                    "primaryAccount": True,
                    "type": "BROKERAGE",
                    "nickName": "Paper (market-sim)",
                    "accountColor": "Green",
                    "displayAcctId": "..." + n[-3:],
                    "autoPositionEffect": False,
                }
            ],
            "streamerInfo": [
                {
                    "streamerSocketUrl": f"ws://{host}/ws",
                    "schwabClientCustomerId": sim.customer_id,
                    "schwabClientCorrelId": sim.correl_id,
                    "schwabClientChannel": "N9",
                    "schwabClientFunctionId": "APIAPP",
                }
            ],
            "offers": [{"level2Permissions": True, "mktDataPermission": "NP"}],
        }

    @app.get("/trader/v1/accounts/accountNumbers")
    async def account_numbers() -> Any:
        return [{"accountNumber": settings.account_number, "hashValue": sim.account_hash}]

    @app.get("/trader/v1/accounts")
    async def accounts(fields: str | None = None) -> Any:
        return [sim.broker.account_json("positions" in (fields or ""))]

    @app.get("/trader/v1/accounts/{account_hash}")
    async def account(account_hash: str, fields: str | None = None) -> Any:
        if account_hash != sim.account_hash:
            return _error(404, "Account not found")
        return sim.broker.account_json("positions" in (fields or ""))

    def order_filters(request: Request) -> dict[str, Any]:
        q = request.query_params
        max_results = q.get("maxResults")
        return {
            "from_time": parse_schwab_time(q["fromEnteredTime"])
            if q.get("fromEnteredTime")
            else None,
            "to_time": parse_schwab_time(q["toEnteredTime"]) if q.get("toEnteredTime") else None,
            "status": q.get("status"),
            "max_results": int(max_results) if max_results else None,
        }

    @app.get("/trader/v1/accounts/{account_hash}/orders")
    async def list_orders(account_hash: str, request: Request) -> Any:
        if account_hash != sim.account_hash:
            return _error(404, "Account not found")
        try:
            return sim.broker.query(**order_filters(request))
        except ValueError as exc:
            return _error(400, f"bad filter: {exc}")

    @app.get("/trader/v1/orders")
    async def list_all_orders(request: Request) -> Any:
        try:
            return sim.broker.query(**order_filters(request))
        except ValueError as exc:
            return _error(400, f"bad filter: {exc}")

    @app.post("/trader/v1/accounts/{account_hash}/orders")
    async def place_order(account_hash: str, request: Request) -> Response:
        if account_hash != sim.account_hash:
            return _error(404, "Account not found")
        try:
            spec = await request.json()
            order = sim.broker.place(spec)
        except OrderError as exc:
            return _error(400, str(exc))
        except ValueError:
            return _error(400, "body must be JSON")
        return await _order_created(request, account_hash, order["orderId"])

    async def _order_created(request: Request, account_hash: str, order_id: int) -> Response:
        fault = sim.faults.take_order()
        location = f"{ORIGIN}/trader/v1/accounts/{account_hash}/orders/{order_id}"
        if fault is OrderFault.ERROR_500:
            return _error(500, "Internal server error")
        if fault is OrderFault.NO_LOCATION:
            return Response(status_code=201)
        if fault is OrderFault.DROP:
            request.scope["state"]["drop_connection"] = True
            return Response(status_code=201)
        if fault is OrderFault.HANG:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sim.faults.released.wait(), MAX_HANG)
        return Response(status_code=201, headers={"Location": location})

    @app.get("/trader/v1/accounts/{account_hash}/orders/{order_id}")
    async def get_order(account_hash: str, order_id: int) -> Any:
        order = sim.broker.orders.get(order_id)
        if account_hash != sim.account_hash or order is None:
            return _error(404, "Order not found")
        return order

    @app.delete("/trader/v1/accounts/{account_hash}/orders/{order_id}")
    async def cancel_order(account_hash: str, order_id: int) -> Response:
        if account_hash != sim.account_hash:
            return _error(404, "Account not found")
        ok, message = sim.broker.cancel(order_id)
        if not ok:
            return _error(404 if message == "Order not found" else 400, message)
        return Response(status_code=200)

    @app.put("/trader/v1/accounts/{account_hash}/orders/{order_id}")
    async def replace_order(account_hash: str, order_id: int, request: Request) -> Response:
        if account_hash != sim.account_hash:
            return _error(404, "Account not found")
        try:
            spec = await request.json()
            new = sim.broker.replace(order_id, spec)
        except KeyError:
            return _error(404, "Order not found")
        except OrderError as exc:
            return _error(400, str(exc))
        except ValueError:
            return _error(400, "body must be JSON")
        return await _order_created(request, account_hash, new["orderId"])

    # ------------------------------------------------------------------ market data

    @app.get("/marketdata/v1/quotes")
    async def quotes(symbols: str = "", fields: str | None = None) -> Any:
        out: dict[str, Any] = {}
        for sym in [s.strip() for s in symbols.split(",") if s.strip()]:
            out[sym] = marketdata.quote(sim, sym)
        return out

    @app.get("/marketdata/v1/{symbol}/quotes")
    async def single_quote(symbol: str) -> Any:
        return {symbol: marketdata.quote(sim, symbol)}

    @app.get("/marketdata/v1/chains")
    async def chains(request: Request) -> Any:
        q = dict(request.query_params)
        symbol = q.pop("symbol", "")
        if not symbol:
            return _error(400, "symbol is required")
        try:
            return marketdata.option_chain(sim, symbol.upper(), q)
        except (ValueError, OverflowError) as exc:
            return _error(400, str(exc))

    @app.get("/marketdata/v1/expirationchain")
    async def expiration_chain(symbol: str) -> Any:
        return marketdata.expiration_chain(sim, symbol.upper())

    @app.get("/marketdata/v1/pricehistory")
    async def price_history(request: Request) -> Any:
        q = dict(request.query_params)
        try:
            return marketdata.price_history(sim, q)
        except (ValueError, OverflowError) as exc:
            return _error(400, str(exc))

    @app.get("/marketdata/v1/markets")
    async def markets(markets: str = "equity", date: str | None = None) -> Any:
        try:
            return marketdata.market_hours(sim, markets.split(","), date)
        except (ValueError, OverflowError) as exc:
            return _error(400, str(exc))

    @app.get("/marketdata/v1/markets/{market_id}")
    async def market(market_id: str, date: str | None = None) -> Any:
        try:
            return marketdata.market_hours(sim, [market_id], date)
        except (ValueError, OverflowError) as exc:
            return _error(400, str(exc))

    # ------------------------------------------------------------------ websocket

    @app.websocket("/ws")
    async def streamer(ws: WebSocket) -> None:
        await sim.streamer.serve_ws(ws)

    # ------------------------------------------------------------------ admin

    from streamdesk_sim.admin import register_admin

    register_admin(app, sim)
    return app


def _unauth_body() -> dict[str, Any]:
    return {
        "errors": [{"status": "401", "title": "Unauthorized", "detail": "invalid access token"}]
    }


def _client_credentials(request: Request, form: Any) -> tuple[str | None, str | None]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            key, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None, None
        return key, secret
    return form.get("client_id"), form.get("client_secret")


def utcnow() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)
