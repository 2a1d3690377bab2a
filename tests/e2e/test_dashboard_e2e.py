"""The dashboard in Chromium against the whole local stack: what a trader does all day.

Each test drives the page through its ``data-testid`` handles (frontend/README.md) and checks
the backend's side where it matters: market-sim's order log for what reached the broker,
supervisord for the streamer.
"""

from __future__ import annotations

import re
import time

import pytest
from e2e_support import E2EStack, shot
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _num(text: str | None) -> float:
    assert text, "empty cell"
    return float(re.sub(r"[^0-9.\-]", "", text))


def _changes(page: Page, test_id: str, within: float) -> tuple[str, str]:
    """The text of ``test_id`` now and once it has changed (within ``within`` seconds)."""
    loc = page.get_by_test_id(test_id)
    expect(loc).not_to_be_empty()
    first = loc.inner_text()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        now = loc.inner_text()
        if now and now != first:
            return first, now
        page.wait_for_timeout(100)
    raise AssertionError(f"{test_id} stayed {first!r} for {within}s")


def test_login_form_refuses_a_wrong_token_then_logs_in(
    browser: Browser, e2e_stack: E2EStack
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(e2e_stack.base + "/")
        page.get_by_test_id("login-token").fill("not-the-token")
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("login-error")).to_be_visible()
        expect(page.get_by_test_id("watchlist")).to_have_count(0)
        page.get_by_test_id("login-token").fill(e2e_stack.token)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("watchlist")).to_be_visible()
        # The session is a cookie the page's scripts cannot read.
        cookies = context.cookies()
        assert cookies and all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies)
        assert e2e_stack.token not in page.evaluate("document.cookie")
    finally:
        context.close()


def test_login_link_leaves_no_token_in_the_address_bar(page: Page, e2e_stack: E2EStack) -> None:
    assert e2e_stack.token not in page.url
    shot(page, "watchlist-and-chart")


def test_watchlist_and_forming_candle_update_live(page: Page) -> None:
    for ticker in ("SPY", "QQQ", "AAPL"):
        expect(page.get_by_test_id(f"wl-{ticker}")).to_be_visible()
    _changes(page, "wl-last-SPY", 20)
    page.get_by_test_id("wl-SPY").click()
    expect(page.get_by_test_id("chart")).to_be_visible()
    # The legend shows the forming (last) candle; live ticks change it.
    _changes(page, "chart-legend", 20)


def test_switching_timeframe_loads_aggregated_candles(page: Page) -> None:
    page.get_by_test_id("wl-SPY").click()
    for tf in ("1m", "5m", "1h", "1D", "1s"):
        with page.expect_response(
            lambda r, tf=tf: "/api/candles/SPY" in r.url and f"tf={tf}" in r.url
        ) as resp:
            page.get_by_test_id(f"tf-{tf}").click()
        assert resp.value.status == 200, resp.value.text()
    shot(page, "chart-1s")


def test_browsing_the_previous_session(page: Page) -> None:
    page.get_by_test_id("wl-AAPL").click()
    today = page.get_by_test_id("session-date").input_value()
    with page.expect_response(
        lambda r: "/api/candles/AAPL" in r.url and "session=2026-03-10" in r.url
    ) as resp:
        page.get_by_test_id("session-prev").click()
    assert resp.value.status == 200
    assert resp.value.json()["t"], "the seeded previous session has candles"
    expect(page.get_by_test_id("session-date")).to_have_value("2026-03-10")
    assert today != "2026-03-10"
    shot(page, "history-previous-session")


def test_adding_a_ticker_at_run_time_makes_it_stream(page: Page, e2e_stack: E2EStack) -> None:
    page.get_by_test_id("tab-ops").click()
    page.get_by_test_id("ops-universe-input").fill("IWM")
    page.get_by_test_id("ops-universe-add").click()
    shot(page, "operations")
    expect(page.get_by_test_id("wl-IWM")).to_be_visible(timeout=15_000)
    expect(page.get_by_test_id("wl-last-IWM")).to_have_text(re.compile(r"\d"), timeout=30_000)
    assert "IWM" in e2e_stack.api("/api/ops/universe")["equities"]


