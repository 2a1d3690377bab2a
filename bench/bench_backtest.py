"""Benchmark of the backtester (issue 17): a seeded year of 1-minute bars for 10 symbols
(~1 M bars) through the SMA9/VWAP cross, against backtrader and backtesting.py running the
same strategy on the same data in the same run.

Timed: CPU time (``time.process_time``) of the replay itself (bars in memory; the engine's
indicators, the strategy, fills, equity samples), then of the metrics + JSON document. The
comparators run on ``--compare-symbols`` of the 10 symbols (full year; backtrader needs
minutes for the whole set) and their time is scaled by 10 / that count, which the output
says. Their trades are compared with ours on the same symbols (count, first differences).
With ``--postgres`` it also measures reading the bars back from a local PostgreSQL
(``bars_1m``, server-side cursor), separately.

Run: ``.venv/bin/python bench/bench_backtest.py`` (``make bench BENCH=backtest``); writes
``bench/results/backtest.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from streamdesk.config import MarketHoursMode
from streamdesk.market_calendar import session_bounds
from streamdesk.sessions import SessionCalendar
from streamdesk.strategy.api import Bar
from streamdesk.strategy.backtest import Backtester
from streamdesk.strategy.examples.sma_vwap import SmaVwapCross
from streamdesk.strategy.report import dumps, to_dict

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH", "III", "JJJ")
QTY = 100


def sessions(year: int) -> list[tuple[int, int]]:
    """(open_ms, close_ms) of every NYSE regular session of ``year``."""
    out = []
    d = date(year, 1, 1)
    while d.year == year:
        b = session_bounds(d, MarketHoursMode.REGULAR)
        if b is not None:
            out.append((int(b[0].timestamp() * 1000), int(b[1].timestamp() * 1000)))
        d += timedelta(days=1)
    return out


def generate(
    year: int, symbols: tuple[str, ...], seed: int, cents: bool = True
) -> dict[str, dict[str, np.ndarray]]:
    """Seeded 1-minute bars per symbol: a geometric random walk, rounded to cents unless
    ``cents`` is false (then no close can equal its SMA9 exactly: no ties)."""
    rnd = (lambda a, k: np.round(a, k)) if cents else (lambda a, k: a)
    rng = np.random.default_rng(seed)
    ts = np.concatenate([np.arange(o, c, 60_000, dtype=np.int64) for o, c in sessions(year)])
    n = len(ts)
    data = {}
    for i, s in enumerate(symbols):
        start = 50.0 + 20.0 * i
        steps = rng.normal(0.0, 0.0009, size=(n, 4))
        path = start * np.exp(np.cumsum(steps.reshape(-1)))
        path = path.reshape(n, 4)
        o = rnd(path[:, 0], 2)
        c = rnd(path[:, 3], 2)
        h = rnd(np.maximum(path.max(axis=1), np.maximum(o, c)), 2)
        lo = rnd(np.minimum(path.min(axis=1), np.minimum(o, c)), 2)
        vol = rng.integers(100, 20_000, size=n).astype(np.int64)
        vwap = rnd((h + lo + c) / 3.0, 4)
        data[s] = {
            "ts": ts,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": vol,
            "vwap": vwap,
        }
    return data


def bars_in_time_order(
    data: dict[str, dict[str, np.ndarray]], symbols: tuple[str, ...]
) -> list[Bar]:
    """The bars as the Postgres reader yields them: by time, then ticker."""
    cols = {s: {k: v.tolist() for k, v in data[s].items()} for s in symbols}
    n = len(next(iter(cols.values()))["ts"])
    out: list[Bar] = []
    for j in range(n):
        for s in symbols:
            c = cols[s]
            out.append(
                Bar(
                    s,
                    c["ts"][j],
                    c["open"][j],
                    c["high"][j],
                    c["low"][j],
                    c["close"][j],
                    c["volume"][j],
                    c["vwap"][j],
                )
            )
    return out


def run_ours(bars: list[Bar], symbols: tuple[str, ...]) -> tuple[Any, float, float, bytes]:
    bt = Backtester(
        SmaVwapCross,
        {"quantity": QTY},
        tickers=symbols,
        cash=10_000_000.0,
        calendar=SessionCalendar(mode=MarketHoursMode.REGULAR),
    )
    t0 = time.process_time()
    feed = bt.feed_bar
    for b in bars:
        feed(b)
    res = bt.finish()
    t1 = time.process_time()
    blob = dumps(to_dict(res))
    t2 = time.process_time()
    return res, t1 - t0, t2 - t1, blob


# --- comparators: the same strategy in backtrader and backtesting.py ------------------------


def session_vwap(d: dict[str, np.ndarray]) -> np.ndarray:
    """Session VWAP from each bar's vwap x volume, reset per (UTC = New York) session day."""
    day = d["ts"] // 86_400_000
    pv = d["vwap"] * d["volume"]
    out = np.empty(len(pv))
    start = 0
    for end in [*np.flatnonzero(np.diff(day)) + 1, len(pv)]:
        out[start:end] = np.cumsum(pv[start:end]) / np.cumsum(d["volume"][start:end])
        start = end
    return out


