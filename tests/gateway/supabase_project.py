"""A stand-in Supabase project for the gateway's sign-in tests: signing keys generated at run
time (ES256, RS256 and a legacy HS256 secret), access tokens signed with them, and the
project's JWKS served by a real HTTP server on 127.0.0.1.

Tokens carry ``iat``/``exp`` relative to the real time (what PyJWT checks them against);
nothing here depends on the time of day.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


class JwksServer:
    """Serves ``{"keys": self.keys}`` at the JWKS path (``status`` != 200 answers an error);
    ``hits`` counts the requests. Started by :meth:`start`, stopped by :meth:`stop`."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                server.hits += 1
                if server.status != 200:
                    self.send_error(server.status)
                    return
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> JwksServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SigningKey:
    """One asymmetric signing key of the project and its public JWK."""

    def __init__(self, alg: str, kid: str) -> None:
        self.alg = alg
        self.kid = kid
        if alg == "ES256":
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk: dict[str, Any] = {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class Project:
    """Keys and claims of a Supabase project whose auth lives at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.issuer = f"{url}/auth/v1"
        self.es256 = SigningKey("ES256", "es-key-1")
        self.rs256 = SigningKey("RS256", "rs-key-1")
        self.secret = secrets.token_urlsafe(48)

    def claims(self, sub: uuid.UUID | str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": "authenticated",
            "sub": str(sub),
            "role": "authenticated",
            "email": "someone@example.com",
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self, sub: uuid.UUID | str, *, key: SigningKey | None = None, kid: str | None = None,
        **overrides: Any,
    ) -> str:  # fmt: skip
        """An access token for ``sub`` signed with ``key`` (default the ES256 one)."""
        key = key or self.es256
        return jwt.encode(
            self.claims(sub, **overrides), key.private, algorithm=key.alg,
            headers={"kid": kid or key.kid},
        )  # fmt: skip

    def hs256(
        self, sub: uuid.UUID | str, secret: str | bytes | None = None, **overrides: Any
    ) -> str:
        """A legacy-secret token, or one HMAC-signed with any ``secret`` bytes (PyJWT refuses
        to use a PEM as an HMAC key, so this forger signs by hand, as an attacker would)."""
        return forge(self.claims(sub, **overrides), secret or self.secret, alg="HS256")


def forge(claims: dict[str, Any], secret: str | bytes, *, alg: str = "HS256") -> str:
    """A compact JWS with header ``{"alg": alg, "typ": "JWT"}`` and an HMAC-SHA256 signature
    under ``secret``; for ``alg`` "none" the signature is ``secret`` itself (empty: none)."""
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    key = secret.encode() if isinstance(secret, str) else secret
    if alg == "none":
        return f"{header}.{payload}.{_b64(key)}"
    return f"{header}.{payload}.{_b64(hmac.new(key, signing_input, hashlib.sha256).digest())}"
