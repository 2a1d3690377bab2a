"""Settings of the streamer (environment variables = upper-case field names)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from streamdesk.config import CommonSettings, split_csv
from streamdesk.models import parse_occ

#: The streamer's name in heartbeats, logs and the control plane's pause flags.
SERVICE_NAME = "streamer"


class Settings(CommonSettings):
    """Streamer settings; see docs/streamer.md for the table."""

    option_symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra option contracts (OCC symbols, comma-separated) always streamed.",
    )
    silent_symbol_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Warn about subscribed symbols silent this long."
    )
    option_strikes: int = Field(
        default=6, ge=1, le=100, description="Strikes around the money per expiration."
    )
    option_expirations: int = Field(
        default=2, ge=1, le=20, description="Next K expirations per underlying."
    )
    option_recenter_interval: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds between universe re-centre checks."
    )
    chart_equity: bool = Field(default=False, description="Also subscribe CHART_EQUITY.")
    queue_max_ticks: int = Field(
        default=50_000, ge=100, le=5_000_000, description="Bound of the websocket->Redis queue."
    )
    publish_max_ticks_per_entry: int = Field(
        default=2_000, ge=1, le=100_000, description="Ticks per Redis stream entry at most."
    )
    publish_linger: float = Field(
        default=0.02, ge=0, le=1.0, description="Seconds the publisher waits to fill a batch."
    )
    quote_interval: float = Field(
        default=0.25,
        ge=0,
        le=5.0,
        description="Latest-quote hashes written at most this often (s).",
    )
    stream_retention_seconds: float = Field(
        default=300.0, gt=0, le=7 * 86400, description="Trim stream entries older than this."
    )
    stream_max_entries: int = Field(
        default=100_000, ge=1_000, description="Hard cap per stream (abnormal operation only)."
    )
    trim_interval: float = Field(default=10.0, gt=0, le=3600)
    heartbeat_timeout: float = Field(
        default=30.0, gt=0, le=600, description="No message for this long = dead connection."
    )
    connect_timeout: float = Field(default=10.0, gt=0, le=120)
    backoff_initial: float = Field(default=0.2, gt=0, le=60)
    backoff_max: float = Field(default=30.0, gt=0, le=3600)
    token_warn_days: float = Field(default=5.0, gt=0, le=7)
    token_poll_interval: float = Field(
        default=30.0, gt=0, le=3600, description="How often a stopped streamer looks for a token."
    )
    market_hours_check_interval: float = Field(default=60.0, gt=0, le=3600)
    control_poll_interval: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Fallback poll of the control plane (s); changes are announced at once.",
    )

    @field_validator("option_symbols", mode="before")
    @classmethod
    def _parse_option_symbols(cls, value: Any) -> Any:
        # OCC symbols pad the root with spaces: split_csv keeps inner spaces.
        return split_csv(value)

    @field_validator("option_symbols")
    @classmethod
    def _check_option_symbols(cls, value: list[str]) -> list[str]:
        for sym in value:
            parse_occ(sym)
        return value
