// The chart's order lines over a fake series and element: a press on a stop line drags it
// (the chart neither pans nor scales meanwhile), the drop asks for a confirmation with the
// price the pixel stands for, and nothing moves before it; a confirmed move is held at its
// new price until the row shows it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IChartApi, ISeriesApi } from 'lightweight-charts';
import type { Trade } from '../src/api/types';
import { setBackend } from '../src/backend';
import type { DataBackend } from '../src/backend/types';
import { priceLines } from '../src/lib/orders';
import { moveStop, stopMove } from '../src/stores/trading';
import { OrderLines } from '../src/views/OrderLines';

type Handler = (e: unknown) => void;

class FakeLine {
  constructor(public opts: Record<string, unknown>) {}
  applyOptions(o: Record<string, unknown>) {
    this.opts = { ...this.opts, ...o };
  }
  options() {
    return this.opts;
  }
}

// 200 px per dollar, 110 at the top of the pane, the pane 40 px below the page top
const toY = (p: number) => (110 - p) * 200;
const TOP = 40;

function setup() {
  const handlers = new Map<string, Handler>();
  const classes = new Set<string>();
  const el = {
    dataset: {} as Record<string, string>,
    classList: { toggle: (c: string, on: boolean) => (on ? classes.add(c) : classes.delete(c)) },
    addEventListener: (type: string, fn: Handler) => handlers.set(type, fn),
    removeEventListener: (type: string) => handlers.delete(type),
    getBoundingClientRect: () => ({ top: TOP }),
    setPointerCapture: () => {},
    releasePointerCapture: () => {},
  };
  const lines: FakeLine[] = [];
  let autoscale: ((base: () => unknown) => unknown) | null = null;
  const series = {
    applyOptions: (o: { autoscaleInfoProvider?: (base: () => unknown) => unknown }) => (autoscale = o.autoscaleInfoProvider ?? autoscale),
    createPriceLine: (o: Record<string, unknown>) => {
      const l = new FakeLine(o);
      lines.push(l);
      return l;
    },
    removePriceLine: (l: FakeLine) => lines.splice(lines.indexOf(l), 1),
    priceToCoordinate: toY,
    coordinateToPrice: (y: number) => 110 - y / 200,
  };
  const chartOpts: Record<string, unknown>[] = [];
  const chart = { applyOptions: (o: Record<string, unknown>) => chartOpts.push(o) };
  let now = 1000;
  const ol = new OrderLines(chart as unknown as IChartApi, series as unknown as ISeriesApi<'Candlestick'>, el as unknown as HTMLElement, () => now);
  const prevented: string[] = [];
  const fire = (type: string, price: number, extra: Record<string, unknown> = {}) =>
    handlers.get(type)!({ button: 0, pointerId: 1, clientY: TOP + toY(price), preventDefault: () => prevented.push(type), stopPropagation: () => {}, ...extra });
  const range = (min: number, max: number) => autoscale!(() => ({ priceRange: { minValue: min, maxValue: max } }));
  return { ol, el, lines, chartOpts, fire, prevented, classes, handlers, range, tick: (ms: number) => (now += ms) };
}

const stop = (p: Partial<Trade> = {}): Trade => ({ id: 7, created_at: '', symbol: 'SPY', asset_type: 'EQUITY', instruction: 'SELL', quantity: 1, order_type: 'STOP', limit_price: null, stop_price: 95, status: 'working', filled_quantity: 0, avg_fill_price: null, error: null, updated_at: '', leg: 'single', ...p });
const tp: Trade = { ...stop(), id: 8, order_type: 'LIMIT', limit_price: 105, stop_price: null, leg: 'take_profit', parent_id: 6 };

beforeEach(() => {
  stopMove.value = null;
});
afterEach(() => setBackend(null));

