// Price lines of the shown symbol's working stops and take-profits on the chart
// (lightweight-charts createPriceLine), STOP / STOP_LIMIT lines draggable: pointer events on
// the chart's element, the price from series.coordinateToPrice, a confirmation, then the
// stop move (POST /api/trades/{id}/stop, or the Supabase RPC). The lines' data is
// lib/orders.ts's priceLines; the drag arithmetic is lineAt / dragPrice there.
import { LineStyle, type AutoscaleInfo, type IChartApi, type IPriceLine, type ISeriesApi } from 'lightweight-charts';
import { dragPrice, lineAt, type LineKind, type PriceLineSpec } from '../lib/orders';
import { tickSize } from '../lib/ticks';
import { moveStop, showToast, stopMove } from '../stores/trading';
import { fmtNum } from './format';

const COLORS: Record<LineKind, string> = { stop: '#f85149', stop_limit: '#ff7b72', trailing: '#d29922', take_profit: '#3fb950' };
/** How long a requested move is drawn at its new price while the executor replaces it. */
const HOLD_MS = 15_000;

interface Shown {
  spec: PriceLineSpec;
  line: IPriceLine;
}

export class OrderLines {
  private shown = new Map<number, Shown>();
  private specs: PriceLineSpec[] = [];
  private drag: { spec: PriceLineSpec; pointer: number; price: number } | null = null;
  /** a dropped line waiting for its confirmation or its replacement */
  private held: { id: number; from: number; price: number; until: number } | null = null;
  private symbol = '';

  constructor(
    private readonly chart: IChartApi,
    private readonly series: ISeriesApi<'Candlestick'>,
    private readonly el: HTMLElement,
    private readonly now: () => number = Date.now,
  ) {
    // Capture phase on the chart's own element: a press on a line is ours before the chart
    // sees it; preventDefault on pointerdown also suppresses the mouse events the chart
    // pans with, and scrolling/scaling are off while a line is dragged (touch).
    el.addEventListener('pointerdown', this.down, true);
    el.addEventListener('pointermove', this.move, true);
    el.addEventListener('pointerup', this.up, true);
    el.addEventListener('pointercancel', this.cancelDrag, true);
    // The price scale takes the lines in: a stop away from the candles stays on screen.
    series.applyOptions({ autoscaleInfoProvider: (base: () => AutoscaleInfo | null) => this.autoscale(base()) });
  }

  private autoscale(info: AutoscaleInfo | null): AutoscaleInfo | null {
    if (!info?.priceRange || !this.shown.size) return info;
    let { minValue, maxValue } = info.priceRange;
    for (const { line } of this.shown.values()) {
      const p = line.options().price;
      if (p < minValue) minValue = p;
      if (p > maxValue) maxValue = p;
    }
    return { ...info, priceRange: { minValue, maxValue } };
  }

  /** Draw `specs` (the shown symbol's lines), keeping a dragged or held line where it is. */
  set(symbol: string, specs: PriceLineSpec[]): void {
    if (symbol !== this.symbol) {
      this.symbol = symbol;
      this.held = null;
      if (this.drag) this.cancelDrag();
    }
    this.specs = specs;
    const ids = new Set(specs.map((s) => s.id));
    for (const [id, s] of this.shown) {
      if (!ids.has(id) && this.drag?.spec.id !== id) {
        this.series.removePriceLine(s.line);
        this.shown.delete(id);
      }
    }
    const h = this.held;
    for (const spec of specs) {
      if (this.drag?.spec.id === spec.id) continue;
      let price = spec.price;
      let title = spec.title;
      if (h && h.id === spec.id) {
        // until the row shows the new stop (or the hold ends), draw the requested price
        if (spec.price === h.from && this.now() < h.until) {
          price = h.price;
          title = `${spec.title} → ${fmtNum(h.price)}`;
        } else this.held = null;
      }
      const opts = {
        price,
        color: COLORS[spec.kind],
        lineWidth: spec.draggable ? 2 : 1,
        lineStyle: spec.kind === 'take_profit' ? LineStyle.Dashed : spec.kind === 'trailing' ? LineStyle.Dotted : LineStyle.Solid,
        axisLabelVisible: true,
        title,
      } as const;
      const cur = this.shown.get(spec.id);
      if (cur) {
        const o = cur.line.options();
        if (o.price !== price || o.title !== title || o.color !== opts.color) cur.line.applyOptions(opts);
        cur.spec = spec;
      } else this.shown.set(spec.id, { spec, line: this.series.createPriceLine(opts) });
    }
    this.el.dataset.orderLines = specs.map((s) => `${s.id}:${s.kind}:${s.price}`).join(',');
  }