def test_chain_shows_greeks_and_fills_the_ticket(page: Page) -> None:
    page.get_by_test_id("wl-SPY").click()
    page.get_by_test_id("tab-chain").click()
    chain = page.get_by_test_id("chain")
    expect(chain).to_be_visible()
    ask = chain.locator("[data-testid^=chain-ask-]").first
    expect(ask).to_have_text(re.compile(r"\d"), timeout=30_000)
    delta = chain.locator("[data-testid^=chain-delta-]").first
    assert -1.0 <= _num(delta.inner_text()) <= 1.0
    occ = (ask.get_attribute("data-testid") or "").removeprefix("chain-ask-")
    shot(page, "option-chain")
    ask.click()
    expect(page.get_by_test_id("ticket-symbol")).to_have_value(occ)
    expect(page.get_by_test_id("ticket-asset")).to_have_value("OPTION")


def _open_ticket(page: Page, symbol: str, qty: int, price: float, side: str = "b") -> None:
    page.get_by_test_id(f"wl-{symbol}").click()
    page.keyboard.press(side)  # b = buy ticket, s = sell ticket
    expect(page.get_by_test_id("ticket")).to_be_visible()
    page.get_by_test_id("ticket-order-type").select_option("LIMIT")
    page.get_by_test_id("ticket-qty").fill(str(qty))
    page.get_by_test_id("ticket-price").fill(f"{price:.2f}")


def test_marketable_limit_buy_fills_and_the_position_shows_pnl(
    page: Page, e2e_stack: E2EStack
) -> None:
    ask = e2e_stack.api("/api/quotes")["QQQ"]["ask"]
    _open_ticket(page, "QQQ", 3, ask * 1.01)
    expect(page.get_by_test_id("ticket-notional")).to_have_text(re.compile(r"\d"))
    page.get_by_test_id("ticket-preview").click()
    expect(page.get_by_test_id("ticket-violations")).to_have_count(0)
    shot(page, "trade-ticket")
    page.get_by_test_id("ticket-submit").click()
    page.get_by_test_id("ticket-confirm").click()
    result = page.get_by_test_id("ticket-result")
    expect(result).to_contain_text(re.compile(r"#\d+"))
    trade_id = re.search(r"#(\d+)", result.inner_text()).group(1)  # type: ignore[union-attr]
    page.get_by_test_id("tab-orders").click()
    expect(page.get_by_test_id(f"order-status-{trade_id}")).to_have_text("filled", timeout=30_000)
    shot(page, "orders-blotter")
    page.get_by_test_id("tab-positions").click()
    pos = page.get_by_test_id("pos-QQQ")
    expect(pos).to_be_visible(timeout=30_000)
    expect(pos.get_by_test_id("pos-unrealized-QQQ")).to_have_text(re.compile(r"\d"))
    shot(page, "positions-pnl")


def test_a_risk_violation_shows_its_reason_and_reaches_no_broker(
    page: Page, e2e_stack: E2EStack
) -> None:
    before = len(e2e_stack.broker_orders())
    ask = e2e_stack.api("/api/quotes")["SPY"]["ask"]
    _open_ticket(page, "SPY", 20_000, ask)  # over RISK_MAX_QUANTITY_EQUITY and the notional cap
    page.get_by_test_id("ticket-preview").click()
    violations = page.get_by_test_id("ticket-violations")
    expect(violations).to_contain_text(re.compile(r"quantity|notional", re.I))
    expect(page.get_by_test_id("ticket-submit")).to_be_disabled()
    page.wait_for_timeout(1500)  # anything wrongly sent would reach the broker within this
    assert len(e2e_stack.broker_orders()) == before


def test_cancelling_a_resting_order(page: Page, e2e_stack: E2EStack) -> None:
    bid = e2e_stack.api("/api/quotes")["AAPL"]["bid"]
    _open_ticket(page, "AAPL", 1, bid * 0.97)  # inside the 5 % collar, below the market
    page.get_by_test_id("ticket-preview").click()
    page.get_by_test_id("ticket-submit").click()
    page.get_by_test_id("ticket-confirm").click()
    result = page.get_by_test_id("ticket-result")
    expect(result).to_contain_text(re.compile(r"#\d+"))
    trade_id = re.search(r"#(\d+)", result.inner_text()).group(1)  # type: ignore[union-attr]
    page.get_by_test_id("tab-orders").click()
    expect(page.get_by_test_id(f"order-status-{trade_id}")).to_have_text("working", timeout=30_000)
    page.get_by_test_id(f"order-cancel-{trade_id}").click()
    expect(page.get_by_test_id(f"order-status-{trade_id}")).to_have_text(
        "cancelled", timeout=30_000
    )
    page.get_by_test_id(f"order-{trade_id}").click()  # the timeline of its trade_events
    expect(page.get_by_test_id("order-events")).to_contain_text("cancel")


