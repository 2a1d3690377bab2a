// The ticket's order logic (no DOM): which inputs an order type shows, what is missing, and
// the request it becomes, with attached exits given as an offset from the entry converted to
// prices here, before anything is sent (docs/order-types.md, "Gateway and dashboard").
import type { Instruction, OrderType, StopTrigger, TradeRequest, TrailType } from '../api/types';
import { isBuy } from './pnl';
import { roundToTick, tickSize } from './ticks';

/** An attached exit: off, or a price, or a distance from the entry price (dollars). */
export interface ExitInput {
  on: boolean;
  mode: 'price' | 'offset';
  value: number | null;
}

export interface OrderInput {
  symbol: string;
  asset_type: 'EQUITY' | 'OPTION';
  instruction: Instruction;
  quantity: number;
  order_type: OrderType;
  limit_price: number | null;
  stop_price: number | null;
  trail_type: TrailType;
  trail_offset: number | null;
  /** null: the broker's default (LAST) */
  stop_trigger: StopTrigger | null;
  take_profit: ExitInput;
  stop_loss: ExitInput;
}

export interface RefQuote {
  bid: number | null;
  ask: number | null;
  last: number | null;
}

export const NO_EXIT: ExitInput = { on: false, mode: 'price', value: null };

/** Instructions a bracket's entry may have: they open a position. */
const OPENING: ReadonlySet<string> = new Set(['BUY', 'BUY_TO_OPEN', 'SELL_TO_OPEN']);

export interface Fields {
  limit: boolean;
  stop: boolean;
  trail: boolean;
  trigger: boolean;
  /** "attach take-profit / stop-loss" is offered */
  exits: boolean;
}

/** The inputs `t`'s order type takes. */
export function fields(t: Pick<OrderInput, 'order_type' | 'instruction'>): Fields {
  const k = t.order_type;
  return {
    limit: k === 'LIMIT' || k === 'STOP_LIMIT',
    stop: k === 'STOP' || k === 'STOP_LIMIT',
    trail: k === 'TRAILING_STOP',
    trigger: k === 'STOP' || k === 'STOP_LIMIT' || k === 'TRAILING_STOP',
    exits: (k === 'MARKET' || k === 'LIMIT') && OPENING.has(t.instruction),
  };
}

function tick(price: number, assetType: string): number {
  return tickSize(price, assetType);
}
function onTick(price: number, assetType: string): number {
  return roundToTick(price, tick(price, assetType));
}

/** The price the entry is expected at: its limit, else the touch on its side (ask for a
 * buy, bid for a sell, last if missing), as the risk rules reference it. */
export function entryPrice(t: OrderInput, q: RefQuote): number | null {
  if (t.order_type === 'LIMIT' || t.order_type === 'STOP_LIMIT') return t.limit_price;
  if (t.order_type === 'STOP') return t.stop_price;
  return isBuy(t.instruction) ? (q.ask ?? q.last) : (q.bid ?? q.last);
}

/** An exit's price: as given, or the entry price ± the offset, on the side that makes it a
 * take-profit or a stop-loss (long: take-profit above, stop-loss below; short the reverse),
 * rounded to the tick. null when it cannot be known (no entry price, no value). */
export function exitPrice(kind: 'take_profit' | 'stop_loss', t: OrderInput, q: RefQuote): number | null {
  const x = kind === 'take_profit' ? t.take_profit : t.stop_loss;
  if (!x.on || x.value == null || !Number.isFinite(x.value) || x.value <= 0) return null;
  if (x.mode === 'price') return onTick(x.value, t.asset_type);
  const entry = entryPrice(t, q);
  if (entry == null) return null;
  const long = isBuy(t.instruction);
  const up = kind === 'take_profit' ? long : !long;
  const p = up ? entry + x.value : entry - x.value;
  return p > 0 ? onTick(p, t.asset_type) : null;
}

const pos = (x: number | null): x is number => x != null && Number.isFinite(x) && x > 0;

/** What keeps `t` from being previewed (empty: it can be). Shape only: the risk checks
 * (sides of the market, collars, trail bounds, bracket sides) answer in the preview. */
