"""Schwab's numeric field keys for the services we decode, and the static self-check.

Schwab sends level-one fields under numeric string keys ("1", "2", ...). schwab-py relabels
them by deep-copying every message; we read the numeric keys directly (see ``client.py``) and
keep the numbers here, in one place. :func:`check_against_schwab_py` verifies at start-up that
these numbers agree with schwab-py's own field enums, which are what we send in SUBS requests.

One deliberate difference: schwab-py names LEVELONE_OPTIONS field 20 ``STRIKE_TYPE``; Schwab's
streamer documentation and the data itself carry the *strike price* there. We treat it as the
strike price and verify that at run time against the strike in the OCC symbol
(:mod:`.selfcheck`), refusing to publish option ticks if it does not match.
"""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    # schwab-py imports websockets.legacy, which warns on import; nothing we can change.
    warnings.simplefilter("ignore", DeprecationWarning)
    from schwab.streaming import StreamClient

LEVELONE_EQUITIES = "LEVELONE_EQUITIES"
LEVELONE_OPTIONS = "LEVELONE_OPTIONS"
CHART_EQUITY = "CHART_EQUITY"

# LEVELONE_EQUITIES
EQ_BID = "1"
EQ_ASK = "2"
EQ_LAST = "3"
EQ_VOLUME = "8"
EQ_LAST_SIZE = "9"
EQ_QUOTE_TIME = "34"
EQ_TRADE_TIME = "35"

#: Equity fields we subscribe to (schwab-py enum names).
EQUITY_FIELD_NAMES: dict[str, str] = {
    "SYMBOL": "0",
    "BID_PRICE": EQ_BID,
    "ASK_PRICE": EQ_ASK,
    "LAST_PRICE": EQ_LAST,
    "TOTAL_VOLUME": EQ_VOLUME,
    "LAST_SIZE": EQ_LAST_SIZE,
    "QUOTE_TIME_MILLIS": EQ_QUOTE_TIME,
    "TRADE_TIME_MILLIS": EQ_TRADE_TIME,
}

# LEVELONE_OPTIONS
OPT_BID = "2"
OPT_ASK = "3"
OPT_LAST = "4"
OPT_VOLUME = "8"
OPT_OPEN_INTEREST = "9"
OPT_VOLATILITY = "10"
OPT_EXP_YEAR = "12"
OPT_LAST_SIZE = "18"
OPT_STRIKE = "20"
OPT_CONTRACT_TYPE = "21"
OPT_UNDERLYING = "22"
OPT_EXP_MONTH = "23"
OPT_EXP_DAY = "26"
OPT_DELTA = "28"
OPT_GAMMA = "29"
OPT_THETA = "30"
OPT_VEGA = "31"
OPT_RHO = "32"
OPT_UNDERLYING_PRICE = "35"
OPT_QUOTE_TIME = "38"
OPT_TRADE_TIME = "39"

OPTION_FIELD_NAMES: dict[str, str] = {
    "SYMBOL": "0",
    "BID_PRICE": OPT_BID,
    "ASK_PRICE": OPT_ASK,
    "LAST_PRICE": OPT_LAST,
    "TOTAL_VOLUME": OPT_VOLUME,
    "OPEN_INTEREST": OPT_OPEN_INTEREST,
    "VOLATILITY": OPT_VOLATILITY,
    "EXPIRATION_YEAR": OPT_EXP_YEAR,
    "LAST_SIZE": OPT_LAST_SIZE,
    "STRIKE_TYPE": OPT_STRIKE,  # the strike price, see the module docstring
    "CONTRACT_TYPE": OPT_CONTRACT_TYPE,
    "UNDERLYING": OPT_UNDERLYING,
    "EXPIRATION_MONTH": OPT_EXP_MONTH,
    "EXPIRATION_DAY": OPT_EXP_DAY,
    "DELTA": OPT_DELTA,
    "GAMMA": OPT_GAMMA,
    "THETA": OPT_THETA,
    "VEGA": OPT_VEGA,
    "RHO": OPT_RHO,
    "UNDERLYING_PRICE": OPT_UNDERLYING_PRICE,
    "QUOTE_TIME_MILLIS": OPT_QUOTE_TIME,
    "TRADE_TIME_MILLIS": OPT_TRADE_TIME,
}

CHART_FIELD_NAMES: dict[str, str] = {
    "SYMBOL": "0",
    "OPEN_PRICE": "2",
    "HIGH_PRICE": "3",
    "LOW_PRICE": "4",
    "CLOSE_PRICE": "5",
    "VOLUME": "6",
    "CHART_TIME_MILLIS": "7",
}


class FieldMapError(RuntimeError):
    """Our field numbers disagree with schwab-py's (or the data): refuse to publish."""


def _check(enum_type: Any, names: dict[str, str]) -> None:
    for name, key in names.items():
        member = getattr(enum_type, name, None)
        if member is None:
            raise FieldMapError(f"{enum_type.__name__} has no field {name}")
        if str(member.value) != key:
            raise FieldMapError(
                f"{enum_type.__name__}.{name} is {member.value}, our decoder reads {key}"
            )


def check_against_schwab_py() -> None:
    """Raise :class:`FieldMapError` if schwab-py's field enums disagree with our keys."""
    _check(StreamClient.LevelOneEquityFields, EQUITY_FIELD_NAMES)
    _check(StreamClient.LevelOneOptionFields, OPTION_FIELD_NAMES)
    _check(StreamClient.ChartEquityFields, CHART_FIELD_NAMES)


def equity_fields() -> list[Any]:
    """The schwab-py enum members of the equity fields we subscribe to."""
    enum = StreamClient.LevelOneEquityFields
    return [getattr(enum, name) for name in EQUITY_FIELD_NAMES]


def option_fields() -> list[Any]:
    """The schwab-py enum members of the option fields we subscribe to."""
    enum = StreamClient.LevelOneOptionFields
    return [getattr(enum, name) for name in OPTION_FIELD_NAMES]
