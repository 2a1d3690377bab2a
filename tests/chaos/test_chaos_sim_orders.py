"""market-sim's ``GET /admin/broker/orders``: the order log the chaos checker compares with
``trades`` (every order, oldest first, even while HTTP faults hang the trader API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from schwab.orders.equities import equity_buy_limit, equity_buy_market
from schwab.utils import Utils

from streamdesk.config import CommonSettings, load_settings
from streamdesk.schwab import ensure_paper_token, make_client

pytestmark = pytest.mark.integration


def test_admin_order_log_lists_every_order(market_sim: Any, tmp_path: Path) -> None:
    settings = load_settings(CommonSettings, **market_sim.settings_overrides(tmp_path))
    ensure_paper_token(settings)
    client = make_client(settings, timeout=5.0)
    try:
        account = client.get_account_numbers().json()[0]["hashValue"]
        assert market_sim.admin_get("broker/orders") == []
        r1 = client.place_order(account, equity_buy_market("AAPL", 2))
        r2 = client.place_order(account, equity_buy_limit("MSFT", 1, "1.00"))
        ids = [Utils(client, account).extract_order_id(r) for r in (r1, r2)]
        market_sim.http_fault(hang=True, path_prefix="/trader")  # the admin API is unaffected
        orders = market_sim.admin_get("broker/orders")
    finally:
        market_sim.clear_faults()
        client.session.close()
    assert [o["order_id"] for o in orders] == ids
    assert [(o["symbol"], o["instruction"], o["quantity"], o["order_type"]) for o in orders] == [
        ("AAPL", "BUY", 2.0, "MARKET"),
        ("MSFT", "BUY", 1.0, "LIMIT"),
    ]
    assert orders[1]["price"] == 1.0 and orders[1]["status"] == "WORKING"
    assert all(o["entered_time"] for o in orders)
