"""Settings of the health service (environment variables = upper-case field names)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from streamdesk.config import CommonSettings, split_csv


class Settings(CommonSettings):
    """Health service settings; see docs/health.md for the full table."""

    health_host: str = Field(default="127.0.0.1", description="Listen address.")
    health_port: int = Field(default=8081, ge=1, le=65535, description="Listen port.")
    health_expected_services: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["streamer", "indicators", "trade-executor", "gateway"],
        description="Services whose heartbeat must be present (comma-separated).",
    )
    health_check_interval: float = Field(
        default=5.0, gt=0, le=300, description="Seconds between check rounds."
    )
    health_check_timeout: float = Field(
        default=4.0, gt=0, le=120, description="Timeout of each component check."
    )
    health_heartbeat_stale_s: float | None = Field(
        default=None,
        gt=0,
        description="Heartbeat age that counts as down (default HEARTBEAT_TTL - interval).",
    )
    health_db_budget_mb: float = Field(
        default=500.0, gt=0, description="Database size budget (Supabase free plan: 500 MB)."
    )
    health_freshness_max_age_s: float = Field(
        default=30.0, gt=0, description="Ticker data older than this (market open) = degraded."
    )
    health_freshness_down_age_s: float = Field(
        default=300.0, gt=0, description="Every ticker older than this (market open) = down."
    )
    health_stream_lag_max: int = Field(
        default=10_000, ge=0, description="Consumer-group lag (entries) above which = degraded."
    )
    health_stream_pending_max: int = Field(
        default=1_000, ge=0, description="Pending (unacked) entries above which = degraded."
    )
    health_token_warn_days: float = Field(
        default=5.0, gt=0, description="Refresh-token age (days) from which = degraded."
    )
    health_token_life_days: float = Field(
        default=7.0, gt=0, description="Schwab refresh-token lifetime (days)."
    )
    health_token_required: bool | None = Field(
        default=None,
        description="Missing token file = down (default: only when TRADING_MODE=live).",
    )
    health_unknown_grace_s: float = Field(
        default=60.0, ge=0, description="Unknown orders older than this = degraded."
    )
    health_reconcile_max_age_s: float = Field(
        default=900.0, gt=0, description="Last reconciliation older than this = degraded."
    )
    health_webhook_url: str | None = Field(
        default=None, description="Alert webhook (JSON POST on each state change); unset = off."
    )
    health_webhook_min_interval_s: float = Field(
        default=30.0, ge=0, description="Minimum seconds between two webhook POSTs."
    )
    health_webhook_topic: str | None = Field(
        default=None, description="ntfy topic put in the alert body (POST to the ntfy root URL)."
    )
    health_webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    health_alert_grace_s: float = Field(
        default=30.0, ge=0, description="No alerts in the first seconds after start."
    )
    health_stack_url: str = Field(
        default="http://127.0.0.1:8081",
        description="Base URL of the health service, shown in alerts.",
    )

    @field_validator("health_expected_services", mode="before")
    @classmethod
    def _parse_services(cls, value: Any) -> Any:
        return split_csv(value, upper=False)

    @field_validator("health_webhook_url")
    @classmethod
    def _check_webhook(cls, value: str | None) -> str | None:
        if value is not None and value.strip() == "":
            return None
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @property
    def heartbeat_stale_s(self) -> float:
        """Heartbeat age that means the service is gone (defaults keep it within the TTL)."""
        if self.health_heartbeat_stale_s is not None:
            return self.health_heartbeat_stale_s
        return max(self.heartbeat_interval * 1.5, self.heartbeat_ttl - self.health_check_interval)

    @property
    def token_required(self) -> bool:
        """Whether a missing Schwab token file is an outage."""
        if self.health_token_required is not None:
            return self.health_token_required
        return self.trading_mode.value == "live"
