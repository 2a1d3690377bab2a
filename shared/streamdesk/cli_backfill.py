"""``streamdesk backfill``: 1-minute and daily bars from Schwab's price history.

  streamdesk backfill [--tickers SPY,AAPL] [--days N] [--daily-days N] [--gaps] [--json]

Bars come from ``GET /marketdata/v1/pricehistory`` through schwab-py (market-sim serves it in
paper mode) into ``bars_1m`` and ``bars_1d`` with ``source = 'backfill'`` and ``ON CONFLICT
DO NOTHING``: a run is idempotent and never overwrites a streamed bar (the writer's later
update of a backfilled minute makes it streamed: migration 0100). Requests are spaced by
``--rate`` per second. ``--gaps`` heals the recorded ``stream_gaps`` not yet healed, at minute
resolution. The strategy service calls :func:`backfill_ticker` for tickers added to the
universe and :func:`heal_gaps` after a recorded gap (docs/strategies.md, "Backfill").

Exit codes: 0 done, 1 failed (broker or database), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from .config import CommonSettings, ConfigError, load_settings

log = logging.getLogger(__name__)
NY = ZoneInfo("America/New_York")

#: Days of minute history asked for in one request (Schwab answers up to ~10 days per call).
MINUTE_CHUNK_DAYS = 5
#: Most bars accepted from one answer (a larger one is refused as malformed).
MAX_CANDLES = 50_000


class BackfillError(Exception):
    """The broker's answer could not be used (status, shape)."""


class RateLimiter:
    """At most ``rate`` calls per second: each :meth:`wait` sleeps until its slot."""

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self.monotonic = monotonic
        self.next_at = 0.0

    async def wait(self) -> None:
        """Wait for the next slot."""
        now = self.monotonic()
        if self.next_at > now:
            await asyncio.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


@dataclass(frozen=True, slots=True)
class Candle:
    """One price-history candle (``ts`` epoch ms of its start)."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: int


@dataclass(slots=True)
class BackfillResult:
    """What a run fetched and inserted."""

    requests: int = 0
    minute_fetched: int = 0
    minute_inserted: int = 0
    daily_fetched: int = 0
    daily_inserted: int = 0
    gaps_healed: int = 0
    bad_candles: int = 0

    def add(self, other: BackfillResult) -> None:
        """Accumulate ``other``."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def parse_candles(payload: Any, result: BackfillResult) -> list[Candle]:
    """The usable candles of a price-history answer (bad ones counted and skipped);
    :class:`BackfillError` if the answer is not a price history at all."""
    if not isinstance(payload, dict) or not isinstance(payload.get("candles", []), list):
        raise BackfillError("the price-history answer has no candles list")
    raw = payload.get("candles", [])
    if len(raw) > MAX_CANDLES:
        raise BackfillError(f"the price-history answer has {len(raw)} candles (max {MAX_CANDLES})")
    out: list[Candle] = []
    for c in raw:
        try:
            candle = Candle(
                int(c["datetime"]),
                float(c["open"]),
                float(c["high"]),
                float(c["low"]),
                float(c["close"]),
                int(c["volume"]),
            )
        except (KeyError, TypeError, ValueError):
            result.bad_candles += 1
            continue
        prices = (candle.open, candle.high, candle.low, candle.close)
        if not all(p > 0 and p - p == 0.0 for p in prices) or candle.volume < 0:
            result.bad_candles += 1
            continue
        out.append(candle)
    return out


async def _fetch(
    call: Callable[[], Awaitable[Any]], limiter: RateLimiter, result: BackfillResult
) -> Any:
    await limiter.wait()
    result.requests += 1
    resp = await call()
    if resp.status_code != 200:
        raise BackfillError(f"price history answered HTTP {resp.status_code}")
    return resp.json()


_INSERT_MINUTES = """
INSERT INTO bars_1m_hot (ticker, bucket, open, high, low, close, volume, vwap, source)
SELECT $1, to_timestamp(u.ts / 1000.0), u.o, u.h, u.l, u.c, u.v, NULL, 'backfill'
FROM unnest($2::bigint[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::bigint[])
     AS u(ts, o, h, l, c, v)
ON CONFLICT (ticker, bucket) DO NOTHING
"""
_INSERT_DAYS = """
INSERT INTO bars_1d (ticker, day, open, high, low, close, volume, source)
SELECT $1, u.d, u.o, u.h, u.l, u.c, u.v, 'backfill'
FROM unnest($2::date[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::bigint[])
     AS u(d, o, h, l, c, v)
ON CONFLICT (ticker, day) DO NOTHING
"""


