"""Sim control: admin and fault-injection endpoints under ``/admin`` (tests, demos, benchmarks).

No token needed, never delayed by HTTP faults (:meth:`~streamdesk_sim.faults.Faults.take_http`
skips ``/admin``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from streamdesk_sim._routes import SimDep
from streamdesk_sim.faults import OrderFault

router = APIRouter()


class HttpFault(BaseModel):
    """Delay or hang REST responses (optionally only under ``path_prefix``, ``count`` times)."""

    delay: float = Field(default=0.0, ge=0, le=300)
    hang: bool = False
    path_prefix: str = ""
    count: int | None = Field(default=None, ge=1)


class OrderFaultBody(BaseModel):
    """Misbehave on the next ``count`` order placements (None = until cleared)."""

    mode: OrderFault
    count: int | None = Field(default=1, ge=1)


class PauseBody(BaseModel):
    """Stop sending on every websocket for ``seconds`` (None = until resumed)."""

    seconds: float | None = Field(default=None, gt=0)


class ExpireBody(BaseModel):
    """Which tokens to revoke."""

    access: bool = True
    refresh: bool = False


class PriceBody(BaseModel):
    """Move an equity's market to ``price`` (with ``trade``: a trade prints there too)."""

    price: float = Field(gt=0, strict=True)  # strict: ``true`` is not a price
    trade: bool = Field(default=True, strict=True)  # False: only the quote moves


class LoadBody(BaseModel):
    """New aggregate load-mode rate (updates/s)."""

    rate: float = Field(gt=0, le=1_000_000)


class ResetBody(BaseModel):
    """Reset the paper account (orders, positions, cash)."""

    cash: float | None = Field(default=None, ge=0, strict=True)


@router.get("/admin/health")
async def health(sim: SimDep) -> Any:
    return {"status": "ok", "connections": len(sim.streamer.connections)}


@router.get("/admin/state")
async def state(sim: SimDep) -> Any:
    return {
        "seed": sim.settings.seed,
        "clock": sim.settings.clock.value,
        "sim_time_ms": sim.clock.now_ms(),
        "market_open": sim.clock.is_open(),
        "account_hash": sim.account_hash,
        "account_number": sim.settings.account_number,
        "connections": [
            {
                "id": c.id,
                "logged_in": c.logged_in,
                "subscriptions": {k: len(v) for k, v in c.subs.items()},
                "queued": c.queue.qsize(),
            }
            for c in sim.streamer.connections.values()
        ],
        "equity_steps": sim.ticker.equity_steps,
        "simulated_equities": len(sim.market.equities),
        "simulated_options": len(sim.market.options),
        "stats": sim.ticker.stats,
        "faults": sim.faults.snapshot(),
    }


@router.get("/admin/sent")
async def sent_summary(sim: SimDep, service: str | None = None) -> Any:
    return sim.sent.summary(service)


@router.get("/admin/sent/{service}/{symbol}")
async def sent_symbol(service: str, symbol: str, sim: SimDep, since: int = 0) -> Any:
    return sim.sent.entries(service.upper(), symbol, since)


@router.post("/admin/sent/reset")
async def sent_reset(sim: SimDep) -> Any:
    sim.sent.reset()
    return {"ok": True}


@router.post("/admin/faults/clear")
async def clear(sim: SimDep) -> Any:
    sim.faults.clear()
    return sim.faults.snapshot()


@router.post("/admin/faults/ws/drop")
async def ws_drop(sim: SimDep) -> Any:
    return {"dropped": sim.streamer.drop_websockets(1011)}


@router.post("/admin/faults/ws/pause")
async def ws_pause(body: PauseBody, sim: SimDep) -> Any:
    sim.faults.ws_paused_until = (
        float("inf") if body.seconds is None else time.monotonic() + body.seconds
    )
    return sim.faults.snapshot()


@router.post("/admin/faults/ws/resume")
async def ws_resume(sim: SimDep) -> Any:
    sim.faults.ws_paused_until = 0.0
    return sim.faults.snapshot()


@router.post("/admin/faults/http")
async def http_fault(body: HttpFault, sim: SimDep) -> Any:
    f = sim.faults
    f.http_delay, f.http_hang = body.delay, body.hang
    f.http_path_prefix, f.http_remaining = body.path_prefix, body.count
    return f.snapshot()


@router.post("/admin/faults/orders")
async def order_fault(body: OrderFaultBody, sim: SimDep) -> Any:
    sim.faults.order_fault, sim.faults.order_remaining = body.mode, body.count
    return sim.faults.snapshot()


@router.post("/admin/faults/tokens/expire")
async def expire(body: ExpireBody, sim: SimDep) -> Any:
    sim.tokens.revoke(access=body.access, refresh=body.refresh)
    return {"access_revoked": body.access, "refresh_revoked": body.refresh}


@router.post("/admin/market/{symbol}/price")
async def set_price(symbol: str, body: PriceBody, sim: SimDep) -> Any:
    eq = sim.market.equity(symbol.upper())
    changes = eq.set_price(body.price, sim.clock.now_ms(), trade=body.trade)
    sim.ticker.fan_out_equities({eq.symbol: changes})
    sim.broker.on_market({eq.symbol: changes})
    return {"symbol": eq.symbol, "bid": eq.bid, "ask": eq.ask, "last": eq.last}


@router.post("/admin/load")
async def load(body: LoadBody, sim: SimDep) -> Any:
    sim.ticker.load_rate = body.rate
    return {"symbols": len(sim.load_symbols), "rate": sim.ticker.load_rate}


@router.post("/admin/market/step")
async def step(sim: SimDep) -> Any:
    return {"changed": len(sim.ticker.equity_step())}


@router.post("/admin/broker/reset")
async def broker_reset(body: ResetBody, sim: SimDep) -> Any:
    sim.broker.reset(body.cash)
    return {"cash": sim.broker.account.cash}


@router.get("/admin/broker/orders")
async def broker_orders(sim: SimDep) -> Any:
    # Every order the paper broker holds, oldest first, in one compact list (no token,
    # never delayed by HTTP faults): what the chaos checker compares with `trades`.
    # An OCO container (no legs) is listed with its strategy and ``None`` for the order fields;
    # ``parent_id`` is the order (or container) an order of a tree belongs to.
    book = sim.broker.book
    out = []
    for o in sorted(book.orders.values(), key=lambda o: int(o["orderId"])):
        leg = o["orderLegCollection"][0] if "orderLegCollection" in o else None
        out.append(
            {
                "order_id": o["orderId"],
                "symbol": leg["instrument"]["symbol"] if leg else None,
                "instruction": leg["instruction"] if leg else None,
                "quantity": o.get("quantity"),
                "order_type": o.get("orderType"),
                "price": o.get("price"),
                "stop_price": o.get("stopPrice"),
                "status": o["status"],
                "entered_time": o["enteredTime"],
                "filled_quantity": o.get("filledQuantity", 0.0),
                "strategy": o["orderStrategyType"],
                "parent_id": book.parents.get(o["orderId"]),
            }
        )
    return out


@router.get("/admin/broker")
async def broker_state(sim: SimDep) -> Any:
    return JSONResponse(
        {
            "cash": sim.broker.account.cash,
            "positions": {
                p.symbol: {"quantity": p.quantity, "average_price": p.average_price}
                for p in sim.broker.account.positions.values()
            },
            "orders": len(sim.broker.orders),
        }
    )
