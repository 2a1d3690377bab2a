"""``streamdesk budget``: the Supabase Realtime budget of the market-data broadcast.

For the reference universe (5 tickers + 200 option contracts, all changing every second) or
``--tickers``/``--contracts``, prints the payload bytes of one broadcast at every degrade
level (measured on the real committed message), the month's messages and egress with 1, 2
and 5 dashboards open (``--dashboards``), the level the indicators service's publisher would
choose, and, when Redis answers, this month's actual usage and the level the pace check holds.
The quotas are the free plan's (docs/supabase.md, "Realtime and the free plan").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field
from redis.exceptions import RedisError

from . import constants
from .clock import SYSTEM_CLOCK, Clock
from .config import CommonSettings, MarketHoursMode, load_settings
from .realtime_budget import (
    DEFAULT_DASHBOARDS,
    FREE_PLAN,
    HOURS_PER_DAY,
    LADDER,
    TRADING_DAYS_PER_MONTH,
    LevelSize,
    Projection,
    Usage,
    choose,
    choose_paced,
    month_key,
    project_all,
    streamed_seconds_per_month,
)

DEFAULT_RECEIVERS = (1, 2, 5)


class BudgetSettings(CommonSettings):
    """The indicators settings the budget depends on (same variables, same defaults)."""

    batch_interval: float = Field(default=1.0, gt=0, le=60)
    committed_max_options: int = Field(default=500, ge=0, le=100_000)
    supabase_dashboards: int = Field(default=DEFAULT_DASHBOARDS, ge=0, le=200)


def measure(tickers: int, contracts: int, max_options: int) -> dict[int, LevelSize]:
    """Payload bytes per level, measured with the indicators service's own code."""
    try:
        from streamdesk_indicators.reference_universe import reference_sizes
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "streamdesk budget measures the committed message with the indicators package "
            f"(streamdesk-indicators), which is not installed here ({exc.name})"
        ) from None
    return reference_sizes(tickers, contracts, max_options)


def build_report(
    sizes: dict[int, LevelSize],
    *,
    receivers: Sequence[int],
    configured: int,
    hours: MarketHoursMode,
    flush_interval: float,
    tickers: int,
    contracts: int,
) -> dict[str, Any]:
    """Everything the command prints, as plain data (the ``--json`` form)."""
    seconds = streamed_seconds_per_month(hours)
    counts = sorted({*receivers, configured})
    table = {n: project_all(sizes, n, seconds, flush_interval) for n in counts}
    plan = FREE_PLAN
    return {
        "plan": {
            "messages_per_month": plan.messages_per_month,
            "messages_per_second": plan.messages_per_second,
            "payload_bytes": plan.payload_bytes,
            "connections": plan.connections,
            "egress_bytes_per_month": plan.egress_bytes_per_month,
            "realtime_egress_share": plan.realtime_egress_share,
            "margin": plan.margin,
        },
        "universe": {"tickers": tickers, "contracts": contracts},
        "hours": hours.value,
        "seconds_per_month": seconds,
        "flush_interval": flush_interval,
        "levels": [
            {
                "level": step.number,
                "description": step.describe(flush_interval),
                "payload_bytes": {
                    "with_options": sizes[step.number].with_options,
                    "equity_only": sizes[step.number].equity_only,
                },
                "projections": {str(n): table[n][step.number].as_dict() for n in counts},
            }
            for step in LADDER
        ],
        "shown_dashboards": list(receivers),
        "chosen": {str(n): choose(table[n]) for n in counts},
        "configured_dashboards": configured,
        "month": None,
        "redis_error": None,
    }


