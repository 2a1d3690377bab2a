"""A backtest's result as JSON (byte-identical for identical inputs) and as a self-contained
HTML report with inline SVG plots (equity, drawdown, trades on price; no script, no CDN)."""

from __future__ import annotations

import dataclasses
import html
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamdesk.sessions import SessionCalendar
from streamdesk.strategy import metrics as m
from streamdesk.strategy.results import BacktestResult, Decimator, RoundTrip

FORMAT = "streamdesk-backtest/1"


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def to_dict(result: BacktestResult) -> dict[str, Any]:
    """The JSON document of ``result`` (docs/strategies.md, "Output")."""
    r = result
    pnls = [t.pnl for t in r.round_trips]
    metrics = m.compute(
        initial=r.initial_cash,
        ts=r.equity_ts,
        equity=r.equity,
        exposed=r.exposed,
        first_ts=r.first_ts,
        last_ts=r.last_ts,
        trip_pnls=pnls,
        calendar=r.calendar or SessionCalendar(),
    )
    open_value = math.fsum(q * r.last_prices.get(t, 0.0) for t, q in r.positions.items())
    final_equity = r.final_cash + open_value
    realized = math.fsum(pnls) + math.fsum(t.pnl for t in r.open_trips)
    unrealized = final_equity - r.initial_cash - realized
    metrics["commissions"] = math.fsum(f.commission for f in r.fills)
    metrics["fills"] = len(r.fills)
    metrics["realized_pnl"] = realized
    metrics["unrealized_pnl"] = unrealized
    doc: dict[str, Any] = _finite(
        {
            "format": FORMAT,
            "strategy": r.strategy,
            "params": r.params,
            "tickers": r.tickers,
            "source": r.source,
            "fill_model": dataclasses.asdict(r.fill_model),
            "initial_cash": r.initial_cash,
            "final_cash": r.final_cash,
            "events": r.events,
            "dropped_events": r.dropped_events,
            "first_ts": r.first_ts,
            "last_ts": r.last_ts,
            "metrics": metrics,
            "round_trips": [_trip(t) for t in r.round_trips],
            "open_trips": [_trip(t) for t in r.open_trips],
            "positions": r.positions,
            "last_prices": r.last_prices,
            "orders": {
                "rejected": r.rejected,
                "cancelled": r.cancelled,
                "unfilled": r.unfilled,
            },
            "logs": [list(x) for x in r.logs],
            "log_lines": r.log_lines,
        }
    )
    # the big lists hold only finite numbers and strings already (prices come from finite
    # inputs): built directly, not walked by _finite
    doc["fills"] = [
        {
            "commission": f.commission,
            "key": f.key,
            "order_type": f.order_type,
            "price": f.price,
            "quantity": f.quantity,
            "side": f.side,
            "submitted_ts": f.submitted_ts,
            "ticker": f.ticker,
            "ts": f.ts,
        }
        for f in r.fills
    ]
    doc["equity_curve"] = {
        "equity": [e if math.isfinite(e) else None for e in r.equity],
        "ts": r.equity_ts.tolist(),
    }
    return doc


def _trip(t: RoundTrip) -> dict[str, Any]:
    return {
        "entry_price": t.entry_price,
        "entry_ts": t.entry_ts,
        "exit_price": t.exit_price,
        "exit_ts": t.exit_ts,
        "fills": t.fills,
        "pnl": t.pnl,
        "quantity": t.quantity,
        "side": t.side,
        "ticker": t.ticker,
    }


