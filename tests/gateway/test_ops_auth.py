"""Re-authentication from the browser (the manual flow of `streamdesk auth`) against market-sim.

The simulator's authorize page redirects at once to the callback URL with a code and the
state, as Schwab does after a login; the token exchange goes to its real OAuth endpoint.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from streamdesk import cli_auth
from streamdesk.config import CommonSettings, load_settings
from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.integration

CALLBACK = "https://127.0.0.1:8182"


def login_redirect(authorize_url: str) -> str:
    """Follow the authorize page as a browser would; return where it sends the user."""
    resp = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    return str(resp.headers["location"])


def test_browser_login_writes_a_private_token(
    market_sim: Any,
    tmp_path: Path,
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
) -> None:
    settings = gateway_settings(**market_sim.settings_overrides(tmp_path))
    token_path = Path(settings.schwab_token_path)
    with make_gateway_client(settings) as client:
        assert client.get("/api/ops/token").json()["exists"] is False
        started = client.post("/api/ops/auth/start").json()
        assert started["authorize_url"].startswith(market_sim.base_url + "/v1/oauth/authorize?")
        assert f"state={started['state']}" in started["authorize_url"]
        redirected = login_redirect(started["authorize_url"])
        assert redirected.startswith(CALLBACK) and started["state"] in redirected

        resp = client.post("/api/ops/auth/complete", json={"redirect_url": redirected})
        assert resp.status_code == 200 and resp.json() == {"ok": True}
        assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
        data = json.loads(token_path.read_text())
        assert data["token"]["refresh_token"] and data["token"]["access_token"]
        body = client.get("/api/ops/token")
        assert body.json()["exists"] is True and body.json()["refresh_expires_in_s"] > 6 * 86400
        for value in data["token"].values():
            if isinstance(value, str) and len(value) > 8:
                assert value not in body.text and value not in resp.text

        # The same redirect again: its login is used up.
        again = client.post("/api/ops/auth/complete", json={"redirect_url": redirected})
        assert again.status_code == 422 and "unknown or expired login" in again.json()["error"]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://evil.example:8182/?code=c&state=s", "must be the callback URL"),
        ("http://127.0.0.1:8182/?code=c&state=s", "must be the callback URL"),
        ("https://127.0.0.1:8182/other?code=c&state=s", "must be the callback URL"),
        ("https://127.0.0.1:8182/?state=s", "no authorization code"),
        ("https://127.0.0.1:8182/?code=c", "no state"),
        ("https://127.0.0.1:8182/?error=access_denied&state=s", "refused the login"),
        ("https://127.0.0.1:8182/?code=c&state=never-started", "unknown or expired login"),
        ("https://[::1/?code=c", "not a URL"),
        ("not a url at all", "must be the callback URL"),
    ],
)
def test_bad_redirect_urls_get_a_clear_422(
    gateway_client: TestClient, url: str, words: str
) -> None:
    resp = gateway_client.post("/api/ops/auth/complete", json={"redirect_url": url})
    assert resp.status_code == 422, resp.text
    assert words in resp.json()["error"]


def test_shape_errors_are_422(gateway_client: TestClient) -> None:
    for body in ({}, {"redirect_url": ""}, {"redirect_url": 5}, {"redirect_url": "x", "y": 1}):
        assert gateway_client.post("/api/ops/auth/complete", json=body).status_code == 422


def test_state_mismatch_and_refused_exchange(market_sim_factory: Any, tmp_path: Path) -> None:
    # This simulator checks the app's credentials, as Schwab does.
    market_sim = market_sim_factory(
        app_key="streamdesk-sim-key", app_secret="streamdesk-sim-secret"
    )
    s = load_settings(CommonSettings, **market_sim.settings_overrides(tmp_path))
    started = cli_auth.start_login(s)
    redirected = login_redirect(started.authorize_url)
    with pytest.raises(cli_auth.LoginError, match="state mismatch"):
        cli_auth.complete_login(s, "another-state", redirected)
    wrong = load_settings(
        CommonSettings, **{**market_sim.settings_overrides(tmp_path), "schwab_app_secret": "no"}
    )
    with pytest.raises(cli_auth.LoginError, match="refused"):
        cli_auth.complete_login(wrong, started.state, redirected)
    assert not Path(s.schwab_token_path).exists()
    cli_auth.complete_login(s, started.state, redirected)
    assert json.loads(Path(s.schwab_token_path).read_text())["token"]["access_token"]
