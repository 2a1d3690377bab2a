"""Typed configuration from the environment (and a ``.env`` file).

Every service defines its own ``Settings`` subclass of :class:`CommonSettings` in its
``config.py`` and loads it once at its entry point with :func:`load_settings`. Nothing reads
the environment at import time.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "changethis", "your-app-key", "xxx", ""})


class ConfigError(Exception):
    """Raised when the configuration is invalid; the message names every bad variable."""


class TradingMode(StrEnum):
    """``paper`` trades against market-sim; ``live`` sends real orders to Schwab."""

    PAPER = "paper"
    LIVE = "live"


class MarketHoursMode(StrEnum):
    """Which hours services treat as "market open"."""

    REGULAR = "regular"
    EXTENDED = "extended"
    ALWAYS = "always"


def split_csv(value: Any, *, upper: bool = True) -> Any:
    """Split a comma-separated environment value into stripped, non-empty items.

    Inner spaces are kept (OCC option symbols pad the root with spaces); non-strings (a list
    passed as an override) are returned unchanged for pydantic to validate.
    """
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
        return [item.upper() for item in items] if upper else items
    return value


class CommonSettings(BaseSettings):
    """Settings every service shares. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:54329/streamdesk",
        description=(
            "PostgreSQL/Supabase DSN (direct or session pooler; not the transaction pooler)."
        ),
    )
    redis_url: str = Field(default="redis://127.0.0.1:63799/0", description="Redis URL.")
    tickers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["SPY", "QQQ", "AAPL", "MSFT", "NVDA"],
        description="Comma-separated equity tickers to stream.",
    )
    option_underlyings: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["SPY"],
        description="Underlyings whose option universe is streamed (empty: no options); with "
        "TICKERS, the universe's seed (streamdesk.control).",
    )
    stream_partitions: int = Field(
        default=4, ge=1, le=256, description="Number of Redis tick streams (partitions by symbol)."
    )
    log_level: str = Field(default="INFO", description="Logging level.")
    log_format: str = Field(default="auto", description="auto | json | text.")
    heartbeat_interval: float = Field(default=5.0, gt=0, le=300)
    heartbeat_ttl: float = Field(default=15.0, gt=0, le=3600)
    shutdown_timeout: float = Field(default=10.0, gt=0, le=300)
    market_hours: MarketHoursMode = Field(default=MarketHoursMode.ALWAYS)
    trading_mode: TradingMode = Field(default=TradingMode.PAPER)
    # Schwab connection. In paper mode the base URL points at market-sim.
    schwab_base_url: str = Field(default="http://127.0.0.1:8090")
    schwab_api_key: str = Field(default="streamdesk-sim-key")
    schwab_app_secret: str = Field(default="streamdesk-sim-secret")
    schwab_callback_url: str = Field(default="https://127.0.0.1:8182")
    schwab_token_path: Path = Field(default=Path(".data/schwab-token.json"))
    schwab_account_hash: str | None = Field(default=None)
    # Supabase mode (docs/supabase.md): the project's URL, e.g. https://abcd.supabase.co.
    # Unset = no Supabase features (no JWT sign-in at the gateway, no Realtime Broadcast).
    supabase_url: str | None = Field(
        default=None, description="Supabase project URL (https://<ref>.supabase.co)."
    )

    @field_validator("supabase_url", mode="before")
    @classmethod
    def _check_supabase_url(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip().rstrip("/")
        loopback = text.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
        if not (text.startswith("https://") or loopback):
            raise ValueError("must be an https:// URL (http:// only on loopback, for tests)")
        return text

    @field_validator("tickers", "option_underlyings", mode="before")
    @classmethod
    def _parse_tickers(cls, value: Any) -> Any:
        return split_csv(value)

    @field_validator("tickers")
    @classmethod
    def _check_tickers(cls, value: list[str]) -> list[str]:
        for ticker in value:
            if not ticker.replace(".", "").replace("/", "").isalnum() or len(ticker) > 12:
                raise ValueError(f"invalid ticker {ticker!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @field_validator("log_format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        if value not in {"auto", "json", "text"}:
            raise ValueError("must be one of auto, json, text")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_dsn(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// or postgres://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    def check_live_secrets(self) -> None:
        """Refuse placeholder Schwab credentials when trading live."""
        if self.trading_mode is TradingMode.LIVE:
            bad = [
                name
                for name in ("schwab_api_key", "schwab_app_secret")
                if getattr(self, name).strip().lower() in PLACEHOLDER_SECRETS
                or getattr(self, name).startswith("streamdesk-sim")
            ]
            if bad:
                names = ", ".join(n.upper() for n in bad)
                raise ConfigError(f"TRADING_MODE=live needs real Schwab credentials: set {names}")


S = TypeVar("S", bound=BaseSettings)


def format_validation_error(exc: ValidationError) -> str:
    """Turn a pydantic error into one line per bad environment variable."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "?"
        value = err.get("input")
        sensitive = any(word in loc.lower() for word in ("secret", "key", "token", "url", "pass"))
        shown = "" if isinstance(value, dict) or sensitive else f" (got {value!r})"
        lines.append(f"  {loc.upper()}: {err['msg']}{shown}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Load ``cls`` from the environment and ``.env``; raise :class:`ConfigError` naming bad vars.

    ``overrides`` take precedence over the environment; tests use them instead of patching
    ``os.environ``.
    """
    try:
        settings = cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    if isinstance(settings, CommonSettings):
        settings.check_live_secrets()
    return settings