def dumps(doc: dict[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, compact separators, ``repr`` floats, ASCII, a final
    newline. The same document always gives the same bytes."""
    return (
        json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
        + "\n"
    ).encode()


def write_json(result: BacktestResult, path: str | Path) -> dict[str, Any]:
    """Write the JSON document; return it."""
    doc = to_dict(result)
    Path(path).write_bytes(dumps(doc))
    return doc


# --- HTML -------------------------------------------------------------------------------

W, H, PAD = 900, 220, 48


def _iso(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return html.escape(str(v))


def _minmax(ts: Sequence[int], ys: Sequence[float], points: int) -> tuple[list[int], list[float]]:
    """At most ~``2 * points`` points keeping each bucket's min and max (shape preserved)."""
    n = len(ts)
    if n <= 2 * points:
        return list(ts), list(ys)
    step = math.ceil(n / points)
    out_t: list[int] = []
    out_y: list[float] = []
    for i in range(0, n, step):
        seg = range(i, min(i + step, n))
        lo = min(seg, key=lambda j: ys[j])
        hi = max(seg, key=lambda j: ys[j])
        for j in sorted({lo, hi}):
            out_t.append(ts[j])
            out_y.append(ys[j])
    return out_t, out_y


def _svg(
    title: str,
    ts: Sequence[int],
    ys: Sequence[float],
    *,
    area: bool = False,
    markers: Sequence[tuple[int, float, str]] = (),
    pct: bool = False,
) -> str:
    if not ts:
        return f"<h3>{html.escape(title)}</h3><p>no data</p>"
    t0, t1 = ts[0], ts[-1]
    vals = list(ys) + [p for _, p, _ in markers]
    lo, hi = min(vals), max(vals)
    if area:
        hi = max(hi, 0.0)
    if hi == lo:
        hi, lo = hi + 1.0, lo - 1.0
    span = (t1 - t0) or 1

    def x(t: int) -> float:
        return PAD + (t - t0) / span * (W - 2 * PAD)

    def y(v: float) -> float:
        return 10 + (hi - v) / (hi - lo) * (H - 40)

    pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(ts, ys, strict=True))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img" aria-label="{html.escape(title)}">',
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>',
    ]
    if area:
        parts.append(
            f'<polygon fill="#f4a6a6" stroke="#c33" stroke-width="1" points="{x(t0):.1f},'
            f'{y(0.0):.1f} {pts} {x(t1):.1f},{y(0.0):.1f}"/>'
        )
    else:
        parts.append(f'<polyline fill="none" stroke="#2563eb" stroke-width="1.2" points="{pts}"/>')
    for t, p, side in markers:
        cx, cy = x(t), y(p)
        if side == "BUY":
            tri = f"{cx:.1f},{cy - 1:.1f} {cx - 4:.1f},{cy + 6:.1f} {cx + 4:.1f},{cy + 6:.1f}"
            parts.append(f'<polygon fill="#16a34a" points="{tri}"/>')
        else:
            tri = f"{cx:.1f},{cy + 1:.1f} {cx - 4:.1f},{cy - 6:.1f} {cx + 4:.1f},{cy - 6:.1f}"
            parts.append(f'<polygon fill="#dc2626" points="{tri}"/>')

    def lab(v: float) -> str:
        return f"{v * 100:.2f}%" if pct else f"{v:,.2f}"

    parts += [
        f'<text x="4" y="16" font-size="11">{lab(hi)}</text>',
        f'<text x="4" y="{H - 32}" font-size="11">{lab(lo)}</text>',
        f'<text x="{PAD}" y="{H - 8}" font-size="11">{_iso(t0)}</text>',
        f'<text x="{W - PAD}" y="{H - 8}" font-size="11" text-anchor="end">{_iso(t1)}</text>',
        "</svg>",
    ]
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def _table(rows: Sequence[Sequence[Any]], head: Sequence[str]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render_html(result: BacktestResult, doc: dict[str, Any], max_rows: int = 200) -> str:
    """The HTML report of ``result`` (``doc``: its :func:`to_dict`)."""
    r = result
    met = doc["metrics"]
    ts, eq = _minmax(r.equity_ts, r.equity, 800)
    # drawdown on the full curve, then thinned the same way
    peak = r.initial_cash
    dd: list[float] = []
    for e in r.equity:
        peak = max(peak, e)
        dd.append(e / peak - 1.0 if peak > 0 else 0.0)
    dts, dds = _minmax(r.equity_ts, dd, 800)
    sections = [
        _svg("Equity", ts, eq),
        _svg("Drawdown", dts, dds, area=True, pct=True),
    ]
    for ticker in r.tickers:
        dec: Decimator | None = r.prices.get(ticker)
        if dec is None:
            continue
        fills = [f for f in r.fills if f.ticker == ticker]
        marks = [(f.ts, f.price, f.side) for f in fills[:400]]
        note = f" (first 400 of {len(fills)} fills)" if len(fills) > 400 else ""
        sections.append(_svg(f"{ticker}: trades on price{note}", dec.ts, dec.values, markers=marks))
    metric_rows = [(k, met[k]) for k in sorted(met)]
    fill_rows = [
        (_iso(f.ts), f.ticker, f.side, f.quantity, f.price, f.commission, f.order_type, f.key)
        for f in r.fills[:max_rows]
    ]
    trip_rows = [
        (t.ticker, t.side, _iso(t.entry_ts), t.entry_price, _iso(t.exit_ts), t.exit_price, t.pnl)
        for t in r.round_trips[:max_rows]
    ]
    params = html.escape(json.dumps(r.params, sort_keys=True))
    title = html.escape(f"Backtest: {r.strategy}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#111}}
table{{border-collapse:collapse;font-size:12px;margin:8px 0}}
td,th{{border:1px solid #ddd;padding:2px 6px;text-align:right}}
th{{background:#f3f4f6}} h3{{margin:18px 0 4px}} svg{{border:1px solid #e5e7eb}}
</style></head><body>
<h1>{title}</h1>
<p>Parameters: <code>{params}</code><br>Tickers: {html.escape(", ".join(r.tickers))}<br>
From {_iso(r.first_ts)} to {_iso(r.last_ts)} UTC; {r.events} events;
fill model <code>{html.escape(json.dumps(doc["fill_model"], sort_keys=True))}</code></p>
<h2>Metrics</h2>{_table(metric_rows, ("metric", "value"))}
<h2>Plots</h2>{"".join(sections)}
<h2>Round trips ({len(r.round_trips)}; first {min(max_rows, len(r.round_trips))})</h2>
{_table(trip_rows, ("ticker", "side", "entry", "entry price", "exit", "exit price", "pnl"))}
<h2>Fills ({len(r.fills)}; first {min(max_rows, len(r.fills))})</h2>
{_table(fill_rows, ("time", "ticker", "side", "qty", "price", "commission", "type", "key"))}
</body></html>
"""


def write_html(result: BacktestResult, doc: dict[str, Any], path: str | Path) -> None:
    """Write the HTML report."""
    Path(path).write_text(render_html(result, doc), encoding="utf-8")
