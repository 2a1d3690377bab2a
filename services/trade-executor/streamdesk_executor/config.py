"""Settings of the trade-executor (environment variables = upper-case field names)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from streamdesk.risk import RiskSettings


class QuoteSource(StrEnum):
    """Where the price collar and freshness checks get their quote.

    ``auto``: the streamer's Redis hash when it is fresh, else the broker's quote endpoint;
    ``redis``: only the Redis hash; ``broker``: only the broker's quote endpoint.
    """

    AUTO = "auto"
    REDIS = "redis"
    BROKER = "broker"


class Settings(RiskSettings):
    """trade-executor settings: the shared risk limits plus the executor's own knobs."""

    executor_instance: str | None = Field(
        default=None, description="Instance name (default host-pid); recorded in claimed_by."
    )
    executor_workers: int = Field(
        default=4, ge=1, le=64, description="Concurrent submissions per executor process."
    )
    executor_poll_interval: float = Field(
        default=1.0, gt=0, le=60, description="Fallback poll for new trades (s) besides NOTIFY."
    )
    executor_sync_interval: float = Field(
        default=1.0, gt=0, le=300, description="Order status/fill sync and reconciliation (s)."
    )
    executor_idle_interval: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="While idle (no open order, LISTEN connected): the trade poll, the "
        "maintenance pass and the control version poll run this often instead (s).",
    )
    executor_balance_interval: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Positions and balances sync (s); also after fills.",
    )
    executor_broker_timeout: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of one broker call (s); then `unknown`."
    )
    executor_submit_grace: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="A `submitting` row older than broker timeout + this is orphaned (s).",
    )
    executor_reconcile_skew: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="Broker orders entered up to this long before submitted_at may match (s).",
    )
    executor_absent_after: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="An unknown order absent at the broker this long after submission is "
        "settled as rejected (never reached the broker) (s).",
    )
    executor_alert_after: float = Field(
        default=30.0, ge=0, le=86400, description="Raise an alert for `unknown` older than (s)."
    )
    executor_quote_source: QuoteSource = Field(default=QuoteSource.AUTO)
    executor_max_pending_batch: int = Field(
        default=100, ge=1, le=10_000, description="Rows handled per maintenance pass and kind."
    )
