"""The gateway serves the built frontend (with client-side routes), or says how to build it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from streamdesk_gateway.config import Settings

pytestmark = pytest.mark.integration


def test_serves_the_build_with_spa_fallback(
    tmp_path: Path,
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>built app</title>")
    (dist / "assets" / "app.js").write_text("console.log(1)")
    with make_gateway_client(gateway_settings(gateway_static_dir=dist), authenticated=False) as c:
        assert "built app" in c.get("/").text
        js = c.get("/assets/app.js")
        assert js.status_code == 200 and js.text == "console.log(1)"
        assert "built app" in c.get("/orders/42").text  # a client-side route
        assert c.get("/assets/missing.js").status_code == 404  # not a route: a missing file
        assert c.get("/api/nothing").status_code == 401  # the API is not the app
        assert c.get("/livez").json() == {"status": "ok"}


def test_without_a_build_says_how_to_build_it(
    tmp_path: Path,
    gateway_settings: Callable[..., Settings],
    make_gateway_client: Callable[..., TestClient],
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with make_gateway_client(gateway_settings(gateway_static_dir=empty)) as c:
        page = c.get("/")
        assert page.status_code == 200 and "make run" in page.text and "npm" in page.text
