// P&L arithmetic (no DOM). Options are quoted per share; one contract is 100 shares.
export const OPTION_MULTIPLIER = 100;

export interface PositionIn {
  symbol: string;
  asset_type: string;
  quantity: number;
  average_price: number | null;
  mark: number | null;
  market_value?: number | null;
  unrealized?: number | null;
  day_pnl?: number | null;
}

export interface PositionView extends PositionIn {
  mark: number | null;
  market_value: number | null;
  unrealized: number | null;
  day_pnl: number | null;
}

export function multiplier(assetType: string): number {
  return assetType === 'OPTION' ? OPTION_MULTIPLIER : 1;
}

export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Reprice a server position with a newer live mark. Day P&L moves by the same price change
 * as unrealized (the server's figure already holds the session's start). */
export function reprice(p: PositionIn, liveMark: number | null | undefined): PositionView {
  const m = multiplier(p.asset_type);
  const mark = liveMark ?? p.mark;
  if (mark == null) {
    return { ...p, mark: null, market_value: p.market_value ?? null, unrealized: p.unrealized ?? null, day_pnl: p.day_pnl ?? null };
  }
  const mv = round2(mark * p.quantity * m);
  const unrealized = p.average_price == null ? null : round2((mark - p.average_price) * p.quantity * m);
  let day: number | null = p.day_pnl ?? null;
  if (day != null && p.mark != null) day = round2(day + (mark - p.mark) * p.quantity * m);
  return { ...p, mark, market_value: mv, unrealized, day_pnl: day };
}

export interface Totals {
  market_value: number;
  unrealized: number;
  day_pnl: number;
}

export function totals(ps: PositionView[]): Totals {
  let mv = 0;
  let un = 0;
  let day = 0;
  for (const p of ps) {
    mv += p.market_value ?? 0;
    un += p.unrealized ?? 0;
    day += p.day_pnl ?? 0;
  }
  return { market_value: round2(mv), unrealized: round2(un), day_pnl: round2(day) };
}

export interface Fill {
  instruction: string;
  quantity: number;
  price: number;
}

export function isBuy(instruction: string): boolean {
  return instruction === 'BUY' || instruction.startsWith('BUY_');
}

/** Realized P&L of a sequence of fills with average cost (long and short). */
export function realizedAvgCost(fills: Fill[], mult = 1): { realized: number; quantity: number; average: number } {
  let qty = 0;
  let avg = 0;
  let realized = 0;
  for (const f of fills) {
    const signed = isBuy(f.instruction) ? f.quantity : -f.quantity;
    if (qty === 0 || Math.sign(qty) === Math.sign(signed)) {
      const nq = qty + signed;
      avg = (avg * Math.abs(qty) + f.price * Math.abs(signed)) / Math.abs(nq);
      qty = nq;
      continue;
    }
    const closing = Math.min(Math.abs(signed), Math.abs(qty));
    realized += (f.price - avg) * closing * Math.sign(qty) * mult;
    const nq = qty + signed;
    if (nq === 0) avg = 0;
    else if (Math.sign(nq) !== Math.sign(qty)) avg = f.price;
    qty = nq;
  }
  return { realized: round2(realized), quantity: qty, average: avg };
}

/** Notional of an order at `price` and the buying power left after it (buys consume, sells free). */
export function orderNotional(qty: number, price: number, assetType: string): number {
  return round2(qty * price * multiplier(assetType));
}

export function buyingPowerAfter(bp: number | null, notional: number, instruction: string): number | null {
  if (bp == null) return null;
  return round2(isBuy(instruction) ? bp - notional : bp);
}

/** Change and % against the previous close. */
export function change(last: number | null, prev: number | null): { abs: number | null; pct: number | null } {
  if (last == null || prev == null || prev === 0) return { abs: null, pct: null };
  return { abs: round2(last - prev), pct: ((last - prev) / prev) * 100 };
}
