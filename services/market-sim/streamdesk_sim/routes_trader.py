"""Schwab's trader API: user preferences, the paper account, its orders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from streamdesk_sim._routes import SimDep, error
from streamdesk_sim.faults import OrderFault
from streamdesk_sim.http_faults import hang
from streamdesk_sim.order_validation import OrderError
from streamdesk_sim.orders import parse_schwab_time
from streamdesk_sim.sim import Sim

router = APIRouter()

#: The origin schwab-py addresses (its requests are rewritten to the simulator): the
#: ``Location`` of a placed order names it, as Schwab's does.
ORIGIN = "https://api.schwabapi.com"


@router.get("/trader/v1/userPreference")
async def user_preference(request: Request, sim: SimDep) -> Any:
    settings = sim.settings
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


@router.get("/trader/v1/accounts/accountNumbers")
async def account_numbers(sim: SimDep) -> Any:
    return [{"accountNumber": sim.settings.account_number, "hashValue": sim.account_hash}]


@router.get("/trader/v1/accounts")
async def accounts(sim: SimDep, fields: str | None = None) -> Any:
    return [sim.broker.account_json("positions" in (fields or ""))]


@router.get("/trader/v1/accounts/{account_hash}")
async def account(account_hash: str, sim: SimDep, fields: str | None = None) -> Any:
    if account_hash != sim.account_hash:
        return error(404, "Account not found")
    return sim.broker.account_json("positions" in (fields or ""))


@router.get("/trader/v1/accounts/{account_hash}/orders")
async def list_orders(account_hash: str, request: Request, sim: SimDep) -> Any:
    if account_hash != sim.account_hash:
        return error(404, "Account not found")
    return _query_orders(sim, request)


@router.get("/trader/v1/orders")
async def list_all_orders(request: Request, sim: SimDep) -> Any:
    return _query_orders(sim, request)


@router.post("/trader/v1/accounts/{account_hash}/orders")
async def place_order(account_hash: str, request: Request, sim: SimDep) -> Response:
    if account_hash != sim.account_hash:
        return error(404, "Account not found")
    try:
        spec = await request.json()
        order = sim.broker.place(spec)
    except OrderError as exc:
        return error(400, str(exc))
    except ValueError:
        return error(400, "body must be JSON")
    return await _order_created(sim, request, account_hash, order["orderId"])


@router.get("/trader/v1/accounts/{account_hash}/orders/{order_id}")
async def get_order(account_hash: str, order_id: int, sim: SimDep) -> Any:
    order = sim.broker.orders.get(order_id)
    if account_hash != sim.account_hash or order is None:
        return error(404, "Order not found")
    return order


@router.delete("/trader/v1/accounts/{account_hash}/orders/{order_id}")
async def cancel_order(account_hash: str, order_id: int, sim: SimDep) -> Response:
    if account_hash != sim.account_hash:
        return error(404, "Account not found")
    ok, message = sim.broker.cancel(order_id)
    if not ok:
        return error(404 if message == "Order not found" else 400, message)
    return Response(status_code=200)


@router.put("/trader/v1/accounts/{account_hash}/orders/{order_id}")
async def replace_order(
    account_hash: str, order_id: int, request: Request, sim: SimDep
) -> Response:
    if account_hash != sim.account_hash:
        return error(404, "Account not found")
    try:
        spec = await request.json()
        new = sim.broker.replace(order_id, spec)
    except KeyError:
        return error(404, "Order not found")
    except OrderError as exc:
        return error(400, str(exc))
    except ValueError:
        return error(400, "body must be JSON")
    return await _order_created(sim, request, account_hash, new["orderId"])


def _query_orders(sim: Sim, request: Request) -> Any:
    """The orders matching the request's Schwab filters (400 for a malformed filter)."""
    q = request.query_params
    max_results = q.get("maxResults")
    try:
        return sim.broker.query(
            from_time=parse_schwab_time(q["fromEnteredTime"]) if q.get("fromEnteredTime") else None,
            to_time=parse_schwab_time(q["toEnteredTime"]) if q.get("toEnteredTime") else None,
            status=q.get("status"),
            max_results=int(max_results) if max_results else None,
        )
    except ValueError as exc:
        return error(400, f"bad filter: {exc}")


async def _order_created(sim: Sim, request: Request, account_hash: str, order_id: int) -> Response:
    """The 201 of an accepted order, or what the current order fault makes of it."""
    fault = sim.faults.take_order()
    location = f"{ORIGIN}/trader/v1/accounts/{account_hash}/orders/{order_id}"
    if fault is OrderFault.ERROR_500:
        return error(500, "Internal server error")
    if fault is OrderFault.NO_LOCATION:
        return Response(status_code=201)
    if fault is OrderFault.DROP:
        request.scope["state"]["drop_connection"] = True
        return Response(status_code=201)
    if fault is OrderFault.HANG:
        await hang(sim.faults)
    return Response(status_code=201, headers={"Location": location})
