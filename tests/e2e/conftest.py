"""The dashboard end to end: the whole local stack (`python -m streamdesk_dev.stack`, market-sim as
market and broker) serving the built frontend, driven in Debian's Chromium by Playwright.

One stack and one browser per module (starting them is most of the cost); each test gets a
fresh, logged-in page. Screenshots go to ``.artifacts/e2e/`` (or ``E2E_ARTIFACTS``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from e2e_support import CHROMIUM, CHROMIUM_ARGS, E2EStack
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from stack_harness import ROOT, Stack, wait_for, workdir_under

from streamdesk.partitions import ensure_partitions

TICKERS = "SPY,QQQ,AAPL"
#: A previous session seeded into the database, so that history browsing has a day to show.
PREVIOUS_SESSION = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # 10:00 New York


@pytest.fixture(scope="session")
def dashboard_dist() -> Path:
    """frontend/dist, built (or found up to date) by the same script `make run` uses."""
    if shutil.which("node") is None:
        pytest.fail("Node.js >= 20 is needed to build the dashboard (make frontend)")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-frontend.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dist = ROOT / "frontend" / "dist"
    assert (dist / "index.html").is_file()
    return dist


async def _seed_previous_session(dsn: str) -> None:
    """Two minutes of AAPL at PREVIOUS_SESSION (seconds through the views' insert triggers,
    and their 1-minute bars)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await ensure_partitions(conn, days_ahead=0, today=PREVIOUS_SESSION.date(), days_behind=0)
        for i in range(120):
            ts = PREVIOUS_SESSION + timedelta(seconds=i)
            price = 150.0 + (i % 10) / 10
            await conn.execute(
                'INSERT INTO equity_data (ticker, "timestamp", price, volume) '
                "VALUES ('AAPL', $1, $2, 100) ON CONFLICT DO NOTHING",
                ts,
                price,
            )
            await conn.execute(
                'INSERT INTO indicators (ticker, "timestamp", sma9, vwap) '
                "VALUES ('AAPL', $1, $2, 150.4) ON CONFLICT DO NOTHING",
                ts,
                price - 0.05,
            )
        for minute in range(2):  # the writer's 1-minute bars of those seconds
            prices = [150.0 + (i % 10) / 10 for i in range(minute * 60, minute * 60 + 60)]
            await conn.execute(
                "INSERT INTO bars_1m (ticker, bucket, open, high, low, close, volume, vwap) "
                "VALUES ('AAPL', $1, $2, $3, $4, $5, 6000, 150.4) ON CONFLICT DO NOTHING",
                PREVIOUS_SESSION + timedelta(minutes=minute),
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
            )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def e2e_stack(tmp_root: Path, dashboard_dist: Path) -> Iterator[E2EStack]:
    token = secrets.token_urlsafe(24)
    stack = Stack(
        workdir_under(tmp_root, f"e2e{os.getpid() % 1000}"),
        GATEWAY_TOKEN=token,
        GATEWAY_STATIC_DIR=str(dashboard_dist),
        TICKERS=TICKERS,
        OPTION_UNDERLYINGS="SPY",
        MARKET_HOURS="always",
        SIM_CLOCK="always",
    )
    try:
        stack.wait_log(r"stack: services: ", 90)
        for name in ("gateway", "streamer", "indicators", "executor"):
            wait_for(f"{name} serving", lambda n=name: stack.serving(n), 90, stack.log)
        wait_for("equity rows", stack.equity_rows, 90, stack.log)
        e2e = E2EStack(stack, token)
        asyncio.run(_seed_previous_session(e2e.dsn))
        yield e2e
    finally:
        stack.kill_all()


@pytest.fixture(scope="module")
def playwright_driver(e2e_stack: E2EStack) -> Iterator[Playwright]:
    # After the stack: Playwright's sync API runs an event loop in this thread, after which
    # the stack's set-up (asyncio.run) could not run.
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    b = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser, e2e_stack: E2EStack) -> Iterator[Page]:
    """A fresh context, logged in through the login link `make run` prints."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(f"{e2e_stack.base}/#login={e2e_stack.token}")
    pg.get_by_test_id("watchlist").wait_for()
    yield pg
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
