"""``streamdesk strategy``: the strategies the strategy service runs.

  streamdesk strategy list [--json]
  streamdesk strategy add ID MODULE --tickers SPY,AAPL [--params JSON] [--live]
                          [--max-position N] [--max-orders-per-day N] [--max-loss-per-day USD]
                          [--quantity-max N] [--enable]
  streamdesk strategy enable ID | disable ID | flatten ID

A change is a row update of ``strategies`` (migration 0100), whose trigger wakes the service
at once (NOTIFY ``streamdesk_strategies``). ``flatten`` asks the service to cancel the
strategy's open orders, close its positions with market orders and disable it. ``enable``
clears the reason of an automatic disable and resolves the strategy's open alerts.

Exit codes: 0 done, 1 refused or failed (unknown strategy, database), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from decimal import Decimal
from typing import Any

import asyncpg

from .config import CommonSettings, ConfigError, load_settings

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
MODULE_RE = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")


class StrategyCliError(Exception):
    """A refusal with a message for the user (exit code 1)."""


LIST_SQL = """
SELECT s.id, s.module, s.tickers, s.enabled, s.mode, s.max_position, s.max_orders_per_day,
       s.max_loss_per_day, s.disabled_reason, s.flatten_requested_at,
       (SELECT count(*) FROM strategy_alerts a
        WHERE a.strategy_id = s.id AND a.resolved_at IS NULL) AS open_alerts,
       (SELECT count(*) FROM trades t
        WHERE t.strategy_id = s.id
          AND t.status IN ('pending', 'submitting', 'working', 'cancel_requested', 'unknown'))
          AS open_orders