def _count(status: str) -> int:
    # "INSERT 0 12" -> 12
    return int(status.rsplit(" ", 1)[-1])


async def backfill_minutes(
    client: Any,
    pool: asyncpg.Pool,
    ticker: str,
    start: datetime,
    end: datetime,
    limiter: RateLimiter,
) -> BackfillResult:
    """Minute bars of ``ticker`` in ``[start, end]`` (chunked), inserted as backfilled; only
    whole minutes before ``end``."""
    result = BackfillResult()
    chunk = start
    while chunk < end:
        stop = min(end, chunk + timedelta(days=MINUTE_CHUNK_DAYS))
        payload = await _fetch(
            functools.partial(
                client.get_price_history_every_minute,
                ticker,
                start_datetime=chunk,
                end_datetime=stop,
                need_extended_hours_data=False,
            ),
            limiter,
            result,
        )
        end_ms = int(stop.timestamp() * 1000)
        candles = [c for c in parse_candles(payload, result) if c.ts + 60_000 <= end_ms]
        result.minute_fetched += len(candles)
        if candles:
            status = await pool.execute(
                _INSERT_MINUTES,
                ticker,
                [c.ts for c in candles],
                [c.open for c in candles],
                [c.high for c in candles],
                [c.low for c in candles],
                [c.close for c in candles],
                [c.volume for c in candles],
            )
            result.minute_inserted += _count(status)
        chunk = stop
    return result


async def backfill_days(
    client: Any,
    pool: asyncpg.Pool,
    ticker: str,
    start: datetime,
    end: datetime,
    limiter: RateLimiter,
) -> BackfillResult:
    """Daily bars of ``ticker`` for the finished New York days in ``[start, end)``."""
    result = BackfillResult()
    payload = await _fetch(
        lambda: client.get_price_history_every_day(ticker, start_datetime=start, end_datetime=end),
        limiter,
        result,
    )
    today = end.astimezone(NY).date()
    rows: list[tuple[date, Candle]] = []
    for c in parse_candles(payload, result):
        day = datetime.fromtimestamp(c.ts / 1000, NY).date()
        if day < today:
            rows.append((day, c))
    result.daily_fetched = len(rows)
    if rows:
        status = await pool.execute(
            _INSERT_DAYS,
            ticker,
            [d for d, _ in rows],
            [c.open for _, c in rows],
            [c.high for _, c in rows],
            [c.low for _, c in rows],
            [c.close for _, c in rows],
            [c.volume for _, c in rows],
        )
        result.daily_inserted = _count(status)
    return result


async def backfill_ticker(
    client: Any,
    pool: asyncpg.Pool,
    ticker: str,
    *,
    now: datetime,
    days: int,
    daily_days: int,
    limiter: RateLimiter,
) -> BackfillResult:
    """``days`` of minute bars and ``daily_days`` of daily bars up to ``now``; recorded in
    ``backfill_tickers``."""
    result = await backfill_minutes(client, pool, ticker, now - timedelta(days=days), now, limiter)
    if daily_days:
        result.add(
            await backfill_days(
                client, pool, ticker, now - timedelta(days=daily_days), now, limiter
            )
        )
    await pool.execute(
        "INSERT INTO backfill_tickers (ticker, at, minute_rows, daily_rows) "
        "VALUES ($1, now(), $2, $3) ON CONFLICT (ticker) DO UPDATE SET at = now(), "
        "minute_rows = backfill_tickers.minute_rows + EXCLUDED.minute_rows, "
        "daily_rows = backfill_tickers.daily_rows + EXCLUDED.daily_rows",
        ticker,
        result.minute_inserted,
        result.daily_inserted,
    )
    return result


