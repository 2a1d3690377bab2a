"""Request and response bodies of the operations routes (``routes_ops``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streamdesk.control import MAX_REASON, KillSwitch, UniverseSpec


class OpsError(BaseModel):
    """A refusal of an operations route: ``error`` says why."""

    error: str


class MarketOut(BaseModel):
    """Market hours now (New York exchange calendar, ``MARKET_HOURS`` aside)."""

    open: bool
    session: Literal["regular", "pre", "post", "closed"]
    next_change_at: str | None = Field(description="Next open or close (ISO-8601, UTC).")


class HealthOut(BaseModel):
    """The health service's last published summary (overall ``status`` and per component)."""

    status: str
    components: dict[str, str]
    at: float | None = None


class ServiceOut(BaseModel):
    """One service instance's heartbeat (``paused`` is null for services without a pause)."""

    name: str
    instance: str | None
    alive: bool
    age_s: float | None
    status: str | None
    reason: str | None
    paused: bool | None
    counters: dict[str, Any]


class StatusOut(BaseModel):
    """What the status bar shows."""

    now: str
    market: MarketOut
    kill_switch: bool
    health: HealthOut | None
    services: list[ServiceOut]


class TokenOut(BaseModel):
    """Age of the Schwab token file (never its contents)."""

    exists: bool
    created_at: str | None
    age_s: float | None
    refresh_expires_in_s: float | None = Field(description="Refresh token: 7 days from login.")
    access_expires_in_s: float | None


class AuthStartOut(BaseModel):
    """Open ``authorize_url``, log in, paste the address you are redirected to."""

    authorize_url: str
    state: str


class AuthCompleteIn(BaseModel):
    """The whole address the browser was redirected to after the Schwab login."""

    model_config = ConfigDict(extra="forbid", strict=True)

    redirect_url: str = Field(min_length=1, max_length=4096)


class AuthCompleteOut(BaseModel):
    """The token was written."""

    ok: bool


class PauseOut(BaseModel):
    """A service's pause flag after the change."""

    name: str
    paused: bool


class UniverseOut(BaseModel):
    """What is streamed."""

    equities: list[str]
    option_underlyings: list[str]

    @classmethod
    def of(cls, spec: UniverseSpec) -> UniverseOut:
        """From the control plane's spec."""
        return cls(equities=list(spec.equities), option_underlyings=list(spec.option_underlyings))


class UniverseIn(BaseModel):
    """Add an equity ticker (``equity``) or an option underlying (``option``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["equity", "option"]
    symbol: str = Field(min_length=1, max_length=40)


class KillSwitchIn(BaseModel):
    """Engage (true) or release (false) the kill switch."""

    model_config = ConfigDict(extra="forbid", strict=True)

    engaged: bool
    reason: str | None = Field(default=None, max_length=MAX_REASON)


class KillSwitchOut(BaseModel):
    """The kill switch: while engaged no order is placed and submits are refused (403)."""

    engaged: bool
    reason: str | None
    changed_at: str

    @classmethod
    def of(cls, ks: KillSwitch) -> KillSwitchOut:
        """From the control plane's state."""
        return cls(engaged=ks.engaged, reason=ks.reason, changed_at=ks.changed_at.isoformat())
