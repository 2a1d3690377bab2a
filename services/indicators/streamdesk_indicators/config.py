"""Settings of the indicators service (environment variables = upper-case field names)."""

from __future__ import annotations

import re
import socket
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from streamdesk.config import PLACEHOLDER_SECRETS, CommonSettings
from streamdesk.realtime_budget import DEFAULT_DASHBOARDS, LADDER


class Settings(CommonSettings):
    """Configuration of ``indicators``; see docs/indicators.md for the full table."""

    batch_size: int = Field(
        default=5000,
        ge=1,
        le=1_000_000,
        description="Flush as soon as this many output rows are buffered.",
    )
    batch_interval: float = Field(
        default=1.0, gt=0, le=60, description="Flush at least every this many seconds."
    )
    max_buffer_rows: int = Field(
        default=20_000,
        ge=100,
        le=10_000_000,
        description="Back-pressure: stop reading Redis while this many rows wait for a commit.",
    )
    read_count: int = Field(
        default=100, ge=1, le=10_000, description="Stream entries per XREADGROUP call."
    )
    read_block_ms: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="XREADGROUP block time (ms) while entries flow; after an empty read the "
        "reader blocks up to IDLE_READ_BLOCK_MS.",
    )
    idle_read_block_ms: int = Field(
        default=2000,
        ge=1,
        le=9_000,
        description="XREADGROUP block time (ms) after an empty read (nothing flowing); a stop "
        "ends the wait at once. Below the Redis client's 10 s socket timeout.",
    )
    idle_probe_interval: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="With nothing to write, probe the database (SELECT 1) this often (s).",
    )
    indicator_bar_seconds: int = Field(
        default=60, ge=1, le=86_400, description="Bar length of SMA9/EMA9 (seconds)."
    )
    session_timezone: str = Field(default="America/New_York")
    session_open: str = Field(default="09:30", description="Regular-session open (HH:MM).")
    session_close: str = Field(default="16:00", description="Regular-session close (HH:MM).")
    instance_id: str = Field(
        default_factory=socket.gethostname,
        description="Consumer name and lease owner; stable across restarts of one instance.",
    )
    lease_ttl: float = Field(
        default=10.0, gt=0.5, le=300, description="Partition lease TTL in Redis (seconds)."
    )
    max_partitions: int = Field(
        default=0, ge=0, le=256, description="Partitions one process may own (0 = no limit)."
    )
    committed_maxlen: int = Field(
        default=10_000, ge=10, le=1_000_000, description="MAXLEN of the committed stream."
    )
    committed_max_options: int = Field(
        default=500, ge=0, le=100_000, description="Option rows per committed message (cap)."
    )
    retry_max_delay: float = Field(
        default=5.0, gt=0, le=300, description="Maximum back-off between DB retries (seconds)."
    )
    storage_budget_mb: float = Field(
        default=500.0,
        ge=0,
        description="Database size budget; load is shed from 90% of it (0 = never shed).",
    )
    storage_compact_interval: float = Field(
        default=60.0, ge=0, le=86_400, description="Compaction period, s (0 = off)."
    )
    storage_compact_batch_rows: int = Field(
        default=20_000, ge=300, le=1_000_000, description="Rows moved per compaction transaction."
    )
    #: Test-only: SIGKILL this process right after its N-th COMMIT, before XACK (0 = off).
    test_crash_after_commit: int = Field(default=0, ge=0)
    # Supabase Realtime broadcast of the committed messages (docs/supabase.md, "Realtime and
    # the free plan"); SUPABASE_URL comes from CommonSettings.
    supabase_service_role_key: SecretStr | None = Field(
        default=None, description="The project's service_role (secret) key; never logged."
    )
    supabase_broadcast: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="auto = broadcast when SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are set.",
    )
    supabase_dashboards: int = Field(
        default=DEFAULT_DASHBOARDS,
        ge=0,
        le=200,
        description="Dashboards expected open (Realtime receivers) in the budget.",
    )
    supabase_degrade: str = Field(
        default="auto", description="auto (budget) or a degrade level to pin (0 = full)."
    )
    supabase_broadcast_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Timeout of one broadcast request, s."
    )

    @field_validator("supabase_service_role_key", mode="before")
    @classmethod
    def _check_key(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if raw.strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("is a placeholder; use the project's service_role key")
        return raw.strip()

    @field_validator("supabase_broadcast")
    @classmethod
    def _check_broadcast(cls, value: str, info: ValidationInfo) -> str:
        if value == "on" and not (
            info.data.get("supabase_url") and info.data.get("supabase_service_role_key")
        ):
            raise ValueError("on needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY")
        return value

    @field_validator("supabase_degrade")
    @classmethod
    def _check_degrade(cls, value: str) -> str:
        value = value.strip().lower()
        if value != "auto" and not (value.isdigit() and int(value) < len(LADDER)):
            raise ValueError(f"must be auto or a level 0..{len(LADDER) - 1}")
        return value

    @property
    def broadcast_enabled(self) -> bool:
        """Whether the committed messages go to Supabase Realtime."""
        configured = bool(self.supabase_url and self.supabase_service_role_key)
        return self.supabase_broadcast != "off" and configured

    @property
    def pinned_degrade(self) -> int | None:
        """The pinned degrade level, or None for ``auto``."""
        return None if self.supabase_degrade == "auto" else int(self.supabase_degrade)

    @field_validator("session_open", "session_close")
    @classmethod
    def _check_hhmm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("must be HH:MM (24h)")
        return value

    @field_validator("session_timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown IANA time zone") from None
        return value

    @field_validator("session_close")
    @classmethod
    def _close_after_open(cls, value: str, info: ValidationInfo) -> str:
        opened = info.data.get("session_open")
        if opened is not None and value <= opened:
            raise ValueError("must be after SESSION_OPEN")
        return value
