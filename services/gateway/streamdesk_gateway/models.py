"""Response and request bodies of the gateway's own routes, for a truthful OpenAPI document.

Routes answer plain dicts built from database rows (``state.row``); these models are their
``response_model`` so FastAPI both documents and checks the shape. Times ending ``_at`` are
ISO-8601 strings, numbers are JSON numbers (Decimal columns as floats).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamdesk.models import (
    MAX_REQUEST_VALUE,
    AssetType,
    Duration,
    Instruction,
    OrderType,
    TradeStatus,
)

#: The largest id a bigint column holds: path ids are constrained to 1..INT64_MAX.
INT64_MAX = 2**63 - 1


class ErrorOut(BaseModel):
    """A refusal: ``detail`` says why."""

    detail: str


class LoginIn(BaseModel):
    """The gateway token, or a Supabase operator's access token (JWT, when the gateway has
    SUPABASE_URL), traded for a session cookie."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=8192)


class SessionOut(BaseModel):
    """Whether the caller is authenticated (always true: otherwise the answer is 401), and
    as whom: ``user_id`` is the Supabase operator, null for the gateway's own token."""

    authenticated: bool
    user_id: str | None


class ViolationOut(BaseModel):
    """One broken risk rule: a stable ``code`` and the reason shown to the user."""

    code: str
    reason: str


class TradeRefusal(BaseModel):
    """422 of the trade routes: shape errors as strings, risk violations as objects."""

    error: str
    reasons: list[str | ViolationOut]


class Trade(BaseModel):
    """One ``trades`` row. ``duration`` is plain text: the column has no CHECK and rows
    inserted by other clients (the executor rejects them) may hold anything; the others are
    constrained by the table."""

    id: int
    created_at: str
    symbol: str
    asset_type: AssetType
    instruction: Instruction
    quantity: float
    order_type: OrderType
    limit_price: float | None
    duration: str = Field(examples=[d.value for d in Duration])
    status: TradeStatus
    broker_order_id: str | None
    filled_quantity: float
    avg_fill_price: float | None
    error: str | None
    updated_at: str
    stop_price: float | None = None
    trail_type: str | None = None
    trail_offset: float | None = None
    stop_trigger: str | None = None
    take_profit_price: float | None = None
    stop_loss_price: float | None = None
    parent_id: int | None = Field(None, description="a bracket leg's entry (docs/order-types.md)")
    leg: str = Field("single", examples=["single", "entry", "take_profit", "stop_loss"])
    broker_status: str | None = None


class TradeEvent(BaseModel):
    """One status change of a trade (``trade_events``); ``trade_id`` tells an entry's own
    events from its legs' (docs/order-types.md)."""

    trade_id: int
    at: str
    from_status: str | None
    to_status: str
    reason: str
    detail: dict[str, Any] | list[Any] | str | int | float | bool | None


class TradeDetail(Trade):
    """A trade with its timeline: for a bracket's entry, its legs' events too (``id`` order)."""

    events: list[TradeEvent]


class CancelOut(BaseModel):
    """The trade's status after the cancel request."""

    id: int
    status: Literal["cancelled", "cancel_requested"]


class StopMoveIn(BaseModel):
    """Where a working ``STOP`` / ``STOP_LIMIT`` order's trigger should move."""

    model_config = ConfigDict(extra="forbid")

    stop_price: Decimal = Field(gt=0, le=MAX_REQUEST_VALUE, examples=[101.5])


class StopMoveOut(BaseModel):
    """The requested move, recorded: the executor replaces the broker order and clears
    ``replace_stop_price`` (``stop_price`` is the trigger still working until then)."""

    id: int
    status: str
    stop_price: float | None
    replace_stop_price: float


class QuoteOut(BaseModel):
    """The quote the pre-check used (``ts`` epoch ms)."""

    bid: float
    ask: float
    last: float
    ts: int


class PreviewOut(BaseModel):
    """What submitting would answer, without inserting anything."""

    ok: bool
    violations: list[ViolationOut]
    notional: float | None
    buying_power: float | None
    buying_power_after: float | None
    quote: QuoteOut | None


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry answered with :class:`ErrorOut`."""
    return {"model": ErrorOut, "description": description}


#: What every authenticated route may answer before it runs (guard.py).
GUARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: error_response("Host header not allowed, or a body that cannot be decoded"),
    401: error_response("No token or session, or a wrong or expired token"),
    403: error_response("Origin not allowed, or a Supabase user who is not an operator"),
    429: error_response("Too many failed token attempts from this client (see Retry-After)"),
    503: error_response(
        "A Supabase token cannot be checked now: the project's keys or the operator list "
        "are unreachable (see Retry-After)"
    ),
}
