// Orders as the blotter and the chart show them (no DOM): a bracket's legs nested under their
// entry, the price column of every order type, the broker's word for a leg that waits, and
// the chart's price lines of working stops and take-profits.
import type { Trade } from '../api/types';

function num(x: number | string | null | undefined): number | null {
  if (x == null || x === '') return null;
  const n = typeof x === 'number' ? x : Number(x);
  return Number.isFinite(n) ? n : null;
}

export interface OrderRow {
  order: Trade;
  /** 0: a single order or an entry; 1: a leg under its entry */
  depth: 0 | 1;
  /** a leg whose entry is not in the list (e.g. the entry is final, the filter is "open") */
  orphan: boolean;
}

const LEG_ORDER: Record<string, number> = { take_profit: 0, stop_loss: 1 };

/** `list` (newest first) with each leg moved under its entry, take-profit then stop-loss;
 * legs whose entry is not listed stay where they are, flagged `orphan`. */
export function nestOrders(list: readonly Trade[]): OrderRow[] {
  const ids = new Set(list.map((o) => o.id));
  const legs = new Map<number, Trade[]>();
  for (const o of list) {
    if (o.parent_id != null && ids.has(o.parent_id)) {
      const l = legs.get(o.parent_id) ?? [];
      l.push(o);
      legs.set(o.parent_id, l);
    }
  }
  const out: OrderRow[] = [];
  for (const o of list) {
    if (o.parent_id != null && ids.has(o.parent_id)) continue;
    out.push({ order: o, depth: o.parent_id != null ? 1 : 0, orphan: o.parent_id != null });
    const mine = legs.get(o.id);
    if (mine) {
      mine.sort((a, b) => (LEG_ORDER[a.leg ?? ''] ?? 2) - (LEG_ORDER[b.leg ?? ''] ?? 2) || a.id - b.id);
      for (const l of mine) out.push({ order: l, depth: 1, orphan: false });
    }
  }
  return out;
}

export function legLabel(o: Trade): string {
  switch (o.leg) {
    case 'take_profit':
      return 'TP';
    case 'stop_loss':
      return 'SL';
    case 'entry':
      return 'bracket';
    default:
      return '';
  }
}

const f2 = (x: number | string | null | undefined): string => {
  const n = num(x);
  return n == null ? '—' : n.toFixed(2);
};

/** The blotter's price column: `MKT`, the limit, `STP 95.00`, `STP 95.00 LMT 94.90`,
 * `TRAIL 2% (98.10)` with the broker's current stop once known. */
export function priceText(o: Trade): string {
  switch (o.order_type) {
    case 'MARKET':
      return 'MKT';
    case 'STOP':
      return `STP ${f2(o.stop_price)}`;
    case 'STOP_LIMIT':
      return `STP ${f2(o.stop_price)} LMT ${f2(o.limit_price)}`;
    case 'TRAILING_STOP': {
      const off = num(o.trail_offset);
      const dist = o.trail_type === 'PERCENT' ? `${off ?? '—'}%` : `$${f2(o.trail_offset)}`;
      return `TRAIL ${dist}${num(o.stop_price) != null ? ` (${f2(o.stop_price)})` : ''}`;
    }
    default:
      return f2(o.limit_price);
  }
}

const BROKER_WORDS: Record<string, string> = {
  AWAITING_PARENT_ORDER: 'awaiting parent',
  AWAITING_CONDITION: 'awaiting condition',
  AWAITING_STOP_CONDITION: 'awaiting stop',
  PENDING_ACTIVATION: 'pending activation',
  AWAITING_MANUAL_REVIEW: 'manual review',
};

/** What the broker says beyond our status word, when it says more (a leg waiting for its
 * entry: "awaiting parent"); '' when it adds nothing. */
export function brokerHint(o: Trade): string {
  const b = o.broker_status;
  if (!b) return '';
  if (BROKER_WORDS[b]) return BROKER_WORDS[b];
  const plain = b.toLowerCase().replace(/_/g, ' ');
  return plain === o.status.replace(/_/g, ' ') || (b === 'WORKING' && o.status === 'working') || (b === 'CANCELED' && o.status === 'cancelled') ? '' : plain;
}

export type LineKind = 'stop' | 'stop_limit' | 'trailing' | 'take_profit';

export interface PriceLineSpec {
  id: number;
  price: number;
  kind: LineKind;
  /** a STOP / STOP_LIMIT row that is working: its trigger can be dragged (a replace) */
  draggable: boolean;
  title: string;
  buy: boolean;
}

/** The price lines of `symbol`'s working stops and take-profits: STOP and STOP_LIMIT at their
 * trigger (draggable), a trailing stop at the broker's current stop (not draggable: it moves
 * by itself), a bracket's take-profit leg at its limit. */
export function priceLines(list: readonly Trade[], symbol: string): PriceLineSpec[] {
  const out: PriceLineSpec[] = [];
  for (const o of list) {
    if (o.symbol !== symbol || o.status !== 'working') continue;
    const buy = o.instruction.startsWith('BUY');
    const tag = o.leg === 'stop_loss' ? 'SL' : o.leg === 'take_profit' ? 'TP' : '';
    const stop = num(o.stop_price);
    if ((o.order_type === 'STOP' || o.order_type === 'STOP_LIMIT') && stop != null) {
      out.push({ id: o.id, price: stop, kind: o.order_type === 'STOP' ? 'stop' : 'stop_limit', draggable: true, title: `${tag || 'STP'} #${o.id}`, buy });
    } else if (o.order_type === 'TRAILING_STOP' && stop != null) {
      out.push({ id: o.id, price: stop, kind: 'trailing', draggable: false, title: `TRAIL #${o.id}`, buy });
    } else if (o.leg === 'take_profit' && num(o.limit_price) != null) {
      out.push({ id: o.id, price: num(o.limit_price)!, kind: 'take_profit', draggable: false, title: `TP #${o.id}`, buy });
    }
  }
  return out;
}

/** The draggable line nearest to `y` (pixels from the pane's top) within `tolerance`
 * pixels, or null; `toY` is the series' priceToCoordinate. */
export function lineAt(y: number, lines: readonly PriceLineSpec[], toY: (price: number) => number | null, tolerance = 6): PriceLineSpec | null {
  let best: PriceLineSpec | null = null;
  let dist = tolerance;
  for (const l of lines) {
    if (!l.draggable) continue;
    const ly = toY(l.price);
    if (ly == null) continue;
    const d = Math.abs(ly - y);
    if (d <= dist) {
      best = l;
      dist = d;
    }
  }
  return best;
}

/** The price a line dragged to `y` stands for: the series' coordinateToPrice, on the tick,
 * above 0; null off the scale. */
export function dragPrice(y: number, toPrice: (y: number) => number | null, tick: number): number | null {
  const p = toPrice(y);
  if (p == null || !Number.isFinite(p)) return null;
  const r = Number((Math.round(p / tick) * tick).toFixed(4));
  return r > 0 ? r : null;
}
