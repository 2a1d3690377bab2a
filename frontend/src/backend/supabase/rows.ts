// Table rows (PostgREST JSON) -> the gateway's shapes the stores use. Pure functions, no
// network: unit-tested in test/supabase-rows.test.ts.
//
// Columns (migrations/0002_market_data.sql, 0003_trading.sql, 0060_storage_layout.sql):
//   equity_data(ticker, timestamp, price, volume, bid, ask, cum_volume)
//   indicators(ticker, timestamp, sma9, vwap, ema9)
//   option_prices(ticker, timestamp, underlying, option_type, strike_price, expiration_date,
//                 last_price, bid, ask, delta, gamma, theta, vega, rho, implied_volatility,
//                 volume, open_interest, underlying_price)
//   bars_1m(ticker, bucket, open, high, low, close, volume, vwap)   vwap = the bar's own
//   trades(...), trade_events(...), positions(...), account_balances(...)
import { bucketStart, type Candle, type Tf } from '../../lib/candles';
import { CLOSE_MIN, OPEN_MIN, nyMinute } from '../../lib/markethours';
import { nyDate, nyMidnight } from '../../lib/nytime';
import { multiplier, realizedAvgCost, round2, type Fill } from '../../lib/pnl';
import type { CommittedMessage, EquityItem, OptionItem } from '../../lib/feed';
import type { CandlesData, ChainData, PnlData, TradeData, TradeDetailData, TradeUpdate } from '../types';
import type { Row } from './client';

type Contract = ChainData['contracts'][number];
type TradeEvent = TradeDetailData['events'][number];

