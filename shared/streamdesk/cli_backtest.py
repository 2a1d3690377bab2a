"""``streamdesk backtest STRATEGY``: replay stored history through a strategy (docs/strategies.md).

Sources: 1-minute bars (``bars_1m``, the default) or per-second rows (``equity_data`` with
their ``indicators``) from ``DATABASE_URL`` between ``--from`` and ``--to``, or a recorded tick
file (``--recording``: JSON lines of committed messages). Writes the result as JSON (``--out``,
byte-identical for identical inputs) and an HTML report with plots (``--html``), prints the
metrics, and reports progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .config import MarketHoursMode


def _when(value: str) -> datetime:
    """ISO date or date-time; naive means UTC."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO date or date-time: {value!r} (e.g. 2026-03-02 or 2026-03-02T14:30)"
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.params:
        try:
            loaded = json.loads(args.params)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--params is not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError("--params must be a JSON object")
        params.update(loaded)
    for item in args.param or ():
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--param takes NAME=VALUE, not {item!r}")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params


def _progress(quiet: bool) -> Callable[[int, int], None] | None:
    if quiet:
        return None
    last = [0.0]

    def report(events: int, ts: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 2.0:
            last[0] = now
            at = datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d %H:%M")
            print(f"backtest: {events:,} events, at {at} UTC", file=sys.stderr, flush=True)

    return report


async def _bar_map(path: str, tickers: list[str]) -> Any:
    """``bars_1m`` (and last-second indicators) over a recording's span, for ``--bars db``."""
    from datetime import timedelta

    from .config import CommonSettings, load_settings
    from .db import close_connection, connect
    from .strategy.pgsource import load_bar_map
    from .strategy.replay import read_recording

    lo = hi = None
    seen: set[str] = set()
    for tick, _ in read_recording(path):
        seen.add(tick.ticker)
        lo = tick.ts if lo is None else min(lo, tick.ts)
        hi = tick.ts if hi is None else max(hi, tick.ts)
    if lo is None or hi is None:
        return {}
    start = datetime.fromtimestamp(lo / 1000, UTC) - timedelta(minutes=1)
    end = datetime.fromtimestamp(hi / 1000, UTC) + timedelta(minutes=1)
    conn = await connect(load_settings(CommonSettings).database_url)
    try:
        return await load_bar_map(conn, tickers or sorted(seen), start, end)
    finally:
        await close_connection(conn)


async def _feed_postgres(bt: Any, args: argparse.Namespace, tickers: list[str]) -> None:
    from .config import CommonSettings, load_settings
    from .db import close_connection, connect
    from .strategy.pgsource import stream_bars, stream_seconds

    settings = load_settings(CommonSettings)
    conn = await connect(settings.database_url)
    try:
        if args.source == "bars":
            async for bar in stream_bars(conn, tickers, args.start, args.end):
                bt.feed_bar(bar)
        else:
            async for tick, ind in stream_seconds(conn, tickers, args.start, args.end):
                bt.feed_tick(tick, ind)
    finally:
        await close_connection(conn)


def run(args: argparse.Namespace) -> int:
    """Run one backtest; exit code 0, 2 on bad input, 1 when the source cannot be read."""
    from .sessions import SessionCalendar
    from .strategy.api import StrategyError, load_strategy
    from .strategy.backtest import Backtester
    from .strategy.fills import FillModel
    from .strategy.replay import RecordingError, RecordingStats, read_recording
    from .strategy.report import write_html, write_json

    try:
        cls = load_strategy(args.strategy)
        params = _params(args)
        fill_model = FillModel(
            latency_ms=args.latency_ms,
            slippage_bps=args.slippage_bps,
            commission_per_share=args.commission_per_share,
            commission_bps=args.commission_bps,
            commission_min=args.commission_min,
        )
        mode = MarketHoursMode(args.market_hours or os.environ.get("MARKET_HOURS", "always"))
        calendar = SessionCalendar(args.tz, args.session_open, args.session_close, mode)
        tickers = [t.strip().upper() for t in (args.tickers or "").split(",") if t.strip()]
        bt = Backtester(
            cls,
            params,
            tickers=tickers,
            cash=args.cash,
            fill_model=fill_model,
            calendar=calendar,
            bar_seconds=args.bar_seconds,
            indicators=args.indicators,
            progress=_progress(args.quiet),
        )
        if not bt.tickers and not args.recording:
            raise ValueError("--tickers is required (the strategy names none)")
        if args.html == "":
            args.html = None
        if args.bars == "db" and args.recording is None:
            raise ValueError("--bars db applies to --recording (Postgres sources read bars_1m)")
        if args.recording is None:
            if args.start is None or args.end is None:
                raise ValueError("--from and --to are required unless --recording is given")
            if args.end <= args.start:
                raise ValueError("--to must be after --from")
    except (StrategyError, ValueError) as exc:
        print(f"streamdesk backtest: {exc}", file=sys.stderr)
        return 2
    source: dict[str, Any] = {"indicators": args.indicators, "bar_seconds": args.bar_seconds}
    try:
        if args.recording is not None:
            if args.bars == "db":
                bars = asyncio.run(_bar_map(args.recording, list(bt.tickers)))
                bt.bar_source = lambda t, m: bars.get((t, m))
                source["bars"] = "db"
            stats = RecordingStats()
            start_ms = None if args.start is None else int(args.start.timestamp() * 1000)
            end_ms = None if args.end is None else int(args.end.timestamp() * 1000)
            for tick, ind in read_recording(args.recording, stats):
                if (start_ms is not None and tick.ts < start_ms) or (
                    end_ms is not None and tick.ts >= end_ms
                ):
                    continue
                bt.feed_tick(tick, ind)
            source.update(
                kind="recording",
                path=args.recording,
                messages=stats.messages,
                bad_lines=stats.bad_lines,
                first_bad=stats.first_bad,
            )
            if stats.bad_lines:
                print(
                    f"streamdesk backtest: skipped {stats.bad_lines} bad line(s) of "
                    f"{args.recording} ({stats.first_bad})",
                    file=sys.stderr,
                )
        else:
            asyncio.run(_feed_postgres(bt, args, list(bt.tickers)))
            source.update(
                kind=args.source,
                start=args.start.isoformat(),
                end=args.end.isoformat(),
            )
    except StrategyError as exc:
        print(f"streamdesk backtest: {exc}", file=sys.stderr)
        return 2
    except (RecordingError, OSError) as exc:
        print(f"streamdesk backtest: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        import asyncpg

        if isinstance(exc, asyncpg.PostgresError):
            print(f"streamdesk backtest: database: {exc}", file=sys.stderr)
            return 1
        raise
    result = bt.finish()
    result.source = source
    doc = write_json(result, args.out)
    if args.html:
        write_html(result, doc, args.html)
    _summary(doc, args)
    return 0


def _summary(doc: dict[str, Any], args: argparse.Namespace) -> None:
    m = doc["metrics"]

    def f(v: Any, pct: bool = False) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "-"
        return f"{v * 100:.2f}%" if pct else f"{v:.3f}" if isinstance(v, float) else str(v)

    print(
        f"{doc['strategy']}: {doc['events']} events, {m['fills']} fills, "
        f"{m['round_trips']} round trips\n"
        f"  total return {f(m['total_return'], True)}  CAGR {f(m['cagr'], True)}  "
        f"Sharpe {f(m['sharpe'])}  Sortino {f(m['sortino'])}\n"
        f"  max drawdown {f(m['max_drawdown'], True)}  win rate {f(m['win_rate'], True)}  "
        f"profit factor {f(m['profit_factor'])}  exposure {f(m['exposure'], True)}\n"
        f"  wrote {args.out}" + (f" and {args.html}" if args.html else "")
    )


def register(subparsers: Any) -> None:
    """Add ``backtest`` to the ``streamdesk`` CLI."""
    p = subparsers.add_parser(
        "backtest",
        help="replay stored history (bars, seconds or a recording) through a strategy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("strategy", help="'package.module:ClassName' (or a module with one)")
    p.add_argument("--from", dest="start", type=_when, help="start (ISO; naive = UTC)")
    p.add_argument("--to", dest="end", type=_when, help="end, exclusive (ISO; naive = UTC)")
    p.add_argument("--tickers", help="comma-separated (default: the strategy's own)")
    p.add_argument("--source", choices=["bars", "seconds"], default="bars")
    p.add_argument("--recording", help="a recorded tick file (JSONL of committed messages)")
    p.add_argument(
        "--bars",
        choices=["rows", "db"],
        default="rows",
        help="recording: bars made from its rows, or read from bars_1m as the live runtime does",
    )
    p.add_argument("--params", help="strategy parameters as a JSON object")
    p.add_argument("--param", action="append", help="NAME=VALUE (JSON or string); repeatable")
    p.add_argument("--cash", type=float, default=100_000.0)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--slippage-bps", type=float, default=0.0)
    p.add_argument("--commission-per-share", type=float, default=0.0)
    p.add_argument("--commission-bps", type=float, default=0.0)
    p.add_argument("--commission-min", type=float, default=0.0)
    p.add_argument(
        "--indicators",
        choices=["auto", "engine", "stored"],
        default="auto",
        help="auto: the stored values of per-second rows and recordings, the engine for bars",
    )
    p.add_argument("--bar-seconds", type=int, default=60, help="INDICATOR_BAR_SECONDS")
    p.add_argument(
        "--market-hours",
        choices=[m.value for m in MarketHoursMode],
        help="session calendar (default: $MARKET_HOURS or always)",
    )
    p.add_argument("--tz", default="America/New_York")
    p.add_argument("--session-open", default="09:30")
    p.add_argument("--session-close", default="16:00")
    p.add_argument("--out", default="backtest.json", help="JSON result (default backtest.json)")
    p.add_argument("--html", default="backtest.html", help="HTML report ('' for none)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)
