"""Gateway settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from streamdesk.config import split_csv
from streamdesk.risk import RiskSettings

#: Where the built frontend is when ``make run`` (or ``npm run build``) has built it.
REPO_FRONTEND_DIST = Path(__file__).resolve().parents[3] / "frontend" / "dist"

DEFAULT_ALLOWED_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


class Settings(RiskSettings):
    """Gateway configuration (risk limits are shared with the executor for the pre-check)."""

    gateway_host: str = Field(default="127.0.0.1", description="Bind address.")
    gateway_port: int = Field(default=8080, ge=1, le=65535, description="HTTP port.")
    gateway_static_dir: Path | None = Field(
        default=None,
        description="Built dashboard; default the repository's frontend/dist when it exists.",
    )
    gateway_ws_queue: int = Field(
        default=256, ge=8, le=10_000, description="Per-websocket-client message queue bound."
    )
    gateway_history_max_points: int = Field(default=20_000, ge=100, le=200_000)
    # --- security (docs/gateway.md, "Security")
    gateway_token: SecretStr | None = Field(
        default=None,
        description="API token; when unset one is generated into gateway_token_path.",
    )
    gateway_token_path: Path | None = Field(
        default=None,
        description="Generated token file (mode 0600); default <dir of SCHWAB_TOKEN_PATH>/"
        "gateway-token, i.e. .data/gateway-token locally and the tokens volume in compose.",
    )
    gateway_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_HOSTS),
        description="Host header names answered (port ignored); '*' allows any.",
    )
    gateway_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed cross-origin (CORS off when empty)."
    )
    gateway_session_ttl: float = Field(
        default=12 * 3600.0, gt=0, le=30 * 86400, description="Login session lifetime (s)."
    )
    gateway_max_sessions: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Logged-out sessions remembered."
    )
    gateway_cookie_secure: bool = Field(
        default=False, description="Mark the session cookie Secure (set behind HTTPS)."
    )
    gateway_login_max_failures: int = Field(
        default=5, ge=1, le=1000, description="Failed token attempts per client per window."
    )
    gateway_login_window: float = Field(default=60.0, gt=0, le=86400)

    @field_validator("gateway_allowed_hosts", "gateway_cors_origins", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        return split_csv(value, upper=False)

    @field_validator("gateway_allowed_hosts")
    @classmethod
    def _lower_hosts(cls, value: list[str]) -> list[str]:
        return [host.lower() for host in value]

    @field_validator("gateway_cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*" or not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin like http://host:port")
        return [origin.rstrip("/").lower() for origin in value]

    @field_validator("gateway_token", "gateway_token_path", "gateway_static_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("gateway_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (or unset to generate one)")
        return value

    def token_path(self) -> Path:
        """Where the generated token lives."""
        if self.gateway_token_path is not None:
            return self.gateway_token_path
        return self.schwab_token_path.parent / "gateway-token"

    def static_dir(self) -> Path | None:
        """The built frontend to serve, or None when there is none."""
        candidate = self.gateway_static_dir or REPO_FRONTEND_DIST
        return candidate if (candidate / "index.html").is_file() else None