def test_a_stop_order_is_a_chart_line_dragged_to_move_it(page: Page, e2e_stack: E2EStack) -> None:
    stop = round(e2e_stack.api("/api/quotes")["SPY"]["ask"] * 1.03, 2)  # a buy stop above
    page.get_by_test_id("wl-SPY").click()
    page.keyboard.press("b")
    page.get_by_test_id("ticket-order-type").select_option("STOP")
    page.get_by_test_id("ticket-qty").fill("1")
    page.get_by_test_id("ticket-stop").fill(f"{stop:.2f}")
    page.get_by_test_id("ticket-preview").click()
    expect(page.get_by_test_id("ticket-preview-result")).to_be_visible()
    expect(page.get_by_test_id("ticket-violations")).to_have_count(0)
    page.get_by_test_id("ticket-submit").click()
    expect(page.get_by_test_id("ticket-summary")).to_contain_text(f"STOP {stop:.2f}")
    page.get_by_test_id("ticket-confirm").click()
    result = page.get_by_test_id("ticket-result")
    expect(result).to_contain_text(re.compile(r"#\d+"))
    trade_id = re.search(r"#(\d+)", result.inner_text()).group(1)  # type: ignore[union-attr]
    page.get_by_test_id("tab-orders").click()
    expect(page.get_by_test_id(f"order-status-{trade_id}")).to_have_text("working", timeout=30_000)
    expect(page.get_by_test_id(f"order-price-{trade_id}")).to_have_text(f"STP {stop:.2f}")
    chart = page.get_by_test_id("chart")
    expect(chart).to_have_attribute("data-order-lines", re.compile(rf"\b{trade_id}:stop:"))
    # Find the line as a trader does: the pointer over it turns the resize cursor on.
    box = chart.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, None
    for dy in range(4, int(box["height"]) - 30, 4):
        page.mouse.move(x, box["y"] + dy)
        if "over-line" in (chart.get_attribute("class") or ""):
            y = box["y"] + dy
            break
    assert y is not None, "no stop line under the pointer"
    page.mouse.down()
    page.mouse.move(x, y - 24, steps=4)
    page.mouse.up()
    expect(page.get_by_test_id("stop-move")).to_be_visible()
    to = _num(page.get_by_test_id("stop-move-to").inner_text())
    assert to > stop
    shot(page, "stop-line-drag")
    page.get_by_test_id("stop-move-confirm").click()
    expect(page.get_by_test_id("stop-move")).to_be_hidden()
    # The executor replaces the broker order: the row's stop becomes the one dropped.
    expect(page.get_by_test_id(f"order-price-{trade_id}")).to_have_text(
        f"STP {to:.2f}", timeout=30_000
    )
    events = e2e_stack.api(f"/api/trades/{trade_id}/events")
    assert any(e["reason"] == "stop move requested by the user" for e in events), events
    page.get_by_test_id(f"order-cancel-{trade_id}").click()
    expect(page.get_by_test_id(f"order-status-{trade_id}")).to_have_text(
        "cancelled", timeout=30_000
    )


