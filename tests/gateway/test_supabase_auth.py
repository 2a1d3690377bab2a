"""Supabase sign-in at the gateway with real signed tokens: ES256 and RS256 through a JWKS
served on 127.0.0.1, HS256 with a legacy secret; refusals by reason (never a 500), the
operator list, key rotation, an unreachable JWKS, and the failed-attempt limit."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from supabase_project import JwksServer, Project, SigningKey, forge

from streamdesk.constants import heartbeat_key
from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.integration

OP = uuid.UUID("6f1c2b1e-8a43-4c55-9a0e-0d2f7b9d1a01")
Op = Callable[[uuid.UUID], Awaitable[None]]


class FakeMonotonic:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def supa_settings(
    gateway_settings: Callable[..., Settings], supabase_project: Project
) -> Callable[..., Settings]:
    """Gateway settings with Supabase sign-in against ``supabase_project`` (and its secret)."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "supabase_url": supabase_project.url,
            "supabase_jwt_secret": supabase_project.secret,
            "gateway_login_max_failures": 1000,
            **overrides,
        }
        return gateway_settings(**values)

    return build


async def test_operator_tokens_of_each_algorithm_are_accepted(
    supa_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    add_operator: Op,
) -> None:
    await add_operator(OP)
    p = supabase_project
    with make_gateway_client(supa_settings(), authenticated=False) as c:
        for token in (p.token(OP), p.token(OP, key=p.rs256), p.hs256(OP)):
            r = c.get("/api/session", headers=_bearer(token))
            assert r.status_code == 200, r.text
            assert r.json() == {"authenticated": True, "user_id": str(OP)}
            assert c.get("/api/trades", headers=_bearer(token)).status_code == 200
        # The gateway's own token is still the service identity.
        service = c.get("/api/session", headers=_bearer("test-gateway-token-0123456789"))
        assert service.json() == {"authenticated": True, "user_id": None}
        counters = c.app.state.sd.counters  # type: ignore[attr-defined]
        assert counters["jwt_accepted"] == 6
        assert counters["jwks_fetches"] == 1  # one fetch served both asymmetric keys


def _swap_payload(token: str, other: str) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{other.split('.')[1]}.{signature}"


def _cut_signature(token: str, keep: int) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{signature[:keep]}"


def _refused_cases(p: Project) -> list[tuple[str, str, str]]:
    """(case, token, reason) of tokens a Supabase project never issued to an operator."""
    stranger = SigningKey("ES256", p.es256.kid)  # same kid, another key: a forgery
    unknown = SigningKey("ES256", "kid-nobody-published")
    now_claims = p.claims(OP)
    return [
        ("expired", p.token(OP, iat=now_claims["iat"] - 7200, exp=now_claims["iat"] - 3600),
         "expired"),
        ("wrong audience", p.token(OP, aud="someone-else"), "wrong_audience"),
        ("wrong issuer", p.token(OP, iss="https://evil.example/auth/v1"), "wrong_issuer"),
        ("unknown key", p.token(OP, key=unknown), "unknown_key"),
        ("forged with a published kid", p.token(OP, key=stranger), "bad_signature"),
        ("RS256 header naming the EC key", p.token(OP, key=p.rs256, kid=p.es256.kid),
         "unknown_key"),
        ("wrong HS256 secret", p.hs256(OP, secret="x" * 48), "bad_signature"),
        ("HS256 with the public key as secret", p.hs256(OP, secret=p.es256.public_pem()),
         "bad_signature"),
        ("alg none", forge(now_claims, b"", alg="none"), "malformed"),
        ("alg none with a signature", forge(now_claims, b"sig", alg="none"), "algorithm"),
        ("HS512", forge(now_claims, p.secret, alg="HS512"), "algorithm"),
        ("no exp", p.token(OP, exp=None), "missing_claim"),
        ("anon role", p.token(OP, role="anon"), "wrong_role"),
        ("service_role", p.token(OP, role="service_role"), "wrong_role"),
        ("sub not a UUID", p.token("admin"), "bad_subject"),
        ("issued in the future", p.token(OP, iat=now_claims["iat"] + 3600,
                                         exp=now_claims["iat"] + 7200), "not_yet_valid"),
        ("three dots of nothing", "a.b.c", "malformed"),
        # 40 of its 86 characters: whole base64 groups, so never a padding error.
        ("truncated signature", _cut_signature(p.token(OP), 40), "bad_signature"),
        ("signature not base64", _cut_signature(p.token(OP), 85) + "*", "malformed"),
        ("another subject, a genuine signature",
         _swap_payload(p.token(OP), p.token(uuid.uuid4())), "bad_signature"),
        ("garbage header", "eyJhbGciOi.eyJzdWIiOiIx.c2ln", "malformed"),
    ]  # fmt: skip