/** Epoch ms of a timestamptz as PostgREST renders it (`2026-03-10T14:30:00.123456+00:00`). */
export function parseTs(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return NaN;
  // Date.parse is only specified for up to milliseconds.
  return Date.parse(v.replace(/(\.\d{3})\d+/, '$1').replace(' ', 'T'));
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function num(v: unknown): number | null {
  if (v == null || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

const str = (v: unknown): string | null => (v == null ? null : String(v));

// -- candles -------------------------------------------------------------------------------

export interface SecondRow {
  ts: number;
  price: number;
  volume: number;
}

export function secondRow(r: Row): SecondRow | null {
  const ts = parseTs(r.timestamp);
  const price = num(r.price);
  if (!Number.isFinite(ts) || price == null) return null;
  return { ts, price, volume: num(r.volume) ?? 0 };
}

function emptyCandles(ticker: string, tf: Tf, session: string | null): CandlesData {
  return { ticker, tf, session, t: [], o: [], h: [], l: [], c: [], v: [], sma9: [], vwap: [] };
}

/** 1-second candles as the gateway returns them: one per second with trading, open = high =
 * low = close = the second's price; sma9/vwap of the indicators row of the same second. */
export function secondsToCandles(ticker: string, session: string | null, seconds: Row[], indicators: Row[]): CandlesData {
  const ind = new Map<number, Row>();
  for (const r of indicators) ind.set(parseTs(r.timestamp), r);
  const out = emptyCandles(ticker, '1s', session);
  const rows = seconds.map(secondRow).filter((r): r is SecondRow => r != null);
  rows.sort((a, b) => a.ts - b.ts);
  for (const r of rows) {
    const i = ind.get(r.ts);
    out.t.push(r.ts);
    out.o.push(r.price);
    out.h.push(r.price);
    out.l.push(r.price);
    out.c.push(r.price);
    out.v.push(r.volume);
    out.sma9.push(num(i?.sma9));
    out.vwap.push(num(i?.vwap));
  }
  return out;
}

/** Candles of `tf` built from per-second rows (any order; a second seen twice counts once,
 * the later row wins, as the writer's re-published open second replaces the earlier one). */
export function buildCandles(rows: SecondRow[], tf: Tf): Candle[] {
  const bySec = new Map<number, SecondRow>();
  for (const r of rows) bySec.set(Math.floor(r.ts / 1000) * 1000, r);
  const secs = [...bySec.entries()].sort((a, b) => a[0] - b[0]);
  const out: Candle[] = [];
  let cur: Candle | null = null;
  for (const [sec, r] of secs) {
    const t = bucketStart(sec, tf);
    if (!cur || cur.t !== t) {
      cur = { t, o: r.price, h: r.price, l: r.price, c: r.price, v: r.volume };
      out.push(cur);
      continue;
    }
    if (r.price > cur.h) cur.h = r.price;
    if (r.price < cur.l) cur.l = r.price;
    cur.c = r.price;
    cur.v += r.volume;
  }
  return out;
}

export function candlesToData(ticker: string, tf: Tf, session: string | null, cs: Candle[], sma9?: (number | null)[], vwap?: (number | null)[]): CandlesData {
  const out = emptyCandles(ticker, tf, session);
  cs.forEach((c, i) => {
    out.t.push(c.t);
    out.o.push(c.o);
    out.h.push(c.h);
    out.l.push(c.l);
    out.c.push(c.c);
    out.v.push(c.v);
    out.sma9.push(sma9?.[i] ?? null);
    out.vwap.push(vwap?.[i] ?? null);
  });
  return out;
}

export interface Bar {
  t: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  /** the bar's own volume-weighted price */
  vwap: number | null;
}

export function barRow(r: Row): Bar | null {
  const t = parseTs(r.bucket);
  const o = num(r.open);
  const h = num(r.high);
  const l = num(r.low);
  const c = num(r.close);
  if (!Number.isFinite(t) || o == null || h == null || l == null || c == null) return null;
  return { t, o, h, l, c, v: num(r.volume) ?? 0, vwap: num(r.vwap) };
}

/**
 * 1-minute bars rolled up to `tf` (New York buckets; 1D = New York date), the last `limit`
 * buckets, with the SMA9 and session VWAP each bucket ends with: what the gateway reads from
 * the bucket's last `indicators` row, derived here from the bars (the per-second rows of a
 * whole session are too many to read through the API):
 *  - SMA9 = mean of the last 9 one-minute closes (INDICATOR_BAR_SECONDS = 60, the default);
 *    `prior` = closes of the bars before the first one (oldest first) so the first buckets
 *    have their value too;
 *  - VWAP = sum(bar vwap x volume) / sum(volume) of the regular-session bars (09:30-16:00
 *    New York; early closes are not known here) of the bucket's day, null before the open,
 *    the closing VWAP after the close.
 */
export function barsToCandles(ticker: string, tf: Tf, session: string | null, bars: Bar[], limit: number, prior: number[] = []): CandlesData {
  const sorted = bars.slice().sort((a, b) => a.t - b.t);
  const closes = prior.slice(-8);
  const out: Candle[] = [];
  const sma: (number | null)[] = [];
  const vw: (number | null)[] = [];
  let day = NaN;
  let pv = 0;
  let shares = 0;
  let cur: Candle | null = null;
  for (const b of sorted) {
    closes.push(b.c);
    if (closes.length > 9) closes.shift();
    const d = nyMidnight(b.t);
    if (d !== day) {
      day = d;
      pv = 0;
      shares = 0;
    }
    const m = nyMinute(b.t);
    if (m >= OPEN_MIN && m < CLOSE_MIN && b.v > 0) {
      pv += (b.vwap ?? b.c) * b.v;
      shares += b.v;
    }
    const t = bucketStart(b.t, tf);
    if (!cur || cur.t !== t) {
      cur = { t, o: b.o, h: b.h, l: b.l, c: b.c, v: b.v };
      out.push(cur);
      sma.push(null);
      vw.push(null);
    } else {
      if (b.h > cur.h) cur.h = b.h;
      if (b.l < cur.l) cur.l = b.l;
      cur.c = b.c;
      cur.v += b.v;
    }
    const i = out.length - 1;
    sma[i] = closes.length === 9 ? closes.reduce((s, x) => s + x, 0) / 9 : null;
    vw[i] = shares > 0 ? pv / shares : null;
  }
  const from = Math.max(0, out.length - limit);
  return candlesToData(ticker, tf, session, out.slice(from), sma.slice(from), vw.slice(from));
}

// -- quotes, option chain --------------------------------------------------------------------

/** Latest per contract of an underlying's rows (newest first or not), not expired by the
 * New York date of its own row, sorted by expiration, strike, type. */
export function chainFromRows(underlying: string, rows: Row[], underlyingPrice?: number | null): ChainData {
  const newest = new Map<string, Row>();
  let newestTs = -Infinity;
  let newestUnderlying: number | null = null;
  for (const r of rows) {
    const k = String(r.ticker);
    const ts = parseTs(r.timestamp);
    const prev = newest.get(k);
    if (!prev || ts > parseTs(prev.timestamp)) newest.set(k, r);
    if (ts > newestTs && num(r.underlying_price) != null) {
      newestTs = ts;
      newestUnderlying = num(r.underlying_price);
    }
  }
  const contracts: Contract[] = [];
  for (const r of newest.values()) {
    const ts = parseTs(r.timestamp);
    const exp = String(r.expiration_date).slice(0, 10);
    if (exp < nyDate(ts)) continue;
    contracts.push({
      ticker: String(r.ticker),
      ts,
      option_type: r.option_type === 'PUT' ? 'PUT' : 'CALL',
      strike_price: num(r.strike_price) ?? 0,
      expiration_date: exp,
      last_price: num(r.last_price),
      bid: num(r.bid),
      ask: num(r.ask),
      delta: num(r.delta),
      gamma: num(r.gamma),
      theta: num(r.theta),
      vega: num(r.vega),
      implied_volatility: num(r.implied_volatility),
      open_interest: num(r.open_interest),
      underlying_price: num(r.underlying_price),
    });
  }
  contracts.sort((a, b) => (a.expiration_date < b.expiration_date ? -1 : a.expiration_date > b.expiration_date ? 1 : a.strike_price - b.strike_price || (a.option_type < b.option_type ? -1 : 1)));
  const expirations = [...new Set(contracts.map((c) => c.expiration_date))].sort();
  return { underlying, underlying_price: underlyingPrice ?? newestUnderlying, expirations, contracts };
}

// -- trades ------------------------------------------------------------------------------------

export const TRADE_COLUMNS =
  'id,created_at,symbol,asset_type,instruction,quantity,order_type,limit_price,duration,status,broker_order_id,filled_quantity,avg_fill_price,error,updated_at,' +
  'stop_price,trail_type,trail_offset,stop_trigger,take_profit_price,stop_loss_price,parent_id,leg,broker_status';
const ORDER_TYPES = new Set(['MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT', 'TRAILING_STOP']);
export const OPEN_STATUSES = ['pending', 'submitting', 'working', 'cancel_requested', 'unknown'] as const;

export function tradeFromRow(r: Row): TradeData {
  return {
    id: Number(r.id),
    created_at: String(r.created_at ?? ''),
    symbol: String(r.symbol ?? ''),
    asset_type: (r.asset_type === 'OPTION' ? 'OPTION' : 'EQUITY') as TradeData['asset_type'],
    instruction: String(r.instruction) as TradeData['instruction'],
    quantity: num(r.quantity) ?? 0,
    order_type: (ORDER_TYPES.has(String(r.order_type)) ? r.order_type : 'LIMIT') as TradeData['order_type'],
    limit_price: num(r.limit_price),
    duration: String(r.duration ?? 'DAY'),
    status: String(r.status) as TradeData['status'],
    broker_order_id: str(r.broker_order_id),
    filled_quantity: num(r.filled_quantity) ?? 0,
    avg_fill_price: num(r.avg_fill_price),
    error: str(r.error),
    updated_at: String(r.updated_at ?? r.created_at ?? ''),
    stop_price: num(r.stop_price),
    trail_type: str(r.trail_type),
    trail_offset: num(r.trail_offset),
    stop_trigger: str(r.stop_trigger),
    take_profit_price: num(r.take_profit_price),
    stop_loss_price: num(r.stop_loss_price),
    parent_id: r.parent_id == null ? null : Number(r.parent_id),
    leg: String(r.leg ?? 'single'),
    broker_status: str(r.broker_status),
  } as TradeData;
}

export function eventFromRow(r: Row): TradeEvent {
  return {
    id: Number(r.id),
    trade_id: r.trade_id == null ? undefined : Number(r.trade_id),
    at: String(r.at ?? ''),
    from_status: str(r.from_status),
    to_status: String(r.to_status ?? ''),
    reason: String(r.reason ?? ''),
    detail: (r.detail ?? {}) as Record<string, unknown>,
  } as unknown as TradeEvent;
}

/** The `trade` event of `streamdesk:trades:<user id>`:
 * `{id, symbol, status, filled_quantity, avg_fill_price, error, updated_at}`. */
export function tradeUpdateFromPayload(p: unknown): TradeUpdate | null {
  if (!p || typeof p !== 'object') return null;
  const r = p as Row;
  const id = Number(r.id);
  if (!Number.isSafeInteger(id) || id <= 0 || typeof r.status !== 'string') return null;
  return {
    id,
    status: r.status,
    symbol: r.symbol == null ? undefined : String(r.symbol),
    filled_quantity: num(r.filled_quantity),
    avg_fill_price: num(r.avg_fill_price),
    error: str(r.error),
    updated_at: str(r.updated_at),
  };
}

// -- live ----------------------------------------------------------------------------------------

/** The `flush` event of `streamdesk:market`: a committed message v1 plus `degrade`; anything
 * else is dropped (a future version is not guessed at). */
export function committedFromPayload(p: unknown): CommittedMessage | null {
  if (!p || typeof p !== 'object') return null;
  const m = p as Record<string, unknown>;
  if (m.v !== 1) return null;
  if (!Array.isArray(m.equity) && !Array.isArray(m.options)) return null;
  const equity = (Array.isArray(m.equity) ? m.equity : []).filter((e): e is EquityItem => !!e && typeof e === 'object' && typeof (e as EquityItem).ticker === 'string' && typeof (e as EquityItem).ts === 'number');
  const options = (Array.isArray(m.options) ? m.options : []).filter((o): o is OptionItem => !!o && typeof o === 'object' && typeof (o as OptionItem).ticker === 'string' && typeof (o as OptionItem).ts === 'number');
  const degrade = typeof m.degrade === 'number' && Number.isFinite(m.degrade) ? m.degrade : 0;
  return {
    ...(m as unknown as CommittedMessage),
    seq: typeof m.seq === 'number' ? m.seq : NaN,
    committed_at: typeof m.committed_at === 'number' ? m.committed_at : NaN,
    equity,
    options,
    degrade,
  };
}

// -- positions and P&L --------------------------------------------------------------------------

export interface OwnFill extends Fill {
  /** trades.id */
  id: number;
  symbol: string;
  asset_type: string;
  at: number;
}

/**
 * Positions summed per symbol (several accounts), marked at `marks`, the balances summed, and
 * the P&L realized today by `fills` (the signed-in user's own orders: RLS shows no others) by
 * average cost, from the position held before them at the synced average price.
 */
export function pnlFromRows(positions: Row[], balances: Row[], marks: ReadonlyMap<string, number>, fills: OwnFill[], sinceMs: number): PnlData {
  const by = new Map<string, { symbol: string; asset_type: string; qty: number; cost: number; costQty: number; day: number; synced: number }>();
  for (const r of positions) {
    const sym = String(r.symbol);
    const q = num(r.quantity) ?? 0;
    const avg = num(r.average_price);
    const day = num(r.day_pnl);
    let p = by.get(sym);
    if (!p) by.set(sym, (p = { symbol: sym, asset_type: String(r.asset_type ?? 'EQUITY'), qty: 0, cost: 0, costQty: 0, day: 0, synced: 0 }));
    p.qty += q;
    if (avg != null) {
      p.cost += q * avg;
      p.costQty += q;
    }
    if (day != null) {
      p.day += day;
      p.synced++;
    }
  }
  let unrealTotal = 0;
  let dayTotal = 0;
  const out: PnlData['positions'] = [];
  for (const p of [...by.values()].sort((a, b) => (a.symbol < b.symbol ? -1 : 1))) {
    const avg = p.costQty !== 0 ? p.cost / p.costQty : null;
    const mark = marks.get(p.symbol) ?? null;
    const m = multiplier(p.asset_type);
    const unreal = mark != null && avg != null ? round2((mark - avg) * p.qty * m) : null;
    const day = p.synced ? round2(p.day) : null;
    unrealTotal += unreal ?? 0;
    dayTotal += day ?? 0;
    out.push({
      symbol: p.symbol,
      asset_type: p.asset_type,
      quantity: p.qty,
      average_price: avg,
      mark,
      market_value: mark != null ? round2(mark * p.qty * m) : null,
      unrealized: unreal,
      day_pnl: day,
    });
  }
  let realized = 0;
  const today = fills.filter((f) => f.at >= sinceMs).sort((a, b) => a.at - b.at);
  for (const sym of new Set(today.map((f) => f.symbol))) {
    const mine = today.filter((f) => f.symbol === sym);
    const held = by.get(sym);
    const net = mine.reduce((s, f) => s + (f.instruction.startsWith('BUY') ? f.quantity : -f.quantity), 0);
    const openingQty = (held?.qty ?? 0) - net;
    const openingAvg = held && held.costQty !== 0 ? held.cost / held.costQty : null;
    // The opening position enters as one fill at its average price (it realizes nothing).
    const seq: Fill[] = openingQty !== 0 && openingAvg != null ? [{ instruction: openingQty > 0 ? 'BUY' : 'SELL', quantity: Math.abs(openingQty), price: openingAvg }] : [];
    realized += realizedAvgCost([...seq, ...mine], multiplier(mine[0].asset_type)).realized;
  }
  let balancesOut: PnlData['balances'] = null;
  if (balances.length) {
    const sum = (k: string) => {
      const xs = balances.map((b) => num(b[k])).filter((x): x is number => x != null);
      return xs.length ? round2(xs.reduce((s, x) => s + x, 0)) : null;
    };
    balancesOut = { cash: sum('cash'), buying_power: sum('buying_power'), liquidation_value: sum('liquidation_value') };
  }
  return { positions: out, realized_today: round2(realized), unrealized_total: round2(unrealTotal), day_pnl_total: round2(dayTotal), balances: balancesOut };
}
