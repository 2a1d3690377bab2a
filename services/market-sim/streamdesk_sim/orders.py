"""The Schwab order record: its JSON, statuses, timestamps and account-activity payload.

Orders are kept as the JSON Schwab's GET order returns (a dict), so the REST answer is the
stored object itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streamdesk.models import parse_occ
from streamdesk_sim.order_validation import OrderLeg

BUYS = {"BUY", "BUY_TO_COVER", "BUY_TO_OPEN", "BUY_TO_CLOSE"}
OPENING = {"BUY", "BUY_TO_OPEN", "SELL_TO_OPEN", "SELL_SHORT"}
OPEN_STATUSES = {"WORKING", "QUEUED", "PENDING_ACTIVATION", "ACCEPTED", "AWAITING_PARENT_ORDER"}
FINAL_STATUSES = {"FILLED", "CANCELED", "REJECTED", "EXPIRED", "REPLACED"}


def schwab_time(ts: float) -> str:
    """Schwab's timestamp format, e.g. ``2024-03-21T14:30:00+0000``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_schwab_time(text: str) -> datetime:
    """Parse the time formats schwab-py sends as order filters."""
    text = text.strip().replace("Z", "+00:00")
    if text.endswith("+0000"):
        text = text[:-5] + "+00:00"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def multiplier(asset_type: str) -> float:
    """Contract multiplier: 100 shares per option contract."""
    return 100.0 if asset_type == "OPTION" else 1.0


def new_order(
    leg: OrderLeg,
    spec: dict[str, Any],
    order_id: int,
    now: float,
    account_number: str,
    strategy: str = "SINGLE",
) -> dict[str, Any]:
    """A new WORKING order from a validated request ``spec`` (whose leg is ``leg``)."""
    order: dict[str, Any] = {
        "session": spec.get("session", "NORMAL"),
        "duration": spec.get("duration", "DAY"),
        "orderType": leg.order_type,
        "complexOrderStrategyType": spec.get("complexOrderStrategyType", "NONE"),
        "quantity": leg.quantity,
        "filledQuantity": 0.0,
        "remainingQuantity": leg.quantity,
        "requestedDestination": "AUTO",
        "destinationLinkName": "SIM",
        "orderLegCollection": [
            {
                "orderLegType": leg.asset_type,
                "legId": 1,
                "instrument": {
                    "assetType": leg.asset_type,
                    "symbol": leg.symbol,
                    "instrumentId": abs(hash(leg.symbol)) % 10**9,
                },
                "instruction": leg.instruction,
                "positionEffect": "OPENING" if leg.instruction in OPENING else "CLOSING",
                "quantity": leg.quantity,
            }
        ],
        "orderStrategyType": strategy,
        "orderId": order_id,
        "cancelable": True,
        "editable": True,
        "status": "WORKING",
        "enteredTime": schwab_time(now),
        "tag": "API_TOS:market-sim",
        "accountNumber": int(account_number),
    }
    if leg.price is not None:
        order["price"] = leg.price
    if leg.stop_type is not None:
        order["stopType"] = leg.stop_type
    if leg.stop_price is not None:
        order["stopPrice"] = leg.stop_price
    if leg.link_type is not None:
        order.update(
            {
                "stopPriceLinkBasis": leg.link_basis,
                "stopPriceLinkType": leg.link_type,
                "stopPriceOffset": leg.offset,
            }
        )
    if leg.asset_type == "OPTION":
        occ = parse_occ(leg.symbol)
        order["orderLegCollection"][0]["instrument"].update(
            {"underlyingSymbol": occ.root, "putCall": "CALL" if occ.put_call == "C" else "PUT"}
        )
    return order


def new_container(
    spec: dict[str, Any], order_id: int, now: float, account_number: str
) -> dict[str, Any]:
    """A new OCO container: an id and a status, its orders in ``childOrderStrategies``."""
    return {
        "session": spec.get("session", "NORMAL"),
        "duration": spec.get("duration", "DAY"),
        "orderStrategyType": "OCO",
        "orderId": order_id,
        "cancelable": True,
        "editable": False,
        "status": "WORKING",
        "enteredTime": schwab_time(now),
        "tag": "API_TOS:market-sim",
        "accountNumber": int(account_number),
        "childOrderStrategies": [],
    }


def finish(order: dict[str, Any], status: str, now: float) -> None:
    """Move ``order`` to a final ``status`` at sim time ``now``."""
    order["status"] = status
    order["cancelable"] = False
    order["editable"] = False
    order["closeTime"] = schwab_time(now)


def activity_data(order: dict[str, Any], account_number: str) -> dict[str, Any]:
    """The JSON data of an ``ACCT_ACTIVITY`` message about ``order``."""
    leg = order["orderLegCollection"][0]
    return {
        "SchwabOrderID": str(order["orderId"]),
        "AccountNumber": account_number,
        "Symbol": leg["instrument"]["symbol"],
        "Instruction": leg["instruction"],
        "Quantity": order["quantity"],
        "OrderType": order["orderType"],
        "Status": order["status"],
    }


def filter_orders(
    orders: list[dict[str, Any]],
    *,
    from_time: datetime | None,
    to_time: datetime | None,
    status: str | None,
    max_results: int | None,
) -> list[dict[str, Any]]:
    """``orders`` filtered like Schwab's GET orders (newest first)."""
    out = []
    for o in sorted(orders, key=lambda o: -o["orderId"]):
        entered = parse_schwab_time(o["enteredTime"])
        if from_time and entered < from_time:
            continue
        if to_time and entered > to_time:
            continue
        if status and o["status"] != status:
            continue
        out.append(o)
    if max_results:
        out = out[:max_results]
    return out