async def test_refused_tokens_are_401_with_a_reason_counted_and_logged(
    supa_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    add_operator: Op,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_operator(OP)
    caplog.set_level(logging.INFO, logger="streamdesk_gateway")
    cases = _refused_cases(supabase_project)
    with make_gateway_client(supa_settings(), authenticated=False) as c:
        counters = c.app.state.sd.counters  # type: ignore[attr-defined]
        for case, token, reason in cases:
            r = c.get("/api/trades", headers=_bearer(token))
            assert r.status_code == 401, (case, r.status_code, r.text)
            detail = r.json()["detail"]
            assert reason in detail or detail == "invalid token", (case, detail)
            assert r.headers["www-authenticate"].startswith("Bearer error=")
        for _, token, _ in cases:
            assert token not in caplog.text
        expected: dict[str, int] = {}
        for _, token, reason in cases:
            if token.count(".") == 2 and all(token.split(".")):
                expected[f"jwt_refused_{reason}"] = expected.get(f"jwt_refused_{reason}", 0) + 1
        assert {k: v for k, v in counters.items() if k.startswith("jwt_refused_")} == expected
        assert counters["jwt_accepted"] == 0
        # A string that is not a JWT is a wrong gateway token, like before.
        assert c.get("/api/trades", headers=_bearer("not-a-jwt")).json() == {
            "detail": "invalid token"
        }
        assert "refused a Supabase token from 127.0.0.1: expired" in caplog.text


def test_hs256_is_refused_when_only_the_jwks_is_configured(
    supa_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
) -> None:
    p = supabase_project
    jwk_bytes = json.dumps(p.es256.jwk).encode()
    with make_gateway_client(supa_settings(supabase_jwt_secret=None), authenticated=False) as c:
        for token in (p.hs256(OP), p.hs256(OP, secret=p.es256.public_pem()),
                      p.hs256(OP, secret=jwk_bytes)):  # fmt: skip
            r = c.get("/api/session", headers=_bearer(token))
            assert r.status_code == 401 and "(algorithm)" in r.json()["detail"], r.text


async def test_symmetric_and_junk_jwks_entries_are_never_keys(
    supa_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    jwks_server: JwksServer,
    add_operator: Op,
) -> None:
    await add_operator(OP)
    p = supabase_project
    oct_key = {"kty": "oct", "kid": "sym", "k": p.secret, "alg": "HS256"}
    jwks_server.keys = [
        oct_key,
        {"kty": "EC", "crv": "P-256", "kid": "no-coordinates"},
        {"kty": "RSA", "kid": "junk", "n": 5, "e": []},
        {**p.rs256.jwk, "kid": "enc", "use": "enc"},
        "not an object",  # type: ignore[list-item]
        p.es256.jwk,
    ]
    with make_gateway_client(supa_settings(supabase_jwt_secret=None), authenticated=False) as c:
        assert c.get("/api/session", headers=_bearer(p.token(OP))).status_code == 200
        for token in (p.token(OP, kid="sym"), p.token(OP, key=p.rs256, kid="enc")):
            r = c.get("/api/session", headers=_bearer(token))
            assert r.status_code == 401 and "unknown_key" in r.json()["detail"], r.text
        assert c.app.state.sd.counters["jwks_keys"] == 1  # type: ignore[attr-defined]


async def test_non_operators_get_403_and_removal_takes_effect_within_the_cache_ttl(
    supa_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    add_operator: Op,
    remove_operator: Op,
) -> None:
    clock = FakeMonotonic()
    stranger = uuid.uuid4()
    await add_operator(OP)
    with make_gateway_client(supa_settings(), authenticated=False, monotonic=clock) as c:
        r = c.get("/api/session", headers=_bearer(supabase_project.token(stranger)))
        assert r.status_code == 403, r.text
        assert "not an operator" in r.json()["detail"]
        token = supabase_project.token(OP)
        assert c.get("/api/session", headers=_bearer(token)).status_code == 200
        await remove_operator(OP)
        assert c.get("/api/session", headers=_bearer(token)).status_code == 200  # cached
        clock.t += 5.1
        assert c.get("/api/session", headers=_bearer(token)).status_code == 403
        await add_operator(stranger)
        clock.t += 5.1
        r = c.get("/api/session", headers=_bearer(supabase_project.token(stranger)))
        assert r.status_code == 200
        assert c.app.state.sd.counters["jwt_not_operator"] == 2  # type: ignore[attr-defined]


async def test_key_rotation_and_a_flood_of_unknown_kids(
    supa_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    jwks_server: JwksServer,
    add_operator: Op,
) -> None:
    await add_operator(OP)
    p, clock = supabase_project, FakeMonotonic()
    new_key = SigningKey("ES256", "es-key-2")
    with make_gateway_client(supa_settings(), authenticated=False, monotonic=clock) as c:
        old_token, new_token = p.token(OP), p.token(OP, key=new_key)
        assert c.get("/api/session", headers=_bearer(old_token)).status_code == 200
        assert jwks_server.hits == 1
        # Made-up key ids: at most one refetch per SUPABASE_JWKS_MIN_INTERVAL (30 s).
        for i in range(20):
            bogus = p.token(OP, key=new_key, kid=f"bogus-{i}")
            assert c.get("/api/session", headers=_bearer(bogus)).status_code == 401
        assert jwks_server.hits == 1
        clock.t += 31
        for i in range(5):
            bogus = p.token(OP, key=new_key, kid=f"bogus-again-{i}")
            assert c.get("/api/session", headers=_bearer(bogus)).status_code == 401
        assert jwks_server.hits == 2
        # Rotation: the project publishes its new key; tokens signed with it are accepted
        # once the set is fetched again; tokens of the old key still pass meanwhile.
        jwks_server.keys = [*jwks_server.keys, new_key.jwk]
        assert c.get("/api/session", headers=_bearer(new_token)).status_code == 401
        clock.t += 31
        assert c.get("/api/session", headers=_bearer(new_token)).status_code == 200
        assert c.get("/api/session", headers=_bearer(old_token)).status_code == 200
        assert jwks_server.hits == 3
        # The old key is revoked (dropped from the JWKS): refused once the TTL has passed.
        jwks_server.keys = [new_key.jwk]
        assert c.get("/api/session", headers=_bearer(old_token)).status_code == 200
        clock.t += 601
        r = c.get("/api/session", headers=_bearer(old_token))
        assert r.status_code == 401 and "unknown_key" in r.json()["detail"]
        assert c.get("/api/session", headers=_bearer(new_token)).status_code == 200
        assert jwks_server.hits == 4


async def test_jwks_down_keeps_the_last_good_set_and_none_at_all_is_503(
    supa_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    jwks_server: JwksServer,
    add_operator: Op,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_operator(OP)
    p, clock = supabase_project, FakeMonotonic()
    token = p.token(OP)
    with make_gateway_client(supa_settings(), authenticated=False, monotonic=clock) as c:
        counters = c.app.state.sd.counters  # type: ignore[attr-defined]
        assert c.get("/api/session", headers=_bearer(token)).status_code == 200
        jwks_server.status = 503
        clock.t += 601  # the set is stale: a refetch is tried, fails, the old set serves
        assert c.get("/api/session", headers=_bearer(token)).status_code == 200
        assert counters["jwks_fetch_failures"] == 1 and jwks_server.hits == 2
        assert c.get("/api/session", headers=_bearer(token)).status_code == 200
        assert jwks_server.hits == 2  # not retried on every request
        assert "JWKS fetch from" in caplog.text and "keeping the last good set" in caplog.text

    # A project whose JWKS was never reachable: 503 for asymmetric tokens, not 401 or 500;
    # the legacy secret still works.
    jwks_server.stop()
    with make_gateway_client(supa_settings(), authenticated=False) as c:
        r = c.get("/api/session", headers=_bearer(token))
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] and "signing keys" in r.json()["detail"]
        assert c.get("/api/session", headers=_bearer(p.hs256(OP))).status_code == 200


def _gateway_heartbeat_counters(redis_url: str) -> dict[str, Any]:
    r = redis.Redis.from_url(redis_url)
    try:
        raw = next((r.get(k) for k in r.scan_iter(heartbeat_key("gateway", "*"))), None)
    finally:
        r.close()
    return dict(json.loads(raw).get("counters", {})) if raw else {}


def test_failed_jwts_count_towards_the_limit_and_show_in_the_heartbeat(
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    redis_url: str,
) -> None:
    settings = gateway_settings(supabase_url=supabase_project.url, gateway_login_max_failures=3)
    expired = supabase_project.token(OP, exp=1_000_000)
    with make_gateway_client(settings, authenticated=False) as c:
        statuses = [c.get("/api/trades", headers=_bearer(expired)).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        # The counters travel in the gateway's heartbeat (health's /metrics, /api/status).
        deadline = time.monotonic() + 10
        while _gateway_heartbeat_counters(redis_url).get("jwt_refused_expired") != 3:
            assert time.monotonic() < deadline, _gateway_heartbeat_counters(redis_url)
            time.sleep(0.05)


def test_supabase_off_ignores_jwts(
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
    supabase_project: Project,
    jwks_server: JwksServer,
) -> None:
    with make_gateway_client(gateway_settings(), authenticated=False) as c:
        r = c.get("/api/trades", headers=_bearer(supabase_project.token(OP)))
        assert r.status_code == 401 and r.json() == {"detail": "invalid token"}
    assert jwks_server.hits == 0