export function problems(t: OrderInput, q: RefQuote): string[] {
  const out: string[] = [];
  const f = fields(t);
  if (!t.symbol.trim()) out.push('symbol missing');
  if (!(t.quantity > 0) || !Number.isInteger(t.quantity)) out.push('quantity must be a whole number above 0');
  if (f.limit && !pos(t.limit_price)) out.push('limit price missing');
  if (f.stop && !pos(t.stop_price)) out.push('stop price missing');
  if (f.trail) {
    if (!pos(t.trail_offset)) out.push('trail amount missing');
    else if (t.trail_type === 'PERCENT' && t.trail_offset >= 100) out.push('a trail in percent is below 100');
  }
  if (f.exits) {
    for (const kind of ['take_profit', 'stop_loss'] as const) {
      const x = kind === 'take_profit' ? t.take_profit : t.stop_loss;
      if (!x.on) continue;
      const name = kind === 'take_profit' ? 'take-profit' : 'stop-loss';
      if (!pos(x.value)) out.push(`${name} ${x.mode === 'offset' ? 'offset' : 'price'} missing`);
      else if (exitPrice(kind, t, q) == null) out.push(`${name}: no entry price to offset from (no quote yet)`);
    }
  }
  return out;
}

/** The request `t` becomes: only the fields its type takes, prices on their tick, exits as
 * prices (offsets converted with the quote `q`). Call it once, at preview: that request is
 * what gets confirmed and sent. */
export function toRequest(t: OrderInput, q: RefQuote = { bid: null, ask: null, last: null }): TradeRequest {
  const f = fields(t);
  const px = (p: number | null) => (p != null && Number.isFinite(p) ? onTick(p, t.asset_type) : null);
  const req: TradeRequest = {
    symbol: t.symbol,
    asset_type: t.asset_type,
    instruction: t.instruction,
    quantity: t.quantity,
    order_type: t.order_type,
    limit_price: f.limit ? px(t.limit_price) : null,
    duration: 'DAY',
  };
  if (f.stop) req.stop_price = px(t.stop_price);
  if (f.trail) {
    req.trail_type = t.trail_type;
    // a dollar trail is a price distance (its tick); a percent keeps two decimals
    req.trail_offset = t.trail_offset == null ? null : t.trail_type === 'VALUE' ? px(t.trail_offset) : Number(t.trail_offset.toFixed(2));
  }
  if (f.trigger && t.stop_trigger) req.stop_trigger = t.stop_trigger;
  if (f.exits) {
    const tp = exitPrice('take_profit', t, q);
    const sl = exitPrice('stop_loss', t, q);
    if (tp != null) req.take_profit_price = tp;
    if (sl != null) req.stop_loss_price = sl;
  }
  return req;
}

/** The notional the ticket shows before the preview answers: the stop for a stop order
 * (the limit when it is further from the market, as the risk rules count it). */
export function notionalPrice(t: OrderInput, q: RefQuote): number | null {
  if (t.order_type === 'STOP_LIMIT') {
    const buy = isBuy(t.instruction);
    if (t.stop_price == null || t.limit_price == null) return t.stop_price ?? t.limit_price;
    return buy ? Math.max(t.stop_price, t.limit_price) : Math.min(t.stop_price, t.limit_price);
  }
  if (t.order_type === 'TRAILING_STOP') return isBuy(t.instruction) ? (q.ask ?? q.last) : (q.bid ?? q.last);
  return entryPrice(t, q);
}

/** One line for the confirmation: what is about to be sent. */
export function describe(req: TradeRequest): string {
  const p = (x: number | null | undefined) => (x == null ? '—' : x.toFixed(2));
  let what: string;
  switch (req.order_type) {
    case 'LIMIT':
      what = `@ ${p(req.limit_price)} LIMIT`;
      break;
    case 'STOP':
      what = `STOP ${p(req.stop_price)}`;
      break;
    case 'STOP_LIMIT':
      what = `STOP ${p(req.stop_price)} LIMIT ${p(req.limit_price)}`;
      break;
    case 'TRAILING_STOP':
      what = `TRAILING ${req.trail_type === 'PERCENT' ? `${req.trail_offset}%` : `$${p(req.trail_offset)}`}`;
      break;
    default:
      what = 'MARKET';
  }
  if (req.stop_trigger && req.stop_trigger !== 'LAST') what += ` on ${req.stop_trigger}`;
  const exits = [req.take_profit_price != null && `TP ${p(req.take_profit_price)}`, req.stop_loss_price != null && `SL ${p(req.stop_loss_price)}`].filter(Boolean);
  return `${req.instruction} ${req.quantity} ${req.symbol} ${what}${exits.length ? ` · ${exits.join(' · ')}` : ''} DAY`;
}