describe('order lines on the chart', () => {
  it('draws, updates and removes a line per order', () => {
    const s = setup();
    s.ol.set('SPY', priceLines([stop(), tp], 'SPY'));
    expect(s.lines.map((l) => [l.opts.price, l.opts.title])).toEqual([
      [95, 'STP #7'],
      [105, 'TP #8'],
    ]);
    expect(s.el.dataset.orderLines).toBe('7:stop:95,8:take_profit:105');
    // the price scale widens to show every line
    expect(s.range(99, 101)).toEqual({ priceRange: { minValue: 95, maxValue: 105 } });
    s.ol.set('SPY', priceLines([stop({ stop_price: 96 })], 'SPY'));
    expect(s.lines.map((l) => l.opts.price)).toEqual([96]);
    s.ol.set('QQQ', []);
    expect(s.lines).toEqual([]);
    expect(s.range(99, 101)).toEqual({ priceRange: { minValue: 99, maxValue: 101 } });
  });

  it('drags a stop line to a confirmation; the chart is still while dragging', () => {
    const s = setup();
    s.ol.set('SPY', priceLines([stop(), tp], 'SPY'));
    s.fire('pointermove', 95.01);
    expect(s.classes.has('over-line')).toBe(true);
    // a press on the take-profit line is the chart's (not draggable)
    s.fire('pointerdown', 105);
    expect(s.prevented).toEqual([]);
    s.fire('pointerdown', 95);
    expect(s.prevented).toEqual(['pointerdown']);
    expect(s.chartOpts.at(-1)).toEqual({ handleScroll: false, handleScale: false });
    s.fire('pointermove', 96.234);
    expect(s.lines[0].opts).toMatchObject({ price: 96.23, title: 'STP #7 → 96.23' });
    s.fire('pointerup', 96.5);
    expect(s.chartOpts.at(-1)).toEqual({ handleScroll: true, handleScale: true });
    expect(stopMove.value).toEqual({ id: 7, symbol: 'SPY', from: 95, to: 96.23 });
    // a refresh while the confirmation is open keeps the line where it was dropped
    s.ol.set('SPY', priceLines([stop(), tp], 'SPY'));
    expect(s.lines[0].opts.price).toBe(96.23);
    // "Keep": back to the order's price
    stopMove.value = null;
    s.ol.release(7);
    expect(s.lines[0].opts).toMatchObject({ price: 95, title: 'STP #7' });
  });

  it('a drop where it started, or a cancelled pointer, asks nothing', () => {
    const s = setup();
    s.ol.set('SPY', priceLines([stop()], 'SPY'));
    s.fire('pointerdown', 95);
    s.fire('pointerup', 95);
    expect(stopMove.value).toBeNull();
    s.fire('pointerdown', 95);
    s.fire('pointermove', 97);
    s.handlers.get('pointercancel')!({});
    expect(stopMove.value).toBeNull();
    expect(s.lines[0].opts.price).toBe(95);
    expect(s.chartOpts.at(-1)).toEqual({ handleScroll: true, handleScale: true });
  });

  it('a confirmed move is sent once and held at its new price until the row shows it', async () => {
    const calls: [number, number][] = [];
    setBackend({ moveStop: async (id: number, p: number) => (calls.push([id, p]), { id, status: 'working', stop_price: 95, replace_stop_price: p }), trades: async () => [] } as unknown as DataBackend);
    const s = setup();
    s.ol.set('SPY', priceLines([stop()], 'SPY'));
    expect(await moveStop(7, 96.5)).toMatchObject({ replace_stop_price: 96.5 });
    expect(calls).toEqual([[7, 96.5]]);
    s.ol.hold(7, 95, 96.5);
    s.ol.set('SPY', priceLines([stop()], 'SPY'));
    expect(s.lines[0].opts).toMatchObject({ price: 96.5, title: 'STP #7 → 96.50' });
    // the executor replaced the order: the row's stop is the line's
    s.ol.set('SPY', priceLines([stop({ stop_price: 96.5 })], 'SPY'));
    expect(s.lines[0].opts).toMatchObject({ price: 96.5, title: 'STP #7' });
    // a move the executor refused shows the old stop again once the hold ends
    s.ol.hold(7, 96.5, 99);
    s.tick(16_000);
    s.ol.set('SPY', priceLines([stop({ stop_price: 96.5 })], 'SPY'));
    expect(s.lines[0].opts.price).toBe(96.5);
  });
});
