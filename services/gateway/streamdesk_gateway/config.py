"""Gateway settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
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
    # --- Supabase sign-in (docs/gateway.md, "Supabase sign-in"); active when SUPABASE_URL is set
    supabase_jwt_secret: SecretStr | None = Field(
        default=None,
        description="Legacy HS256 JWT secret of the project (only if it still signs with it); "
        "unset: only the asymmetric keys of its JWKS are accepted.",
    )
    supabase_jwt_issuer: str | None = Field(
        default=None, description="Expected `iss`; default <SUPABASE_URL>/auth/v1."
    )
    supabase_jwt_audience: str = Field(
        default="authenticated", min_length=1, max_length=200, description="Expected `aud`."
    )
    supabase_jwt_leeway: float = Field(
        default=30.0, ge=0, le=300, description="Clock skew allowed on exp/iat/nbf (s)."
    )
    supabase_jwks_ttl: float = Field(
        default=600.0, ge=10, le=86400, description="How long a fetched JWKS is used (s)."
    )
    supabase_jwks_min_interval: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="Least time between two JWKS fetches (s): bounds the refetches that "
        "tokens naming an unknown key id can cause.",
    )
    supabase_operator_cache_ttl: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long an operator-list answer is reused (s): removing an operator "
        "takes effect within it.",
    )

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

    @field_validator(
        "gateway_token",
        "gateway_token_path",
        "gateway_static_dir",
        "supabase_jwt_secret",
        "supabase_jwt_issuer",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("gateway_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (or unset to generate one)")
        return value

    @field_validator("supabase_jwt_secret")
    @classmethod
    def _check_jwt_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be the project's JWT secret (at least 32 characters)")
        return value

    @field_validator("supabase_jwt_issuer")
    @classmethod
    def _check_issuer(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be a URL like https://<ref>.supabase.co/auth/v1")
        return value

    @model_validator(mode="after")
    def _supabase_needs_url(self) -> Settings:
        if self.supabase_url is None and (
            self.supabase_jwt_secret is not None or self.supabase_jwt_issuer is not None
        ):
            raise ValueError("SUPABASE_JWT_SECRET/SUPABASE_JWT_ISSUER need SUPABASE_URL")
        return self

    def jwt_issuer(self) -> str:
        """The ``iss`` a Supabase access token must carry."""
        return self.supabase_jwt_issuer or f"{self.supabase_url}/auth/v1"

    def jwks_url(self) -> str:
        """Where the project publishes its public signing keys."""
        return f"{self.supabase_url}/auth/v1/.well-known/jwks.json"

    def token_path(self) -> Path:
        """Where the generated token lives."""
        if self.gateway_token_path is not None:
            return self.gateway_token_path
        return self.schwab_token_path.parent / "gateway-token"

    def static_dir(self) -> Path | None:
        """The built frontend to serve, or None when there is none."""
        candidate = self.gateway_static_dir or REPO_FRONTEND_DIST
        return candidate if (candidate / "index.html").is_file() else None
