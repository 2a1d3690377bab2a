"""Black-Scholes prices and greeks (European, continuous dividend-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def norm_cdf(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@dataclass(frozen=True, slots=True)
class Greeks:
    """Price and greeks of one option. Theta per calendar day, vega and rho per 1 point."""

    price: float
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


def black_scholes(spot: float, strike: float, t: float, r: float, vol: float, call: bool) -> Greeks:
    """Price and greeks; ``t`` in years (floored at one minute so greeks stay finite)."""
    t = max(t, 1.0 / (365.0 * 24 * 60))
    sqrt_t = math.sqrt(t)
    d1 = (math.log(spot / strike) + (r + 0.5 * vol * vol) * t) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    disc = math.exp(-r * t)
    pdf = norm_pdf(d1)
    gamma = pdf / (spot * vol * sqrt_t)
    vega = spot * pdf * sqrt_t / 100.0
    if call:
        price = spot * norm_cdf(d1) - strike * disc * norm_cdf(d2)
        delta = norm_cdf(d1)
        theta = (-spot * pdf * vol / (2 * sqrt_t) - r * strike * disc * norm_cdf(d2)) / 365.0
        rho = strike * t * disc * norm_cdf(d2) / 100.0
    else:
        price = strike * disc * norm_cdf(-d2) - spot * norm_cdf(-d1)
        delta = norm_cdf(d1) - 1.0
        theta = (-spot * pdf * vol / (2 * sqrt_t) + r * strike * disc * norm_cdf(-d2)) / 365.0
        rho = -strike * t * disc * norm_cdf(-d2) / 100.0
    return Greeks(max(price, 0.0), delta, gamma, theta, vega, rho)


def cents(x: float) -> float:
    """``x`` rounded to the cent, as a float (``+ 0.0`` also turns ``-0.0`` into ``0.0``)."""
    return round(x + 0.0, 2)
