"""Unit tests of the simulator's models and of streamdesk.schwab helpers (no processes)."""

from __future__ import annotations

import json
import math
import time
from datetime import date, datetime
from pathlib import Path

import pytest
import schwab

from streamdesk.schwab import RewriteTransport, TokenStore
from streamdesk_sim.clock import NY, SessionClock, in_regular_session
from streamdesk_sim.config import ClockMode
from streamdesk_sim.equity import EquitySim
from streamdesk_sim.market import Market
from streamdesk_sim.pricing import black_scholes
from streamdesk_sim.sentlog import SentLog
from streamdesk_sim.tokens import TokenIssuer

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("spot", [90.0, 100.0, 110.0])
@pytest.mark.parametrize("t", [2 / 365, 0.25, 1.0])
def test_put_call_parity_and_delta_bounds(spot: float, t: float) -> None:
    k, r, vol = 100.0, 0.045, 0.3
    c = black_scholes(spot, k, t, r, vol, call=True)
    p = black_scholes(spot, k, t, r, vol, call=False)
    assert c.price - p.price == pytest.approx(spot - k * math.exp(-r * t), abs=1e-9)
    assert 0 < c.delta < 1 and -1 < p.delta < 0  # near the money
    far = black_scholes(50.0, k, 2 / 365, r, vol, call=True)
    assert far.price >= 0 and 0 <= far.delta < 1e-6
    assert c.delta - p.delta == pytest.approx(1.0)
    assert c.gamma == pytest.approx(p.gamma) and c.gamma > 0


def test_greeks_match_finite_differences() -> None:
    s, k, t, r, vol, h = 100.0, 105.0, 0.3, 0.045, 0.25, 1e-3
    g = black_scholes(s, k, t, r, vol, call=True)
    up = black_scholes(s + h, k, t, r, vol, call=True).price
    dn = black_scholes(s - h, k, t, r, vol, call=True).price
    assert g.delta == pytest.approx((up - dn) / (2 * h), rel=1e-5)
    assert g.gamma == pytest.approx((up - 2 * g.price + dn) / h**2, rel=1e-3)
    v_up = black_scholes(s, k, t, r, vol + 1e-4, call=True).price
    assert g.vega == pytest.approx((v_up - g.price) / 1e-4 / 100, rel=1e-3)
    later = black_scholes(s, k, t - 1 / 365, r, vol, call=True).price
    assert g.theta == pytest.approx(later - g.price, rel=2e-2)


def test_equity_paths_are_deterministic_per_seed_and_symbol() -> None:
    def path(seed: int, symbol: str) -> list[dict[int, object]]:
        eq = EquitySim(symbol, seed, 0.35)
        return [eq.step(1_000 + i, 1e-7, 0.7, 0.8) for i in range(300)]

    assert path(1, "AAPL") == path(1, "AAPL")
    assert path(1, "AAPL") != path(2, "AAPL")
    assert path(1, "AAPL") != path(1, "MSFT")


def test_steps_carry_only_changes_and_volume_accumulates() -> None:
    eq = EquitySim("XYZ", 3, 0.35)
    volume = 0
    trades = 0
    for i in range(500):
        before = list(eq.values)
        ch = eq.step(10_000 + i, 1e-7, 0.5, 0.5)
        for k, v in ch.items():
            assert k in (3, 9, 8, 35) or before[k] != v, k  # trade fields always resent
        if 9 in ch:
            trades += 1
            volume += ch[9]
            assert ch[8] == volume and ch[35] == 10_000 + i
        assert eq.bid < eq.ask
        assert 15 not in ch  # static description never resent
    assert 150 < trades < 350


def test_market_symbol_limit_and_options() -> None:
    m = Market(1, 0.3, max_symbols=2)
    m.equity("A")
    m.equity("B")
    with pytest.raises(OverflowError):
        m.equity("C")
    m2 = Market(1, 0.3)
    syms = m2.chain_symbols("SPY", date(2026, 1, 5), count=2, expirations=2)
    assert len(syms) == 2 * 5 * 2
    now = datetime(2026, 1, 5, 12, tzinfo=NY).timestamp()
    opt = m2.option(syms[0], now)
    assert opt.underlying == "SPY" and opt.values[28] is not None
    with pytest.raises(ValueError):
        m2.option("SPY   200117C00300000", now)  # expired


def test_sim_session_follows_the_shared_calendar() -> None:
    # One calendar for the simulator and the rest of the stack: the 2025-01-09 closure
    # (which the simulator once streamed through while risk refused every trade) and the 13:00
    # close of half days.
    assert in_regular_session(datetime(2025, 3, 12, 9, 30, tzinfo=NY))
    assert not in_regular_session(datetime(2025, 3, 12, 16, 0, tzinfo=NY))
    assert not in_regular_session(datetime(2025, 7, 4, 11, 0, tzinfo=NY))
    assert not in_regular_session(datetime(2025, 3, 15, 11, 0, tzinfo=NY))  # Saturday
    assert not in_regular_session(datetime(2025, 1, 9, 11, 0, tzinfo=NY))
    assert in_regular_session(datetime(2025, 11, 28, 12, 59, tzinfo=NY))
    assert not in_regular_session(datetime(2025, 11, 28, 13, 0, tzinfo=NY))


