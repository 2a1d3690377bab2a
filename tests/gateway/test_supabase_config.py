"""The gateway's Supabase sign-in settings: defaults derived from SUPABASE_URL, validation,
and the secret never shown."""

from __future__ import annotations

from typing import Any

import pytest

from streamdesk.config import ConfigError, load_settings
from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.unit

URL = "https://abcdefgh.supabase.co"
SECRET = "s3cret-of-a-legacy-project-0123456789abcdef"


def _load(**values: Any) -> Settings:
    return load_settings(Settings, _env_file=None, **values)


def test_defaults_follow_the_project_url() -> None:
    s = _load(supabase_url=URL + "/")
    assert s.jwt_issuer() == URL + "/auth/v1"
    assert s.jwks_url() == URL + "/auth/v1/.well-known/jwks.json"
    assert s.supabase_jwt_audience == "authenticated"
    assert (s.supabase_jwks_ttl, s.supabase_jwks_min_interval) == (600.0, 30.0)
    assert (s.supabase_jwt_leeway, s.supabase_operator_cache_ttl) == (30.0, 5.0)
    assert s.supabase_jwt_secret is None
    custom = _load(supabase_url=URL, supabase_jwt_issuer="https://auth.example.com/auth/v1")
    assert custom.jwt_issuer() == "https://auth.example.com/auth/v1"


def test_the_secret_is_never_shown() -> None:
    s = _load(supabase_url=URL, supabase_jwt_secret=SECRET)
    assert s.supabase_jwt_secret is not None
    assert s.supabase_jwt_secret.get_secret_value() == SECRET
    assert SECRET not in repr(s) and SECRET not in str(s.model_dump())


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"supabase_url": URL, "supabase_jwt_secret": "short-secret-xyz"}, "SUPABASE_JWT_SECRET"),
        ({"supabase_jwt_secret": SECRET}, "SUPABASE_URL"),
        ({"supabase_url": URL, "supabase_jwt_issuer": "abcdefgh"}, "SUPABASE_JWT_ISSUER"),
        ({"supabase_url": URL, "supabase_jwks_ttl": 0}, "SUPABASE_JWKS_TTL"),
        ({"supabase_url": URL, "supabase_jwt_leeway": -1}, "SUPABASE_JWT_LEEWAY"),
        ({"supabase_url": URL, "supabase_jwt_leeway": 3600}, "SUPABASE_JWT_LEEWAY"),
        ({"supabase_url": URL, "supabase_jwks_min_interval": 0}, "SUPABASE_JWKS_MIN_INTERVAL"),
        ({"supabase_url": URL, "supabase_jwt_audience": ""}, "SUPABASE_JWT_AUDIENCE"),
        ({"supabase_url": "http://abcdefgh.supabase.co"}, "SUPABASE_URL"),
    ],
)
def test_bad_values_are_refused_by_name(values: dict[str, Any], variable: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(**values)
    assert variable in str(refused.value)
    secret = values.get("supabase_jwt_secret")
    assert secret is None or secret not in str(refused.value)


def test_empty_values_are_unset() -> None:
    s = _load(supabase_url="", supabase_jwt_secret="", supabase_jwt_issuer="")
    assert s.supabase_url is None and s.supabase_jwt_secret is None
