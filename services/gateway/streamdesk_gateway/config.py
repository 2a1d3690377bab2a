"""Gateway settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from streamdesk.risk import RiskSettings


class Settings(RiskSettings):
    """Gateway configuration (risk limits are shared with the executor for the pre-check)."""

    gateway_host: str = Field(default="127.0.0.1", description="Bind address.")
    gateway_port: int = Field(default=8080, ge=1, le=65535, description="HTTP port.")
    gateway_static_dir: Path | None = Field(
        default=None, description="Built dashboard (frontend/dist); the built-in page if unset."
    )
    gateway_ws_queue: int = Field(
        default=256, ge=8, le=10_000, description="Per-websocket-client message queue bound."
    )
    gateway_history_max_points: int = Field(default=20_000, ge=100, le=200_000)
