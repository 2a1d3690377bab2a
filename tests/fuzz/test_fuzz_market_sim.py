"""market-sim's REST API under schemathesis, and its order endpoint under Hypothesis.

schemathesis reads the simulator's own ``/openapi.json`` (a real market-sim on a loopback
port) and sends generated valid and invalid requests to every Schwab operation and the
read-only admin ones: no 5xx, and requests the schema declares invalid get a 4xx. The order
body is not in the schema (the simulator reads it as raw JSON, as Schwab's API does), so
orders get their own Hypothesis test: the simulator must refuse with a 4xx what Schwab
refuses, and never answer 5xx.

Left out: the admin fault switches (``/admin/faults/*`` would hang or drop the very
connections under test), load generation (``/admin/load``) and the OAuth ``authorize``
redirect (it points at whatever ``redirect_uri`` says; requests are never followed).
"""

from __future__ import annotations

import json
import math
import urllib.request
from typing import Any

import pytest
import schemathesis
from fuzz_helpers import fuzz_settings, json_values
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection
from trade_cases import GOOD_OCC

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 12


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, _decode(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())


def _token(base_url: str) -> str:
    status, body = _post(
        base_url + "/v1/oauth/token",
        b"grant_type=authorization_code&code=fuzz&client_id=streamdesk-sim-key"
        b"&client_secret=streamdesk-sim-secret",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, body
    return str(body["access_token"])


@pytest.fixture(scope="module")
def sim_api(market_sim_module: Any) -> dict[str, Any]:
    sim = market_sim_module
    auth = {"Authorization": f"Bearer {_token(sim.base_url)}"}
    return {"sim": sim, "auth": auth, "account": sim.state()["account_hash"]}


def _openapi() -> dict[str, Any]:
    """The simulator's OpenAPI document, from its app object (the same one it serves).

    Loaded at import, because ``schema.parametrize`` needs it at collection; schemathesis'
    lazy ``from_fixture`` does not work with pytest 9 (it reads a removed ``Node._nodeid``).
    The requests still go to a real market-sim process (``case.call(base_url=...)``).
    """
    from streamdesk.config import load_settings
    from streamdesk_sim.app import create_app
    from streamdesk_sim.config import Settings

    return create_app(load_settings(Settings, _env_file=None)).openapi()


schema = schemathesis.openapi.from_dict(_openapi()).exclude(
    path_regex=r"^/admin/(faults|load)|^/v1/oauth/authorize"
)


@schema.parametrize()
@fuzz_settings(EXAMPLES_PER_OPERATION)
def test_rest_api_no_5xx_and_invalid_input_rejected(case: Any, sim_api: dict[str, Any]) -> None:
    response = case.call(
        base_url=sim_api["sim"].base_url,
        headers=sim_api["auth"],
        allow_redirects=False,
        timeout=10,
    )
    case.validate_response(response, checks=[not_a_server_error, negative_data_rejection])


# --------------------------------------------------------------------------- orders

LEG_INSTRUCTIONS = ["BUY", "SELL", "BUY_TO_OPEN", "SELL_TO_CLOSE", "SELL_TO_OPEN",
                    "BUY_TO_CLOSE", "SELL_SHORT", "buy", "HOLD"]  # fmt: skip
odd_numbers = st.one_of(
    st.integers(-3, 50),
    st.sampled_from([0.5, 1.0, 2.5, 1e400, -1e400, 1e308, 2**70, "1", "x", None, True, [], {}]),
    st.floats(),
)


def order_body() -> st.SearchStrategy[dict[str, Any]]:
    leg = st.fixed_dictionaries(
        {
            "instruction": st.sampled_from(LEG_INSTRUCTIONS),
            "quantity": odd_numbers,
            "instrument": st.one_of(
                st.fixed_dictionaries(
                    {
                        "symbol": st.sampled_from(["AAPL", "SPY", *GOOD_OCC, "", "SPY   269999C1"]),
                        "assetType": st.sampled_from(["EQUITY", "OPTION", "FUTURE"]),
                    }
                ),
                json_values,
            ),
        }
    )
    return st.fixed_dictionaries(
        {
            "orderType": st.sampled_from(["MARKET", "LIMIT", "STOP"]),
            "session": st.just("NORMAL"),
            "duration": st.sampled_from(["DAY", "GOOD_TILL_CANCEL"]),
            "orderStrategyType": st.sampled_from(["SINGLE", "SINGLE", "OCO"]),
            "orderLegCollection": st.one_of(st.lists(leg, min_size=1, max_size=1), json_values),
        },
        optional={"price": odd_numbers},
    )


def schwab_refuses(body: dict[str, Any]) -> bool:
    """What Schwab refuses in these generated bodies (shape, numbers, instruction/asset)."""
    legs = body.get("orderLegCollection")
    if body.get("orderStrategyType") != "SINGLE" or body.get("orderType") not in (
        "MARKET",
        "LIMIT",
    ):
        return True
    if not isinstance(legs, list) or len(legs) != 1 or not isinstance(legs[0], dict):
        return True
    leg = legs[0]
    inst = leg.get("instrument")
    if not isinstance(inst, dict) or not isinstance(inst.get("symbol"), str):
        return True
    asset = inst.get("assetType")
    if asset == "EQUITY":
        if leg.get("instruction") not in ("BUY", "SELL", "SELL_SHORT") or not inst["symbol"]:
            return True
    elif asset == "OPTION":
        if inst["symbol"] not in GOOD_OCC or leg.get("instruction") not in (
            "BUY_TO_OPEN",
            "SELL_TO_CLOSE",
            "SELL_TO_OPEN",
            "BUY_TO_CLOSE",
        ):
            return True
    else:
        return True
    q = leg.get("quantity")
    if type(q) not in (int, float) or not math.isfinite(q) or q <= 0 or q != int(q):
        return True
    if body["orderType"] == "LIMIT":
        p = body.get("price")
        if type(p) not in (int, float) or not math.isfinite(p) or p <= 0:
            return True
    return False


@fuzz_settings(200)
@given(body=order_body())
def test_orders_schwab_refuses_get_a_4xx(body: dict[str, Any], sim_api: dict[str, Any]) -> None:
    sim = sim_api["sim"]
    account = sim_api["account"]
    raw = json.dumps(body).encode()  # NaN/Infinity as JS literals, as a sloppy client sends
    status, answer = _post(
        f"{sim.base_url}/trader/v1/accounts/{account}/orders",
        raw,
        {**sim_api["auth"], "Content-Type": "application/json"},
    )
    assert status < 500, (body, status, answer)
    if schwab_refuses(body):
        assert 400 <= status < 500, (body, status, answer)
        assert isinstance(answer, dict) and answer.get("message"), answer
    else:
        assert status == 201, (body, status, answer)


def _leg(quantity: Any, instrument: Any = None) -> dict[str, Any]:
    if instrument is None:
        instrument = {"symbol": "AAPL", "assetType": "EQUITY"}
    return {"instruction": "BUY", "quantity": quantity, "instrument": instrument}


@pytest.mark.unit
@pytest.mark.parametrize(
    "body",
    [
        {"orderType": "MARKET", "orderLegCollection": [_leg(math.inf)]},
        {"orderType": "MARKET", "orderLegCollection": [_leg(math.nan)]},
        {"orderType": "LIMIT", "price": math.nan, "orderLegCollection": [_leg(1)]},
        {"orderType": "LIMIT", "price": math.inf, "orderLegCollection": [_leg(1)]},
        {"orderType": "MARKET", "orderLegCollection": [_leg(1, "AAPL")]},
        {"orderType": "MARKET", "orderLegCollection": [_leg(1, [1])]},
    ],
)
def test_regression_orders_with_odd_numbers_or_instrument_are_a_400(body: dict[str, Any]) -> None:
    """Found by the fuzzer: an infinite quantity or a non-object instrument answered 500, and
    a NaN or infinite limit price was accepted (201)."""
    from fastapi.testclient import TestClient

    from streamdesk.config import load_settings
    from streamdesk_sim.app import create_app
    from streamdesk_sim.config import Settings

    app = create_app(load_settings(Settings, _env_file=None))
    with TestClient(app, raise_server_exceptions=False) as client:
        form = {"grant_type": "authorization_code", "code": "x"}
        token = client.post("/v1/oauth/token", data=form).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        account = client.get("/trader/v1/accounts/accountNumbers", headers=auth).json()[0]
        resp = client.post(
            f"/trader/v1/accounts/{account['hashValue']}/orders",
            content=json.dumps({"orderStrategyType": "SINGLE", **body}),
            headers={**auth, "Content-Type": "application/json"},
        )
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"]