def test_a_bracket_from_the_ticket_shows_its_legs_nested_and_cancels_whole(
    page: Page, e2e_stack: E2EStack
) -> None:
    entry = round(e2e_stack.api("/api/quotes")["SPY"]["bid"] * 0.99, 2)  # rests below
    _open_ticket(page, "SPY", 1, entry)
    for leg, offset in (("tp", "15"), ("sl", "5")):
        page.get_by_test_id(f"ticket-{leg}-on").check()
        page.get_by_test_id(f"ticket-{leg}-mode").select_option("offset")
        page.get_by_test_id(f"ticket-{leg}").fill(offset)
    expect(page.get_by_test_id("ticket-tp-price")).to_have_text(f"→ {entry + 15:.2f}")
    expect(page.get_by_test_id("ticket-sl-price")).to_have_text(f"→ {entry - 5:.2f}")
    page.get_by_test_id("ticket-preview").click()
    expect(page.get_by_test_id("ticket-preview-exits")).to_contain_text(
        f"take-profit {entry + 15:.2f} · stop-loss {entry - 5:.2f}"
    )
    expect(page.get_by_test_id("ticket-violations")).to_have_count(0)
    shot(page, "ticket-bracket")
    page.get_by_test_id("ticket-submit").click()
    page.get_by_test_id("ticket-confirm").click()
    result = page.get_by_test_id("ticket-result")
    expect(result).to_contain_text(re.compile(r"#\d+"))
    trade_id = re.search(r"#(\d+)", result.inner_text()).group(1)  # type: ignore[union-attr]
    page.get_by_test_id("tab-orders").click()
    expect(page.get_by_test_id(f"order-status-{trade_id}")).to_have_text("working", timeout=30_000)
    expect(page.get_by_test_id(f"order-{trade_id}")).to_have_attribute("data-leg", "entry")
    legs = page.locator(f'[data-parent="{trade_id}"]')
    expect(legs).to_have_count(2)
    expect(legs.first).to_have_attribute("data-leg", "take_profit")
    expect(legs.nth(1)).to_contain_text("awaiting parent")
    shot(page, "blotter-bracket")
    page.get_by_test_id(f"order-cancel-{trade_id}").click()
    for row in (page.get_by_test_id(f"order-{trade_id}"), legs.first, legs.nth(1)):
        expect(row).to_contain_text("cancelled", timeout=30_000)


def test_stopping_the_streamer_turns_the_stale_indicator_on(
    page: Page, e2e_stack: E2EStack
) -> None:
    stale = page.get_by_test_id("status-stale")
    expect(page.get_by_test_id("status-market")).to_contain_text(re.compile("open", re.I))
    expect(stale).to_be_hidden(timeout=15_000)
    rpc = e2e_stack.stack.rpc
    rpc.supervisor.stopProcess("streamer")
    try:
        stopped = time.monotonic()
        expect(stale).to_be_visible(timeout=5_000)
        assert time.monotonic() - stopped <= 5.0
        shot(page, "status-stale")
    finally:
        rpc.supervisor.startProcess("streamer")
    expect(stale).to_be_hidden(timeout=30_000)


def test_live_feed_reconnects_by_itself_and_backfills(page: Page, e2e_stack: E2EStack) -> None:
    """The gateway restarts under the page (supervisord): the socket drops, the page
    reconnects without a reload and refetches the candles it missed, with a small limit."""
    conn = page.get_by_test_id("status-conn")
    expect(conn).to_have_attribute("data-state", "open", timeout=15_000)
    rpc = e2e_stack.stack.rpc
    rpc.supervisor.stopProcess("gateway")
    restarted = False
    try:
        expect(conn).not_to_have_attribute("data-state", "open", timeout=10_000)
        page.wait_for_timeout(2000)  # a couple of seconds of data the page does not see
        with page.expect_response(
            lambda r: "/api/candles/" in r.url and "limit=" in r.url and r.status == 200,
            timeout=40_000,
        ) as resp:
            rpc.supervisor.startProcess("gateway", False)  # don't wait for supervisord's startsecs
            restarted = True
            expect(conn).to_have_attribute("data-state", "open", timeout=30_000)
    finally:
        if not restarted:
            rpc.supervisor.startProcess("gateway", False)
    limit = int(re.search(r"limit=(\d+)", resp.value.url).group(1))  # type: ignore[union-attr]
    assert limit < 100, f"a backfill, not a full reload: {resp.value.url}"
    _changes(page, "wl-last-SPY", 20)  # and live again


def test_narrow_layout_has_no_horizontal_scroll(browser: Browser, e2e_stack: E2EStack) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{e2e_stack.base}/#login={e2e_stack.token}")
        expect(page.get_by_test_id("watchlist")).to_be_visible()
        page.wait_for_timeout(500)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"page is {width}px wide at 375px"
        shot(page, "narrow-375")
    finally:
        context.close()