def test_accelerated_clock_skips_a_special_closure() -> None:
    start = datetime(2025, 1, 8, 15, 59, 59, tzinfo=NY)  # the day before the Carter closure
    clock = SessionClock(ClockMode.ACCELERATED, speed=3600.0, start=start)
    time.sleep(0.01)
    now = datetime.fromtimestamp(clock.now(), NY)
    assert now.date() == date(2025, 1, 10) and (now.hour, now.minute) == (9, 30)


def test_accelerated_clock_runs_fast_and_skips_closed_hours() -> None:
    start = datetime(2025, 3, 14, 15, 59, 59, tzinfo=NY)  # Friday, a second before close
    clock = SessionClock(ClockMode.ACCELERATED, speed=3600.0, start=start)
    assert clock.is_open()
    time.sleep(0.01)  # 36 sim seconds: past Friday's close -> Monday's open
    now = datetime.fromtimestamp(clock.now(), NY)
    assert now.date() == date(2025, 3, 17) and (now.hour, now.minute) == (9, 30)
    assert clock.is_open()
    always = SessionClock(ClockMode.ALWAYS)
    assert always.is_open() and abs(always.now() - time.time()) < 1


def test_tokens_issue_check_revoke() -> None:
    issuer = TokenIssuer("k", access_ttl=60, refresh_ttl=600)
    tok = issuer.issue()
    assert issuer.check(str(tok["access_token"]), "a") is not None
    assert issuer.check(str(tok["access_token"]), "r") is None  # wrong kind
    assert issuer.check(str(tok["access_token"]) + "x", "a") is None  # tampered
    assert TokenIssuer("other", 60, 600).check(str(tok["access_token"]), "a") is None
    info = issuer.check(str(tok["refresh_token"]), "r")
    assert info is not None
    again = issuer.issue(login=info.login)
    refreshed = issuer.check(str(again["refresh_token"]), "r")
    assert refreshed is not None and refreshed.login == info.login
    issuer.revoke(access=True)
    assert issuer.check(str(again["access_token"]), "a") is None
    assert issuer.check(str(again["refresh_token"]), "r") is not None
    assert issuer.check(str(issuer.issue()["access_token"]), "a") is not None


def test_sent_log_counts_and_window() -> None:
    log = SentLog(maxlen=3)
    for i in range(5):
        log.record("LEVELONE_EQUITIES", [{"key": "A", "3": i, "9": 1}, {"key": "B", "1": i}], i)
    a = log.entries("LEVELONE_EQUITIES", "A")
    assert a["count"] == 5 and a["trades"] == 5 and not a["complete"]
    assert [u["seq"] for u in a["updates"]] == [3, 4, 5]
    assert log.entries("LEVELONE_EQUITIES", "A", since=2)["complete"]
    assert log.summary()["LEVELONE_EQUITIES"]["B"] == {"count": 5, "trades": 0}


def test_sent_log_global_memory_bound() -> None:
    log = SentLog(maxlen=10, total=4)
    for i in range(3):
        log.record("S", [{"key": "A", "1": i}, {"key": "B", "1": i}], i)
    a, b = log.entries("S", "A"), log.entries("S", "B")
    assert log.stored == 4
    assert [u["seq"] for u in a["updates"]] == [1, 2]
    assert a["count"] == 3 and not a["complete"] and not b["complete"]
    log.reset()
    log.record("S", [{"key": "A", "1": 0}], 0)
    assert log.entries("S", "A")["complete"]


def test_token_store_atomic_0600_and_schwab_compatible(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "token.json"
    store = TokenStore(path)
    assert store.read() is None and store.age_seconds() is None
    token = {"access_token": "a", "refresh_token": "r", "expires_at": time.time() + 900}
    store.write({"creation_timestamp": int(time.time()) - 10, "token": token})
    assert path.stat().st_mode & 0o777 == 0o600
    assert 9 <= (store.age_seconds() or 0) < 30
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".tmp"] == []
    client = schwab.auth.client_from_token_file(str(path), "key", "secret")
    assert client.token_metadata.token["access_token"] == "a"
    client.session.close()
    path.write_text("{not json")
    assert store.read() is None
    path.write_text(json.dumps({"access_token": "legacy"}))
    assert store.read() is None


def test_rewrite_transport_keeps_the_path_and_prefix() -> None:
    from streamdesk.schwab import httpx

    seen: list[str] = []

    class Capture(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            return httpx.Response(200, json={})

    t = RewriteTransport("http://127.0.0.1:9/sim", inner=Capture())
    with httpx.Client(transport=t) as c:
        c.get("https://api.schwabapi.com/trader/v1/accounts?fields=positions")
        c.get("https://example.com/other")
    assert seen == [
        "http://127.0.0.1:9/sim/trader/v1/accounts?fields=positions",
        "https://example.com/other",
    ]
