"""Schwab's streamer wire format: service names, commands, response codes, content entries.

Content entries carry Schwab's numeric field keys (``"1"`` bid, ``"3"`` last, ... as in
``schwab.streaming``) besides a few fixed keys per service, so schwab-py's handlers relabel
them as they do Schwab's.
"""

from __future__ import annotations

from typing import Any

from streamdesk_sim.equity import EQUITY_KEYS, EquitySim
from streamdesk_sim.option import OPTION_KEYS

EQUITIES = "LEVELONE_EQUITIES"
OPTIONS = "LEVELONE_OPTIONS"
CHART = "CHART_EQUITY"
ACTIVITY = "ACCT_ACTIVITY"
SERVICES = (EQUITIES, OPTIONS, CHART, ACTIVITY)
COMMANDS = ("SUBS", "ADD", "UNSUBS", "VIEW")

# Schwab streamer response codes (the ones the simulator answers).
CODE_SUCCESS = 0
CODE_LOGIN_DENIED = 3
CODE_SERVICE_NOT_AVAILABLE = 11
CODE_CLOSE_CONNECTION = 12
CODE_REACHED_SYMBOL_LIMIT = 19
CODE_BAD_COMMAND_FORMAT = 21


def parse_fields(raw: Any) -> frozenset[int] | None:
    """The field numbers of a request's ``fields`` parameter (None: all fields)."""
    if raw is None or raw == "":
        return None
    return frozenset(int(f) for f in str(raw).split(",") if f.strip() != "")


def equity_entry(
    eq: EquitySim, fields: dict[int, Any], wanted: frozenset[int] | None
) -> dict[str, Any] | None:
    """The ``LEVELONE_EQUITIES`` entry of ``fields`` a subscription to ``wanted`` receives."""
    entry: dict[str, Any] = {
        "key": eq.symbol,
        "delayed": False,
        "assetMainType": "EQUITY",
        "assetSubType": "COE",
        "cusip": eq.cusip,
    }
    keys = EQUITY_KEYS
    if wanted is None:
        for k, v in fields.items():
            entry[keys[k]] = v
        entry.pop("0", None)
    else:
        for k, v in fields.items():
            if k in wanted and k:
                entry[keys[k]] = v
    return entry if len(entry) > 5 else None


def option_entry(
    sym: str, fields: dict[int, Any], wanted: frozenset[int] | None
) -> dict[str, Any] | None:
    """The ``LEVELONE_OPTIONS`` entry of ``fields`` a subscription to ``wanted`` receives."""
    entry: dict[str, Any] = {
        "key": sym,
        "delayed": False,
        "assetMainType": "OPTION",
        "cusip": "",
    }
    n = 0
    for k, v in fields.items():
        if k and (wanted is None or k in wanted):
            entry[OPTION_KEYS[k]] = v
            n += 1
    return entry if n else None


def chart_entry(sym: str, seq: int, bar: list[float]) -> dict[str, Any]:
    """The ``CHART_EQUITY`` entry of a completed bar ``[start_ms, o, h, l, c, volume]``."""
    start = int(bar[0])
    return {
        "seq": seq,
        "key": sym,
        "0": sym,
        "1": seq,
        "2": bar[1],
        "3": bar[2],
        "4": bar[3],
        "5": bar[4],
        "6": bar[5],
        "7": start,
        "8": start // 86_400_000,
    }