  /** Put a line back at its order's price (a move not confirmed, or refused). */
  release(id: number): void {
    if (this.held?.id === id) this.held = null;
    this.set(this.symbol, this.specs);
  }

  /** Keep a confirmed move drawn at its new price until the row shows it. */
  hold(id: number, from: number, price: number): void {
    this.held = { id, from, price, until: this.now() + HOLD_MS };
    this.set(this.symbol, this.specs);
  }

  private y(e: PointerEvent): number {
    return e.clientY - this.el.getBoundingClientRect().top;
  }

  private toY = (price: number): number | null => this.series.priceToCoordinate(price);

  private down = (e: PointerEvent): void => {
    if (e.button !== 0 || this.drag || stopMove.peek()) return;
    const hit = lineAt(this.y(e), this.specs, this.toY);
    if (!hit) return;
    e.preventDefault();
    e.stopPropagation();
    this.el.setPointerCapture?.(e.pointerId);
    this.chart.applyOptions({ handleScroll: false, handleScale: false });
    this.drag = { spec: hit, pointer: e.pointerId, price: hit.price };
  };

  private move = (e: PointerEvent): void => {
    const d = this.drag;
    if (!d) {
      const over = lineAt(this.y(e), this.specs, this.toY) != null;
      this.el.classList.toggle('over-line', over);
      return;
    }
    if (e.pointerId !== d.pointer) return;
    e.preventDefault();
    e.stopPropagation();
    const p = dragPrice(this.y(e), (y) => this.series.coordinateToPrice(y), tickSize(d.spec.price, 'EQUITY'));
    if (p == null) return;
    d.price = p;
    this.shown.get(d.spec.id)?.line.applyOptions({ price: p, title: `${d.spec.title} → ${fmtNum(p)}` });
  };

  private up = (e: PointerEvent): void => {
    const d = this.drag;
    if (!d || e.pointerId !== d.pointer) return;
    e.preventDefault();
    e.stopPropagation();
    this.end();
    if (d.price === d.spec.price) {
      this.release(d.spec.id);
      return;
    }
    this.held = { id: d.spec.id, from: d.spec.price, price: d.price, until: Number.POSITIVE_INFINITY };
    stopMove.value = { id: d.spec.id, symbol: this.symbol, from: d.spec.price, to: d.price };
  };

  private cancelDrag = (): void => {
    const d = this.drag;
    if (!d) return;
    this.end();
    this.release(d.spec.id);
  };

  private end(): void {
    if (this.drag) this.el.releasePointerCapture?.(this.drag.pointer);
    this.drag = null;
    this.chart.applyOptions({ handleScroll: true, handleScale: true });
  }

  destroy(): void {
    this.el.removeEventListener('pointerdown', this.down, true);
    this.el.removeEventListener('pointermove', this.move, true);
    this.el.removeEventListener('pointerup', this.up, true);
    this.el.removeEventListener('pointercancel', this.cancelDrag, true);
  }
}

/** The confirmation of a dropped stop line: nothing is sent before "Move". */
export function StopMoveBar({ lines }: { lines: () => OrderLines | null }) {
  const m = stopMove.value;
  if (!m) return null;
  const close = () => {
    stopMove.value = null;
    lines()?.release(m.id);
  };
  const send = async () => {
    stopMove.value = { ...m, sending: true, error: undefined };
    try {
      await moveStop(m.id, m.to);
      stopMove.value = null;
      lines()?.hold(m.id, m.from, m.to);
      showToast(`Order #${m.id}: stop move to ${fmtNum(m.to)} requested`);
    } catch (e) {
      stopMove.value = { ...m, sending: false, error: (e as Error).message };
    }
  };
  return (
    <div class="stop-move" data-testid="stop-move" role="dialog" aria-label="Move stop">
      <span>
        Move stop #{m.id} {m.symbol} {fmtNum(m.from)} → <strong data-testid="stop-move-to">{fmtNum(m.to)}</strong>?
      </span>
      {m.error && (
        <span class="err" data-testid="stop-move-error">
          {m.error}
        </span>
      )}
      <button type="button" class="primary" data-testid="stop-move-confirm" disabled={m.sending} onClick={() => void send()}>
        {m.sending ? 'Sending…' : 'Move'}
      </button>
      <button type="button" data-testid="stop-move-cancel" disabled={m.sending} onClick={close}>
        Keep
      </button>
    </div>
  );
}