async def read_month(redis_url: str, clock: Clock = SYSTEM_CLOCK) -> tuple[str, Usage]:
    """This month's usage hash (raises OSError/RedisError if Redis does not answer)."""
    from .redisutil import create_redis

    month = month_key(clock.now())
    redis = create_redis(redis_url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        raw = await asyncio.wait_for(
            redis.hmget(constants.realtime_usage_key(month), ["broadcasts", "bytes"]), 3.0
        )
    finally:
        await redis.aclose()
    return month, Usage(int(raw[0] or 0), int(raw[1] or 0))


def add_month(
    report: dict[str, Any], month: str, usage: Usage, projections: list[Projection], clock: Clock
) -> None:
    """Put this month's usage and the paced level for the configured dashboards in."""
    n = report["configured_dashboards"]
    planned = report["chosen"][str(n)]
    paced = choose_paced(projections, usage, clock.now(), planned)
    report["month"] = {
        "key": month,
        "broadcasts": usage.broadcasts,
        "payload_bytes": usage.payload_bytes,
        "messages": usage.messages(n),
        "egress_bytes": usage.egress_bytes(n),
        "level": paced.level,
        "reason": paced.reason,
    }


def format_report(report: dict[str, Any]) -> str:
    """The human-readable table."""
    p, u = report["plan"], report["universe"]
    limit_msgs = p["messages_per_month"] * p["margin"]
    limit_gb = p["egress_bytes_per_month"] * p["realtime_egress_share"] * p["margin"] / 1e9
    hours = MarketHoursMode(report["hours"])
    days = 31 if hours is MarketHoursMode.ALWAYS else TRADING_DAYS_PER_MONTH
    shown = report["shown_dashboards"]
    lines = [
        f"Supabase Realtime, free plan: {p['messages_per_month']:,} messages/month, "
        f"{p['messages_per_second']} msg/s, {p['payload_bytes']:,}-byte payloads, "
        f"{p['egress_bytes_per_month'] / 1e9:.0f} GB egress/month "
        f"({p['realtime_egress_share']:.0%} of it for Realtime, the rest for REST history).",
        f"A level fits within {p['margin']:.0%}: {limit_msgs:,.0f} messages and "
        f"{limit_gb:.2f} GB a month, {p['messages_per_second'] * p['margin']:.0f} msg/s.",
        f"Universe: {u['tickers']} tickers + {u['contracts']} option contracts, all changing "
        f"every second; {hours.value} hours: {HOURS_PER_DAY[hours]:g} h x {days} days = "
        f"{report['seconds_per_month']:,} s/month; a flush every {report['flush_interval']:g} s.",
        "Messages = broadcasts x (1 + dashboards); egress = payload + envelope to each "
        "dashboard. '!' = over the margin.",
        "",
    ]
    head = f"{'lvl':>3}  {'broadcast':<46} {'payload bytes':>19}"
    sub = f"{'':>3}  {'':<46} {'w/ options / w/o':>19}"
    for n in shown:
        head += f" | {f'{n} dashboard' + ('s' if n != 1 else ''):^22}"
        sub += f" | {'msgs/month':>11} {'egress GB':>10}"
    lines += [head, sub]
    for row in report["levels"]:
        b = row["payload_bytes"]
        opts = f"{b['with_options']:,}" if LADDER[row["level"]].options_every else "-"
        line = f"{row['level']:>3}  {row['description']:<46} {opts:>9} / {b['equity_only']:>7,}"
        for n in shown:
            pr = row["projections"][str(n)]
            msgs = f"{pr['messages']:,}" + ("!" if not pr["fits_messages"] else " ")
            gb = f"{pr['egress_bytes'] / 1e9:.2f}" + ("!" if not pr["fits_egress"] else " ")
            line += f" | {msgs:>12}{gb:>11}"
        lines.append(line.rstrip())
    chosen = ", ".join(f"level {report['chosen'][str(n)]} with {n}" for n in shown)
    lines += ["", f"The publisher would choose: {chosen} dashboard(s) open."]
    n = report["configured_dashboards"]
    lvl = report["chosen"][str(n)]
    lines.append(f"SUPABASE_DASHBOARDS={n}: level {lvl} ({report['levels'][lvl]['description']}).")
    month = report["month"]
    if month is not None:
        lines.append(
            f"This month ({month['key']}): {month['broadcasts']:,} broadcasts accepted = "
            f"{month['messages']:,} messages, {month['egress_bytes'] / 1e9:.3f} GB egress with "
            f"{n} dashboard(s); pace check: level {month['level']} ({month['reason']})."
        )
    elif report["redis_error"]:
        lines.append(f"This month: unknown, Redis did not answer ({report['redis_error']}).")
    return "\n".join(lines)


def run(
    args: argparse.Namespace, clock: Clock = SYSTEM_CLOCK, settings: BudgetSettings | None = None
) -> int:
    """Entry point of the subcommand (``clock``/``settings`` are injectable for tests)."""
    settings = settings or load_settings(BudgetSettings)
    hours = MarketHoursMode(args.hours) if args.hours else _default_hours(settings.market_hours)
    try:
        sizes = measure(args.tickers, args.contracts, settings.committed_max_options)
    except RuntimeError as exc:
        print(f"streamdesk budget: {exc}", file=sys.stderr)
        return 1
    report = build_report(
        sizes,
        receivers=args.dashboards or DEFAULT_RECEIVERS,
        configured=settings.supabase_dashboards,
        hours=hours,
        flush_interval=settings.batch_interval,
        tickers=args.tickers,
        contracts=args.contracts,
    )
    try:
        month, usage = asyncio.run(read_month(settings.redis_url, clock))
    except (RedisError, OSError, TimeoutError) as exc:
        report["redis_error"] = f"{type(exc).__name__}: {exc}"
    else:
        projections = project_all(
            sizes,
            settings.supabase_dashboards,
            report["seconds_per_month"],
            report["flush_interval"],
        )
        add_month(report, month, usage, projections, clock)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _default_hours(mode: MarketHoursMode) -> MarketHoursMode:
    return MarketHoursMode.REGULAR if mode is MarketHoursMode.ALWAYS else mode


def _int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} must be a whole number, got {text!r}"
            ) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be {lo}..{hi}, got {value}")
        return value

    return parse


def _dashboards(text: str) -> list[int]:
    one = _int_in(0, FREE_PLAN.connections, "dashboards (the free plan's concurrent connections)")
    items = [one(part.strip()) for part in text.split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one number of dashboards, e.g. 1,2,5")
    return sorted(set(items))


def register(subparsers: Any) -> None:
    """Add ``budget`` to the ``streamdesk`` CLI."""
    p = subparsers.add_parser(
        "budget",
        help="Supabase Realtime budget: messages and egress per degrade level, chosen level",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dashboards",
        type=_dashboards,
        default=None,
        help="dashboards open (receivers), comma-separated (default 1,2,5)",
    )
    p.add_argument("--tickers", type=_int_in(1, 10_000, "--tickers"), default=5)
    p.add_argument("--contracts", type=_int_in(0, 100_000, "--contracts"), default=200)
    p.add_argument(
        "--hours",
        choices=[m.value for m in MarketHoursMode],
        default=None,
        help="streamed hours: regular (09:30-16:00) or extended (04:00-20:00); "
        "default MARKET_HOURS, regular when that is 'always'",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)