def frame(d: dict[str, np.ndarray]) -> Any:
    import pandas as pd

    idx = pd.to_datetime(d["ts"], unit="ms")
    return pd.DataFrame(
        {
            "Open": d["open"],
            "High": d["high"],
            "Low": d["low"],
            "Close": d["close"],
            "Volume": d["volume"],
            "VW": session_vwap(d),
        },
        index=idx,
    )


def run_backtesting_py(
    data: dict[str, dict[str, np.ndarray]], symbols: tuple[str, ...]
) -> tuple[float, list[tuple[str, int, str, float]]]:
    import warnings

    import pandas as pd
    from backtesting import Backtest, Strategy

    class Cross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.sma = self.I(lambda c: pd.Series(c).rolling(9).mean().to_numpy(), self.data.Close)
            self.vw = self.I(lambda v: v, self.data.VW)
            self.prev: bool | None = None

        def next(self) -> None:
            s = self.sma[-1]
            if s != s:
                return
            c = self.data.Close[-1]
            above = bool(c > s and c > self.vw[-1])
            prev, self.prev = self.prev, above
            if prev is None or prev == above:
                return
            if above and not self.position:
                self.buy(size=QTY)
            elif not above and self.position.is_long:
                self.position.close()

    fills: list[tuple[str, int, str, float]] = []
    cpu = 0.0
    for sym in symbols:
        df = frame(data[sym])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = Backtest(df, Cross, cash=10_000_000, commission=0.0, finalize_trades=False)
            t0 = time.process_time()
            stats = bt.run()
            cpu += time.process_time() - t0
        for tr in stats["_trades"].itertuples():
            fills.append((sym, int(tr.EntryTime.value // 1_000_000), "BUY", float(tr.EntryPrice)))
            fills.append((sym, int(tr.ExitTime.value // 1_000_000), "SELL", float(tr.ExitPrice)))
    return cpu, fills


def run_backtrader(
    data: dict[str, dict[str, np.ndarray]], symbols: tuple[str, ...]
) -> tuple[float, list[tuple[str, int, str, float]]]:
    import backtrader as bt

    class Feed(bt.feeds.PandasData):  # type: ignore[misc]
        lines = ("vw",)
        params = (("vw", "VW"),)

    fills: list[tuple[str, int, str, float]] = []

    class Cross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.sma = {d: bt.ind.SMA(d.close, period=9) for d in self.datas}
            self.prev: dict[Any, bool] = {}

        def next(self) -> None:
            for d in self.datas:
                if len(d) < 9:
                    continue
                c = d.close[0]
                # the session VWAP straight from the data (as our engine folds the bar's
                # vwap x volume); computed in the feed, not a backtrader indicator
                above = bool(c > self.sma[d][0] and c > d.vw[0])
                prev = self.prev.get(d)
                self.prev[d] = above
                if prev is None or prev == above:
                    continue
                pos = self.getposition(d).size
                if above and not pos:
                    self.buy(data=d, size=QTY)
                elif not above and pos > 0:
                    self.close(data=d)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                dt = bt.num2date(order.executed.dt).replace(tzinfo=UTC)
                fills.append(
                    (
                        order.data._name,
                        int(dt.timestamp() * 1000),
                        "BUY" if order.isbuy() else "SELL",
                        float(order.executed.price),
                    )
                )

    cerebro = bt.Cerebro(stdstats=False)
    for sym in symbols:
        cerebro.adddata(Feed(dataname=frame(data[sym])), name=sym)
    cerebro.addstrategy(Cross)
    cerebro.broker.setcash(10_000_000.0)
    t0 = time.process_time()
    cerebro.run()
    return time.process_time() - t0, fills


def compare(
    ours: list[tuple[str, int, str, float]], theirs: list[tuple[str, int, str, float]]
) -> dict[str, Any]:
    """Fill counts, the first fill that differs, and how many fills only one side has.

    Prices are compared to 1e-8 (backtrader's fill prices can differ from the bar's open in
    the last bit); the largest price difference of fills that match otherwise is reported.
    """

    def norm(fs: list[tuple[str, int, str, float]]) -> list[tuple[str, int, str, float]]:
        return sorted(((t, ts, sd, round(p, 8)) for t, ts, sd, p in fs), key=lambda f: (f[1], f[0]))

    a, b = norm(ours), norm(theirs)
    raw_a = {(t, ts, sd): p for t, ts, sd, p in ours}
    diffs = [abs(raw_a[(t, ts, sd)] - p) for t, ts, sd, p in theirs if (t, ts, sd) in raw_a]
    sa, sb = set(a), set(b)
    first = None
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            first = {"index": i, "ours": list(x), "theirs": list(y)}
            break
    return {
        "fills_ours": len(a),
        "fills_theirs": len(b),
        "identical": a == b,
        "only_ours": len(sa - sb),
        "only_theirs": len(sb - sa),
        "first_difference": first,
        "max_price_difference": max(diffs, default=0.0),
    }


def sma_ties(d: dict[str, np.ndarray]) -> int:
    """Bars whose close equals its SMA9 in exact arithmetic (integer cents): there float
    rounding of each library's sum decides the side of the cross."""
    c = np.round(d["close"] * 100).astype(np.int64)
    s9 = np.convolve(c, np.ones(9, dtype=np.int64), mode="valid")
    return int(np.count_nonzero(9 * c[8:] == s9))


def postgres_read(bars: list[Bar], symbols: tuple[str, ...]) -> dict[str, Any]:
    """Load the bars into a local PostgreSQL's ``bars_1m`` and time reading them back through
    the backtester's reader (server-side cursor), and a full backtest from it."""
    import asyncio
    import tempfile

    import asyncpg
    from streamdesk_dev.localservers import PostgresServer

    from streamdesk.migrate import find_migrations_dir, migrate
    from streamdesk.strategy.pgsource import stream_bars

    async def go(dsn: str) -> dict[str, Any]:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, find_migrations_dir(None))
            records = (
                (
                    b.ticker,
                    datetime.fromtimestamp(b.ts / 1000, UTC),
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    b.volume,
                    b.vwap,
                )
                for b in bars
            )
            await conn.copy_records_to_table(
                "bars_1m",
                records=records,
                columns=["ticker", "bucket", "open", "high", "low", "close", "volume", "vwap"],
            )
            start = datetime.fromtimestamp(bars[0].ts / 1000, UTC)
            end = datetime.fromtimestamp((bars[-1].ts + 60_000) / 1000, UTC)
            w0, c0 = time.perf_counter(), time.process_time()
            n = 0
            async for _ in stream_bars(conn, list(symbols), start, end):
                n += 1
            read = (time.perf_counter() - w0, time.process_time() - c0)
            bt = Backtester(
                SmaVwapCross,
                {"quantity": QTY},
                tickers=symbols,
                cash=10_000_000.0,
                calendar=SessionCalendar(mode=MarketHoursMode.REGULAR),
            )
            w0, c0 = time.perf_counter(), time.process_time()
            async for b in stream_bars(conn, list(symbols), start, end):
                bt.feed_bar(b)
            res = bt.finish()
            full = (time.perf_counter() - w0, time.process_time() - c0)
            return {
                "rows": n,
                "read_only_wall_s": round(read[0], 3),
                "read_only_client_cpu_s": round(read[1], 3),
                "backtest_from_postgres_wall_s": round(full[0], 3),
                "backtest_from_postgres_client_cpu_s": round(full[1], 3),
                "fills": len(res.fills),
            }
        finally:
            await conn.close()

    with tempfile.TemporaryDirectory(prefix="bench_backtest_") as tmp:
        Path(tmp).chmod(0o755)  # the server may run as another user (root -> postgres)
        pg = PostgresServer(Path(tmp) / "pg", durable=False)
        pg.start()
        try:

            async def create() -> None:
                admin = await asyncpg.connect(pg.url)
                try:
                    await admin.execute("CREATE DATABASE streamdesk")
                finally:
                    await admin.close()

            asyncio.run(create())
            return asyncio.run(go(pg.dsn("streamdesk")))
        finally:
            pg.stop("fast")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--compare-symbols", type=int, default=1)
    ap.add_argument("--no-compare", action="store_true")
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench/results/backtest.json"))
    args = ap.parse_args()
    symbols = SYMBOLS[: args.symbols]
    data = generate(args.year, symbols, args.seed)
    bars = bars_in_time_order(data, symbols)
    print(f"{len(bars)} bars, {len(symbols)} symbols, {args.year}", file=sys.stderr)
    res, cpu, cpu_report, blob = run_ours(bars, symbols)
    res2, cpu2, _, blob2 = run_ours(bars, symbols)
    print(
        f"ours, {len(bars)} bars: {cpu:.2f} / {cpu2:.2f} s CPU (two runs) replay, "
        f"{cpu_report:.2f} s metrics+JSON; {len(res.fills)} fills; "
        f"{len(bars) / min(cpu, cpu2):,.0f} bars/s; JSON identical: {blob == blob2}"
    )
    out: dict[str, Any] = {
        "bars": len(bars),
        "symbols": len(symbols),
        "year": args.year,
        "seed": args.seed,
        "ours": {
            "cpu_replay_s": [round(cpu, 3), round(cpu2, 3)],
            "cpu_metrics_json_s": round(cpu_report, 3),
            "bars_per_s": round(len(bars) / min(cpu, cpu2)),
            "fills": len(res.fills),
            "round_trips": len(res.round_trips),
            "json_bytes": len(blob),
            "json_identical_across_runs": blob == blob2,
            "target_s": 10.0,
        },
    }
    del res2, blob2
    if not args.no_compare:
        sub = symbols[: args.compare_symbols]
        scale = len(symbols) / len(sub)
        sub_bars = [b for b in bars if b.ticker in sub]
        rs, cpu_sub, _, _ = run_ours(sub_bars, sub)
        our_fills = [(f.ticker, f.ts, f.side, f.price) for f in rs.fills]
        # comparators' closed trades only: drop our fills of a trip still open at the end
        open_entries = {(t.ticker, t.entry_ts) for t in rs.open_trips}
        our_closed = [f for f in our_fills if (f[0], f[1]) not in open_entries or f[2] != "BUY"]
        out["comparators"] = {
            "symbols": list(sub),
            "bars": len(sub_bars),
            "scale_to_full": scale,
            "ours_cpu_s": round(cpu_sub, 3),
        }
        out["comparators"]["sma9_ties_in_cents_data"] = sum(sma_ties(data[x]) for x in sub)
        smooth = generate(args.year, sub, args.seed, cents=False)
        rs_s, _, _, _ = run_ours(bars_in_time_order(smooth, sub), sub)
        ours_smooth = [(f.ticker, f.ts, f.side, f.price) for f in rs_s.fills]
        open_s = {(t.ticker, t.entry_ts) for t in rs_s.open_trips}
        ours_smooth_closed = [f for f in ours_smooth if (f[0], f[1]) not in open_s or f[2] != "BUY"]
        for name, fn in (("backtesting.py", run_backtesting_py), ("backtrader", run_backtrader)):
            c, theirs = fn(data, sub)
            closed_only = name == "backtesting.py"  # it lists closed trades only
            cmp_ = compare(our_closed if closed_only else our_fills, theirs)
            _, theirs_s = fn(smooth, sub)
            cmp_s = compare(ours_smooth_closed if closed_only else ours_smooth, theirs_s)
            out["comparators"][name] = {
                "cpu_s": round(c, 3),
                "cpu_s_scaled_to_full": round(c * scale, 3),
                "ratio_vs_ours": round(c / cpu_sub, 2),
                "trades_cents": cmp_,
                "trades_no_ties": cmp_s,
            }
            print(
                f"{name}: {c:.2f} s CPU on {len(sub_bars)} bars ({c * scale:.1f} s scaled to "
                f"{len(bars)}); {c / cpu_sub:.1f}x ours ({cpu_sub:.2f} s on the same bars)"
            )
            print(
                f"   cent prices: fills {cmp_['fills_theirs']} vs ours {cmp_['fills_ours']}, "
                f"identical: {cmp_['identical']}, only ours {cmp_['only_ours']}, "
                f"only theirs {cmp_['only_theirs']}; first difference {cmp_['first_difference']}"
            )
            print(
                f"   unrounded prices (no ties): fills {cmp_s['fills_theirs']} vs ours "
                f"{cmp_s['fills_ours']}, identical: {cmp_s['identical']}, first difference "
                f"{cmp_s['first_difference']}"
            )
        print(
            f"   SMA9 ties (close == SMA9 exactly) in the cent data: "
            f"{out['comparators']['sma9_ties_in_cents_data']}"
        )
    if args.postgres:
        pgr = postgres_read(bars, symbols)
        pgr["fills_equal_in_memory"] = pgr["fills"] == len(res.fills)
        out["postgres"] = pgr
        print(
            f"postgres: read {pgr['rows']} bars in {pgr['read_only_wall_s']:.2f} s wall "
            f"({pgr['read_only_client_cpu_s']:.2f} s client CPU); whole backtest from Postgres "
            f"{pgr['backtest_from_postgres_wall_s']:.2f} s wall, "
            f"{pgr['backtest_from_postgres_client_cpu_s']:.2f} s client CPU; same fills: "
            f"{pgr['fills_equal_in_memory']}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