FROM strategies s ORDER BY s.id
"""


async def list_strategies(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    """Every strategy as a JSON-ready dict."""
    out = []
    for r in await conn.fetch(LIST_SQL):
        out.append(
            {
                "id": r["id"],
                "module": r["module"],
                "tickers": list(r["tickers"]),
                "enabled": r["enabled"],
                "mode": r["mode"],
                "max_position": r["max_position"],
                "max_orders_per_day": r["max_orders_per_day"],
                "max_loss_per_day": float(r["max_loss_per_day"]),
                "disabled_reason": r["disabled_reason"],
                "flatten_requested": r["flatten_requested_at"] is not None,
                "open_alerts": int(r["open_alerts"]),
                "open_orders": int(r["open_orders"]),
            }
        )
    return out


async def set_enabled(conn: asyncpg.Connection | asyncpg.Pool, sid: str, enabled: bool) -> None:
    """Enable or disable ``sid``; enabling resolves its open alerts."""
    if enabled:
        status = await conn.execute(
            "WITH s AS (UPDATE strategies SET enabled = true, disabled_reason = '', "
            "updated_at = now() WHERE id = $1 RETURNING id) "
            "UPDATE strategy_alerts a SET resolved_at = now() FROM s "
            "WHERE a.strategy_id = s.id AND a.resolved_at IS NULL",
            sid,
        )
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM strategies WHERE id = $1)", sid):
            raise StrategyCliError(f"no strategy {sid!r}")
        del status
        return
    status = await conn.execute(
        "UPDATE strategies SET enabled = false, disabled_reason = 'disabled by the operator', "
        "updated_at = now() WHERE id = $1",
        sid,
    )
    if status.endswith(" 0"):
        raise StrategyCliError(f"no strategy {sid!r}")


async def request_flatten(conn: asyncpg.Connection | asyncpg.Pool, sid: str) -> None:
    """Ask the service to flatten ``sid`` (cancel, close, disable)."""
    status = await conn.execute(
        "UPDATE strategies SET flatten_requested_at = now(), updated_at = now() WHERE id = $1",
        sid,
    )
    if status.endswith(" 0"):
        raise StrategyCliError(f"no strategy {sid!r}")


async def add_strategy(
    conn: asyncpg.Connection | asyncpg.Pool,
    sid: str,
    module: str,
    tickers: list[str],
    params: dict[str, Any],
    *,
    mode: str = "paper",
    enabled: bool = False,
    limits: dict[str, Any] | None = None,
) -> None:
    """Insert a strategy row (refused if the id exists)."""
    if not ID_RE.match(sid):
        raise StrategyCliError(f"bad strategy id {sid!r}: lower case letters, digits, _.-")
    if not MODULE_RE.match(module):
        raise StrategyCliError(f"bad module path {module!r}: expected 'package.module:Class'")
    lim = {k: v for k, v in (limits or {}).items() if v is not None}
    if "max_loss_per_day" in lim:
        lim["max_loss_per_day"] = Decimal(str(lim["max_loss_per_day"]))
    cols = ["id", "module", "tickers", "params", "mode", "enabled", *lim]
    values: list[Any] = [sid, module, tickers, json.dumps(params), mode, enabled, *lim.values()]
    marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
    try:
        await conn.execute(f"INSERT INTO strategies ({', '.join(cols)}) VALUES ({marks})", *values)
    except asyncpg.UniqueViolationError:
        raise StrategyCliError(f"strategy {sid!r} exists") from None
    except asyncpg.CheckViolationError as exc:
        raise StrategyCliError(f"refused: {exc}") from None


async def _run(args: argparse.Namespace, settings: CommonSettings) -> int:
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        if args.action == "list":
            rows = await list_strategies(conn)
            if args.json:
                print(json.dumps(rows))
            else:
                print(f"{'id':<20}{'mode':<7}{'enabled':<9}{'orders':>7}{'alerts':>7}  module")
                for r in rows:
                    print(
                        f"{r['id']:<20}{r['mode']:<7}{'yes' if r['enabled'] else 'no':<9}"
                        f"{r['open_orders']:>7}{r['open_alerts']:>7}  {r['module']}"
                        + (f"  ({r['disabled_reason']})" if r["disabled_reason"] else "")
                    )
        elif args.action == "add":
            await add_strategy(
                conn,
                args.id,
                args.module,
                args.tickers,
                args.params,
                mode="live" if args.live else "paper",
                enabled=args.enable,
                limits={
                    "max_position": args.max_position,
                    "max_orders_per_day": args.max_orders_per_day,
                    "max_loss_per_day": args.max_loss_per_day,
                    "quantity_max": args.quantity_max,
                },
            )
            print(f"added {args.id} ({'enabled' if args.enable else 'disabled'})")
        elif args.action in ("enable", "disable"):
            await set_enabled(conn, args.id, args.action == "enable")
            print(f"{args.id} {args.action}d")
        elif args.action == "flatten":
            await request_flatten(conn, args.id)
            print(f"{args.id}: flatten requested (open orders cancelled, positions closed)")
    finally:
        await conn.close()
    return 0


def _cmd(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(CommonSettings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, settings))
    except StrategyCliError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"database error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _params(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--params is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("--params must be a JSON object")
    return parsed


def _tickers(value: str) -> list[str]:
    out = [t.strip().upper() for t in value.split(",") if t.strip()]
    if not out or any(not re.match(r"^[A-Z0-9./]{1,12}$", t) for t in out):
        raise argparse.ArgumentTypeError(f"bad tickers {value!r}")
    return out


def register(sub: Any) -> None:
    """Add ``strategy`` to the admin CLI."""
    p = sub.add_parser("strategy", help="list, add, enable, disable or flatten strategies")
    acts = p.add_subparsers(dest="action", required=True)
    ls = acts.add_parser("list", help="every strategy with its state")
    ls.add_argument("--json", action="store_true")
    add = acts.add_parser("add", help="add a strategy (disabled, paper unless told)")
    add.add_argument("id")
    add.add_argument("module", help="package.module:Class")
    add.add_argument("--tickers", type=_tickers, required=True)
    add.add_argument("--params", type=_params, default={})
    add.add_argument("--live", action="store_true", help="opt in to live (needs TRADING_MODE=live)")
    add.add_argument("--enable", action="store_true")
    add.add_argument("--max-position", type=int, default=None)
    add.add_argument("--max-orders-per-day", type=int, default=None)
    add.add_argument("--max-loss-per-day", type=float, default=None)
    add.add_argument("--quantity-max", type=int, default=None)
    for name in ("enable", "disable", "flatten"):
        a = acts.add_parser(name, help=f"{name} a strategy")
        a.add_argument("id")
    p.set_defaults(func=_cmd)
