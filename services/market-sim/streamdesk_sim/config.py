"""market-sim settings: environment variables prefixed ``SIM_`` (loaded at the entry point)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streamdesk.config import split_csv


class ClockMode(StrEnum):
    """How the simulator's session clock runs."""

    ALWAYS = "always"  # market always open, sim time = wall time (demos)
    NYSE = "nyse"  # real NYSE regular session and holidays, sim time = wall time
    ACCELERATED = "accelerated"  # sim time starts at a session open and runs SIM_CLOCK_SPEED x


class Settings(BaseSettings):
    """All market-sim configuration; see docs/market-sim.md for the table."""

    model_config = SettingsConfigDict(
        env_prefix="SIM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    host: str = Field(default="127.0.0.1", description="Listen address.")
    port: int = Field(default=8090, ge=0, le=65535, description="Listen port (REST + /ws).")
    seed: int = Field(default=42, description="Seed of every random path (per symbol).")
    clock: ClockMode = Field(default=ClockMode.ALWAYS)
    clock_speed: float = Field(default=60.0, gt=0, le=100000, description="Accelerated x.")
    clock_start: str | None = Field(
        default=None, description="Accelerated: ISO start time (default: today's 09:30 ET)."
    )
    access_token_ttl: int = Field(default=1800, ge=1, description="Access token lifetime, s.")
    refresh_token_ttl: int = Field(default=7 * 86400, ge=1, description="Refresh lifetime, s.")
    app_key: str | None = Field(default=None, description="If set, the only accepted app key.")
    app_secret: str | None = Field(default=None, description="If set, the only accepted secret.")
    token_secret: str = Field(
        default="market-sim-token-signing-key", description="HMAC key of issued tokens."
    )
    tick_interval: float = Field(
        default=0.5, gt=0, le=60, description="Equity market step period, s (lower = faster)."
    )
    trade_prob: float = Field(default=0.7, ge=0, le=1, description="P(trade) per symbol step.")
    quote_prob: float = Field(default=0.8, ge=0, le=1, description="P(quote move) per step.")
    volatility: float = Field(default=0.35, gt=0, le=5, description="Annualized GBM vol.")
    option_underlyings: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["SPY", "QQQ", "AAPL"]
    )
    option_strikes: int = Field(default=10, ge=1, le=100, description="Strikes each side of spot.")
    option_expirations: int = Field(default=4, ge=1, le=20, description="Weekly expirations.")
    option_interval: float = Field(default=1.0, gt=0, le=60, description="Option update period.")
    chart_interval: float = Field(
        default=60.0, gt=0, le=3600, description="CHART_EQUITY bar length in sim seconds."
    )
    heartbeat_interval: float = Field(default=10.0, gt=0, le=300)
    max_symbols: int = Field(default=5000, ge=1, description="Streamer symbol limit per service.")
    send_queue: int = Field(
        default=2000, ge=10, description="Frames buffered per websocket before it is dropped."
    )
    sent_log_size: int = Field(
        default=5000, ge=0, description="Updates remembered per symbol for /admin/sent."
    )
    sent_log_total: int = Field(
        default=100_000, ge=0, description="Updates remembered over all symbols (memory bound)."
    )
    max_simulated: int = Field(
        default=20_000, ge=1, description="Distinct symbols simulated (besides load symbols)."
    )
    initial_cash: float = Field(default=100_000.0, ge=0)
    account_number: str = Field(default="12345678")
    load_symbols: int = Field(default=0, ge=0, le=100_000, description="Load mode symbols.")
    load_rate: float = Field(default=10_000.0, gt=0, description="Load mode updates/s total.")
    ws_deflate: bool = Field(
        default=True, description="Accept permessage-deflate when the client offers it."
    )
    ws_deflate_level: int = Field(
        default=6, ge=1, le=9, description="zlib level of outgoing websocket frames."
    )
    log_level: str = Field(default="INFO")
    log_format: str = Field(default="auto")
    shutdown_timeout: float = Field(default=5.0, gt=0, le=60)

    @field_validator("option_underlyings", mode="before")
    @classmethod
    def _parse_underlyings(cls, value: Any) -> Any:
        return split_csv(value)

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value
