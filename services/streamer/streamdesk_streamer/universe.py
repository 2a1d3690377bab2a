"""The option universe: N strikes around the money for the next K expirations per underlying.

Resolved from Schwab's option chains (``get_option_chain`` with ``strike_count``), and
re-resolved when the underlying moves out of the inner half of its strike range (so the
subscribed strikes stay around the money) or when the set of next expirations changes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from streamdesk.models import parse_occ

log = logging.getLogger(__name__)


@dataclass
class Chain:
    """The resolved contracts of one underlying."""

    underlying: str
    symbols: list[str]
    strikes: list[float]
    expirations: list[str]
    spot: float | None = None


@dataclass
class Universe:
    """Option contracts per underlying."""

    chains: dict[str, Chain] = field(default_factory=dict)

    def symbols(self) -> list[str]:
        """Every contract symbol, in a stable order."""
        return sorted({s for c in self.chains.values() for s in c.symbols})

    def needs_recenter(self, underlying: str, spot: float | None) -> bool:
        """True if ``spot`` left the inner half of the strike range of ``underlying``."""
        chain = self.chains.get(underlying)
        if chain is None or spot is None or not chain.strikes:
            return chain is None
        strikes = chain.strikes
        n = len(strikes)
        q = n // 4
        lo, hi = strikes[q], strikes[n - 1 - q]
        if n < 4:
            lo, hi = strikes[0], strikes[-1]
        return not (lo <= spot <= hi)


def parse_chain(underlying: str, body: Any, strikes: int, expirations: int) -> Chain:
    """Pick the next ``expirations`` expirations and ``strikes`` strikes nearest the money."""
    if not isinstance(body, dict):
        raise ValueError("option chain response is not an object")
    spot = body.get("underlyingPrice")
    spot_f = float(spot) if isinstance(spot, (int, float)) and not isinstance(spot, bool) else None
    by_exp: dict[str, dict[float, list[str]]] = {}
    for map_name in ("callExpDateMap", "putExpDateMap"):
        exp_map = body.get(map_name)
        if exp_map is None:
            continue
        if not isinstance(exp_map, dict):
            raise ValueError(f"{map_name} is not an object")
        for exp_key, strikes_map in exp_map.items():
            exp = str(exp_key).split(":")[0]
            if not isinstance(strikes_map, dict):
                continue
            for strike_key, contracts in strikes_map.items():
                strike = float(strike_key)
                for contract in contracts or []:
                    sym = contract.get("symbol") if isinstance(contract, dict) else None
                    if not isinstance(sym, str):
                        continue
                    try:
                        parse_occ(sym)
                    except ValueError:
                        log.warning("chain of %s lists a non-OCC symbol %r", underlying, sym)
                        continue
                    by_exp.setdefault(exp, {}).setdefault(strike, []).append(sym)
    chosen_exps = sorted(by_exp)[:expirations]
    all_strikes = sorted({k for e in chosen_exps for k in by_exp[e]})
    if spot_f is not None and all_strikes:
        nearest = sorted(all_strikes, key=lambda k: (abs(k - spot_f), k))[:strikes]
        chosen_strikes = sorted(nearest)
    else:
        mid = len(all_strikes) // 2
        chosen_strikes = all_strikes[
            max(0, mid - strikes // 2) : max(0, mid - strikes // 2) + strikes
        ]
    keep = set(chosen_strikes)
    symbols = sorted(
        s for e in chosen_exps for k, syms in by_exp[e].items() if k in keep for s in syms
    )
    return Chain(underlying, symbols, chosen_strikes, chosen_exps, spot_f)


async def resolve_chain(
    client: Any, underlying: str, strikes: int, expirations: int, timeout: float = 10.0
) -> Chain:
    """Fetch and parse the option chain of ``underlying`` (raises on HTTP or shape errors)."""
    resp = await asyncio.wait_for(
        client.get_option_chain(underlying, strike_count=strikes * 2), timeout
    )
    if resp.status_code != 200:
        raise ValueError(f"option chain of {underlying}: HTTP {resp.status_code}")
    return parse_chain(underlying, resp.json(), strikes, expirations)
