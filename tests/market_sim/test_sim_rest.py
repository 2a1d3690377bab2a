"""The real schwab-py Client against a running market-sim: REST, orders, paper broker."""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from schwab.orders.equities import equity_buy_limit, equity_buy_market, equity_sell_market
from schwab.orders.options import option_buy_to_open_market, option_sell_to_close_limit
from schwab.utils import Utils

from streamdesk.config import CommonSettings, load_settings
from streamdesk.schwab import ensure_paper_token, make_client

pytestmark = pytest.mark.integration


@pytest.fixture
def market_sim(market_sim_module: Any) -> Any:
    market_sim_module.clear_faults()
    market_sim_module.reset_broker()
    return market_sim_module


@pytest.fixture
def client(market_sim: Any, tmp_path: Path) -> Any:
    settings = load_settings(CommonSettings, **market_sim.settings_overrides(tmp_path))
    assert ensure_paper_token(settings) is True
    c = make_client(settings)
    yield c
    c.session.close()


def _account_hash(client: Any) -> str:
    r = client.get_account_numbers()
    assert r.status_code == 200
    return str(r.json()[0]["hashValue"])


def _wait_status(client: Any, order_id: int, account_hash: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        order = client.get_order(order_id, account_hash).json()
        if order["status"] == status or time.monotonic() > deadline:
            assert order["status"] == status, order
            return order  # type: ignore[no-any-return]
        time.sleep(0.05)


def test_preferences_point_at_the_sims_websocket(client: Any, market_sim: Any) -> None:
    prefs = client.get_user_preferences().json()
    info = prefs["streamerInfo"][0]
    assert info["streamerSocketUrl"] == market_sim.ws_url
    assert info["schwabClientChannel"] and info["schwabClientFunctionId"]
    assert prefs["accounts"][0]["accountNumber"] == "12345678"


def test_accounts_and_quotes(client: Any) -> None:
    account_hash = _account_hash(client)
    acct = client.get_account(account_hash, fields=client.Account.Fields.POSITIONS).json()
    bal = acct["securitiesAccount"]["currentBalances"]
    assert bal["cashBalance"] == 100_000 and bal["buyingPower"] == 100_000
    assert acct["securitiesAccount"]["positions"] == []
    quotes = client.get_quotes(["AAPL", "SPY"]).json()
    for sym in ("AAPL", "SPY"):
        q = quotes[sym]["quote"]
        assert 0 < q["bidPrice"] < q["askPrice"], q
        assert quotes[sym]["assetMainType"] == "EQUITY"


def test_market_buy_fills_and_updates_positions(client: Any) -> None:
    account_hash = _account_hash(client)
    r = client.place_order(account_hash, equity_buy_market("AAPL", 10))
    assert r.status_code == 201 and r.content == b""
    order_id = Utils(client, account_hash).extract_order_id(r)
    assert isinstance(order_id, int)
    order = _wait_status(client, order_id, account_hash, "FILLED")
    assert order["filledQuantity"] == 10 and order["remainingQuantity"] == 0
    fill = order["orderActivityCollection"][0]["executionLegs"][0]
    acct = client.get_account(account_hash, fields=client.Account.Fields.POSITIONS).json()
    sa = acct["securitiesAccount"]
    pos = {p["instrument"]["symbol"]: p for p in sa["positions"]}
    assert pos["AAPL"]["longQuantity"] == 10
    assert pos["AAPL"]["averagePrice"] == pytest.approx(fill["price"])
    assert sa["currentBalances"]["cashBalance"] == pytest.approx(100_000 - 10 * fill["price"])
    # Selling it back flattens the position.
    r = client.place_order(account_hash, equity_sell_market("AAPL", 10))
    sell_id = Utils(client, account_hash).extract_order_id(r)
    _wait_status(client, sell_id, account_hash, "FILLED")
    acct = client.get_account(account_hash, fields=client.Account.Fields.POSITIONS).json()
    assert acct["securitiesAccount"]["positions"] == []


def test_sell_without_position_is_rejected_with_reason(client: Any) -> None:
    account_hash = _account_hash(client)
    r = client.place_order(account_hash, equity_sell_market("MSFT", 5))
    assert r.status_code == 201
    order_id = Utils(client, account_hash).extract_order_id(r)
    order = client.get_order(order_id, account_hash).json()
    assert order["status"] == "REJECTED"
    assert "sell" in order["statusDescription"].lower()


def test_malformed_order_is_a_400(client: Any) -> None:
    account_hash = _account_hash(client)
    r = client.place_order(account_hash, {"orderType": "STOP_LIMIT_WHATEVER"})
    assert r.status_code == 400
    assert client.get_orders_for_account(account_hash).json() == []


def test_resting_limit_order_can_be_cancelled(client: Any) -> None:
    account_hash = _account_hash(client)
    ask = client.get_quote("MSFT").json()["MSFT"]["quote"]["askPrice"]
    limit = round(ask * 0.5, 2)
    r = client.place_order(account_hash, equity_buy_limit("MSFT", 3, f"{limit:.2f}"))
    order_id = Utils(client, account_hash).extract_order_id(r)
    time.sleep(0.3)  # several market steps: it must still rest
    assert client.get_order(order_id, account_hash).json()["status"] == "WORKING"
    working = client.get_orders_for_account(account_hash, status=client.Order.Status.WORKING).json()
    assert [o["orderId"] for o in working] == [order_id]
    r = client.cancel_order(order_id, account_hash)
    assert r.status_code == 200
    order = client.get_order(order_id, account_hash).json()
    assert order["status"] == "CANCELED" and order["filledQuantity"] == 0
    # A cancelled order cannot be cancelled again.
    assert client.cancel_order(order_id, account_hash).status_code == 400


def test_limit_order_fills_when_the_market_crosses(client: Any, market_sim: Any) -> None:
    account_hash = _account_hash(client)
    ask = client.get_quote("NVDA").json()["NVDA"]["quote"]["askPrice"]
    limit = round(ask * 0.9, 2)
    r = client.place_order(account_hash, equity_buy_limit("NVDA", 2, f"{limit:.2f}"))
    order_id = Utils(client, account_hash).extract_order_id(r)
    time.sleep(0.2)
    assert client.get_order(order_id, account_hash).json()["status"] == "WORKING"
    market_sim.set_price("NVDA", limit * 0.95)
    order = _wait_status(client, order_id, account_hash, "FILLED")
    price = order["orderActivityCollection"][0]["executionLegs"][0]["price"]
    assert price <= limit


def test_replace_order(client: Any) -> None:
    account_hash = _account_hash(client)
    ask = client.get_quote("AMD").json()["AMD"]["quote"]["askPrice"]
    r = client.place_order(account_hash, equity_buy_limit("AMD", 1, f"{ask * 0.5:.2f}"))
    old_id = Utils(client, account_hash).extract_order_id(r)
    r = client.replace_order(account_hash, old_id, equity_buy_limit("AMD", 2, f"{ask * 0.6:.2f}"))
    assert r.status_code == 201
    new_id = Utils(client, account_hash).extract_order_id(r)
    assert new_id != old_id
    assert client.get_order(old_id, account_hash).json()["status"] == "REPLACED"
    new = client.get_order(new_id, account_hash).json()
    assert new["status"] == "WORKING" and new["quantity"] == 2


def test_option_chain_and_option_orders(client: Any) -> None:
    account_hash = _account_hash(client)
    r = client.get_option_chain("SPY", strike_count=4)
    assert r.status_code == 200
    chain = r.json()
    assert chain["status"] == "SUCCESS" and chain["underlyingPrice"] > 0
    exp_key = sorted(chain["callExpDateMap"])[0]
    strikes = chain["callExpDateMap"][exp_key]
    assert len(strikes) == 4
    for strike_key, (call,) in strikes.items():
        (put,) = chain["putExpDateMap"][exp_key][strike_key]
        assert 0 < call["delta"] < 1 and -1 < put["delta"] < 0
        assert call["bid"] <= call["ask"]
        # Put-call parity on the theoretical values: C - P = S - K exp(-rT).
        expiry = dt.datetime.fromisoformat(call["expirationDate"]).timestamp()
        years = (expiry - time.time()) / (365 * 86400)
        s, k = chain["underlyingPrice"], call["strikePrice"]
        rate = chain["interestRate"] / 100
        parity = s - k * math.exp(-rate * years)
        diff = call["theoreticalOptionValue"] - put["theoreticalOptionValue"]
        assert diff == pytest.approx(parity, abs=0.02)
    calls_only = client.get_option_chain(
        "SPY", contract_type=client.Options.ContractType.CALL, strike_count=2
    ).json()
    assert calls_only["putExpDateMap"] == {} and calls_only["callExpDateMap"]
    (contract,) = next(iter(strikes.values()))
    symbol = contract["symbol"]
    q = client.get_quote(symbol).json()[symbol]
    assert q["assetMainType"] == "OPTION"
    r = client.place_order(account_hash, option_buy_to_open_market(symbol, 1))
    order_id = Utils(client, account_hash).extract_order_id(r)
    order = _wait_status(client, order_id, account_hash, "FILLED")
    price = order["orderActivityCollection"][0]["executionLegs"][0]["price"]
    acct = client.get_account(account_hash, fields=client.Account.Fields.POSITIONS).json()
    sa = acct["securitiesAccount"]
    (pos,) = sa["positions"]
    assert pos["instrument"]["assetType"] == "OPTION" and pos["longQuantity"] == 1
    assert sa["currentBalances"]["cashBalance"] == pytest.approx(100_000 - 100 * price)
    # A far-above-market limit sell to close rests as WORKING.
    r = client.place_order(
        account_hash, option_sell_to_close_limit(symbol, 1, f"{price * 10 + 5:.2f}")
    )
    sell_id = Utils(client, account_hash).extract_order_id(r)
    assert client.get_order(sell_id, account_hash).json()["status"] == "WORKING"


def test_orders_filter_by_time_and_status(client: Any) -> None:
    account_hash = _account_hash(client)
    client.place_order(account_hash, equity_buy_market("SPY", 1))
    r = client.get_orders_for_account(account_hash)
    assert r.status_code == 200 and len(r.json()) == 1
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    r = client.get_orders_for_account(
        account_hash, from_entered_datetime=future, to_entered_datetime=future
    )
    assert r.json() == []
    r = client.get_orders_for_all_linked_accounts(status=client.Order.Status.CANCELED)
    assert r.json() == []


def test_price_history_and_market_hours(client: Any) -> None:
    r = client.get_price_history_every_minute("AAPL")
    assert r.status_code == 200
    candles = r.json()["candles"]
    assert candles and all(c["low"] <= min(c["open"], c["close"]) for c in candles)
    assert [c["datetime"] for c in candles] == sorted(c["datetime"] for c in candles)
    daily = client.get_price_history_every_day("AAPL").json()["candles"]
    assert daily and daily[-1]["close"] > 0
    hours = client.get_market_hours([client.MarketHours.Market.EQUITY]).json()
    assert hours["equity"]["EQ"]["isOpen"] is True  # always-open clock by default


def test_unauthenticated_requests_are_401(market_sim: Any) -> None:
    form = {"grant_type": "authorization_code", "code": "any"}
    tokens = httpx.post(market_sim.base_url + "/v1/oauth/token", data=form).json()
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    tampered = access[:-2] + ("AA" if access[-2:] != "AA" else "BB")
    refused = [
        None,
        "Bearer not-a-token",
        f"Bearer {refresh}",  # a refresh token is no access token
        f"Bearer {tampered}",  # signature altered
        f"Basic {access}",  # not a bearer header
    ]
    for path in ("/trader/v1/accounts/accountNumbers", "/marketdata/v1/quotes?symbols=AAPL"):
        for auth in refused:
            r = httpx.get(
                market_sim.base_url + path, headers={"Authorization": auth} if auth else {}
            )
            assert r.status_code == 401, (path, auth)
            assert r.json()["errors"][0]["title"] == "Unauthorized"
        # The same request with the access token is served: the token was what was missing.
        r = httpx.get(market_sim.base_url + path, headers={"Authorization": f"Bearer {access}"})
        assert r.status_code == 200, (path, r.text)
