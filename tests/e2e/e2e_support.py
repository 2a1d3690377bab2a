"""What the dashboard's end-to-end tests share: the running stack's handles, screenshots."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Page
from stack_harness import ROOT, Stack

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", ROOT / ".artifacts" / "e2e"))


class E2EStack:
    """The running stack with what the dashboard tests need to reach."""

    def __init__(self, stack: Stack, token: str) -> None:
        self.stack = stack
        self.token = token
        self.base = f"http://127.0.0.1:{stack.ports['gateway']}"
        self.dsn = f"postgresql://postgres@127.0.0.1:{stack.ports['pg']}/streamdesk"

    def api(self, path: str, body: bytes | None = None, method: str = "GET") -> Any:
        """The gateway's JSON answer for ``path``, authenticated with the bearer token."""
        req = urllib.request.Request(
            self.base + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def broker_orders(self) -> list[dict[str, Any]]:
        """market-sim's order log: every order the broker received."""
        url = f"http://127.0.0.1:{self.stack.ports['sim']}/admin/broker/orders"
        with urllib.request.urlopen(url, timeout=10) as resp:
            orders: list[dict[str, Any]] = json.loads(resp.read())
        return orders


def shot(page: Page, name: str) -> Path:
    """Save a screenshot of the page as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