async def heal_gaps(
    client: Any,
    pool: asyncpg.Pool,
    universe: Sequence[str],
    limiter: RateLimiter,
    *,
    limit: int = 20,
) -> BackfillResult:
    """Heal the ended, unhealed ``stream_gaps`` (oldest first, ``limit`` per call): the
    minutes they touch, of their symbols (the universe when none recorded), inserted as
    backfilled where no streamed bar exists; then ``healed_at`` is set."""
    result = BackfillResult()
    gaps = await pool.fetch(
        "SELECT id, started_at, ended_at, symbols FROM stream_gaps "
        "WHERE ended_at IS NOT NULL AND healed_at IS NULL ORDER BY id LIMIT $1",
        limit,
    )
    for gap in gaps:
        start = gap["started_at"].replace(second=0, microsecond=0)
        end = gap["ended_at"]
        if end.second or end.microsecond:
            end = end.replace(second=0, microsecond=0) + timedelta(minutes=1)
        symbols = [s for s in gap["symbols"] if s] or list(universe)
        for symbol in symbols:
            result.add(await backfill_minutes(client, pool, symbol, start, end, limiter))
        await pool.execute("UPDATE stream_gaps SET healed_at = now() WHERE id = $1", gap["id"])
        result.gaps_healed += 1
        log.info("healed stream gap %s (%s..%s, %s)", gap["id"], start, end, ",".join(symbols))
    return result


class BackfillSettings(CommonSettings):
    """Settings of ``streamdesk backfill``."""

    backfill_rate: float = 2.0


async def _run(args: argparse.Namespace, settings: BackfillSettings) -> BackfillResult:
    from .config import TradingMode
    from .db import close_pool, create_pool
    from .schwab import ensure_paper_token, make_client

    if settings.trading_mode is TradingMode.PAPER:
        await asyncio.to_thread(ensure_paper_token, settings)
    client = make_client(settings, asyncio=True)
    pool = await create_pool(settings.database_url, application_name="streamdesk-backfill")
    limiter = RateLimiter(args.rate or settings.backfill_rate)
    total = BackfillResult()
    try:
        now = datetime.now(UTC)
        tickers = args.tickers or settings.tickers
        for ticker in tickers:
            total.add(
                await backfill_ticker(
                    client, pool, ticker, now=now, days=args.days, daily_days=args.daily_days,
                    limiter=limiter,
                )
            )  # fmt: skip
        if args.gaps:
            total.add(await heal_gaps(client, pool, tickers, limiter))
    finally:
        await close_pool(pool)
        await client.close_async_session()
    return total


def _cmd(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(BackfillSettings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_run(args, settings))
    except (BackfillError, OSError, asyncpg.PostgresError) as exc:
        print(f"backfill failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # schwab-py / httpx transport errors, a refused token
        print(f"backfill failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(
            f"{result.requests} request(s); minute bars {result.minute_inserted} new of "
            f"{result.minute_fetched}; daily bars {result.daily_inserted} new of "
            f"{result.daily_fetched}; {result.gaps_healed} gap(s) healed"
            + (f"; {result.bad_candles} bad candle(s) skipped" if result.bad_candles else "")
        )
    return 0


def _tickers(value: str) -> list[str]:
    out = [t.strip().upper() for t in value.split(",") if t.strip()]
    for t in out:
        if not t.replace(".", "").replace("/", "").isalnum() or len(t) > 12:
            raise argparse.ArgumentTypeError(f"bad ticker {t!r}")
    return out


def _bounded(lo: int, hi: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"{n} is outside {lo}..{hi}")
        return n

    return parse


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < rate <= 100:
        raise argparse.ArgumentTypeError(f"rate {rate} is outside (0, 100]")
    return rate


def register(sub: Any) -> None:
    """Add ``backfill`` to the admin CLI."""
    p = sub.add_parser("backfill", help="load 1-minute and daily bars from the price history")
    p.add_argument("--tickers", type=_tickers, default=None, help="comma list (default TICKERS)")
    p.add_argument("--days", type=_bounded(1, 60), default=5,
                   help="days of minute bars, 1..60 (default 5)")  # fmt: skip
    p.add_argument("--daily-days", type=_bounded(0, 7300), default=365,
                   help="days of daily bars, 0..7300 (default 365; 0: none)")  # fmt: skip
    p.add_argument("--rate", type=_rate, default=None, help="requests per second (default 2)")
    p.add_argument("--gaps", action="store_true", help="also heal the recorded stream gaps")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd)
