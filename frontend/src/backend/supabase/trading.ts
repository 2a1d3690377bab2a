// Orders and the account through PostgREST under row-level security (docs/supabase.md):
// an operator inserts `pending` trades for themself (request columns only), reads their own
// trades and trade_events, the positions and balances, and cancels through an RPC. Nothing
// here retries a write: an order whose answer was lost is found in the blotter, not re-sent.
import type * as T from '../../api/types';
import { BackendError, NOT_OPERATOR_MESSAGE } from '../errors';
import { nyDate, nySessionBounds } from '../../lib/nytime';
import { buyingPowerAfter, isBuy, orderNotional } from '../../lib/pnl';
import type { CancelData, FillsData, PnlData, PreviewContext, PreviewResult, StopMoveData, TradeData, TradeDetailData, TradesData } from '../types';
import type { Row, SbClient } from './client';
import type { MarketReads } from './market';
import { rows, run } from './query';
import { eventFromRow, num, OPEN_STATUSES, parseTs, pnlFromRows, TRADE_COLUMNS, tradeFromRow, type OwnFill } from './rows';

/** The columns a client may set on insert (the column grants of migrations/0004_security.sql
 * and 0090_order_types.sql; never parent_id, leg, broker_status, replace_stop_price). */
export const REQUEST_COLUMNS = [
  'symbol',
  'asset_type',
  'instruction',
  'quantity',
  'order_type',
  'limit_price',
  'duration',
  'stop_price',
  'trail_type',
  'trail_offset',
  'stop_trigger',
  'take_profit_price',
  'stop_loss_price',
  'source',
  'user_id',
] as const;

const LIMITED = new Set(['LIMIT', 'STOP_LIMIT']);
const STOPPED = new Set(['STOP', 'STOP_LIMIT']);
const STOPS = new Set(['STOP', 'STOP_LIMIT', 'TRAILING_STOP']);
const BRACKETABLE = new Set(['MARKET', 'LIMIT']);

/** The row inserted for an order: request columns only, each where its type takes it (the
 * table's CHECKs and the executor's shape rules refuse the rest); status, fills and the rest
 * are the executor's (defaults and RLS make the row `pending` and the caller's own). A
 * bracket is this one row: the executor creates its legs when it claims it. */
export function insertRow(req: T.TradeRequest, userId: string): Row {
  const k = req.order_type;
  const trailing = k === 'TRAILING_STOP';
  const bracket = BRACKETABLE.has(k);
  return {
    symbol: req.symbol.trim().toUpperCase(),
    asset_type: req.asset_type,
    instruction: req.instruction,
    quantity: req.quantity,
    order_type: k,
    limit_price: LIMITED.has(k) ? (req.limit_price ?? null) : null,
    duration: req.duration ?? 'DAY',
    stop_price: STOPPED.has(k) ? (req.stop_price ?? null) : null,
    trail_type: trailing ? (req.trail_type ?? null) : null,
    trail_offset: trailing ? (req.trail_offset ?? null) : null,
    stop_trigger: STOPS.has(k) ? (req.stop_trigger ?? null) : null,
    take_profit_price: bracket ? (req.take_profit_price ?? null) : null,
    stop_loss_price: bracket ? (req.stop_loss_price ?? null) : null,
    source: 'dashboard',
    user_id: userId,
  };
}

export const LOCAL_PREVIEW_NOTE = 'Not risk-checked here: the executor runs the risk checks when it picks the order up; a refusal shows in the orders blotter.';

/** The preview a browser can compute alone: notional and buying power after, plus what is
 * certain to be refused (not an operator, market orders off, a malformed order). */
export function localPreview(req: T.TradeRequest, ctx: PreviewContext, operator: boolean | null): PreviewResult {
  const violations: T.Violation[] = [];
  if (operator === false) violations.push({ code: 'not_operator', reason: NOT_OPERATOR_MESSAGE });
  if (!req.symbol.trim()) violations.push({ code: 'symbol', reason: 'symbol missing' });
  if (!(req.quantity > 0) || !Number.isInteger(req.quantity)) violations.push({ code: 'quantity', reason: 'quantity must be a whole number above 0' });
  if (req.order_type === 'MARKET' && !ctx.marketOrders) violations.push({ code: 'market_orders', reason: 'market orders are disabled (RISK_ALLOW_MARKET_ORDERS)' });
  const k = req.order_type;
  const pos = (x: number | null | undefined) => x != null && x > 0;
  if (LIMITED.has(k) && !pos(req.limit_price)) violations.push({ code: 'limit_price', reason: `a ${k} order needs a limit price above 0` });
  if (STOPPED.has(k) && !pos(req.stop_price)) violations.push({ code: 'stop_price', reason: `a ${k} order needs a stop price above 0` });
  if (k === 'TRAILING_STOP' && !(req.trail_type && pos(req.trail_offset))) violations.push({ code: 'trail', reason: 'a trailing stop needs a trail amount above 0' });
  const buy = isBuy(req.instruction);
  const q = ctx.quote;
  const touch = buy ? (q.ask ?? q.last) : (q.bid ?? q.last);
  // the stop's side: the one rule the browser can check with the quote it shows
  if (STOPPED.has(k) && pos(req.stop_price) && touch != null && (buy ? req.stop_price! <= touch : req.stop_price! >= touch)) {
    violations.push({ code: 'stop_side', reason: `a ${buy ? 'buy' : 'sell'} stop must be ${buy ? 'above' : 'below'} the market (${touch}): it would trigger at once` });
  }
  const entry = k === 'LIMIT' ? (req.limit_price ?? null) : touch;
  const long = buy;
  if (req.take_profit_price != null && entry != null && (long ? req.take_profit_price <= entry : req.take_profit_price >= entry)) {
    violations.push({ code: 'bracket_sides', reason: `the take-profit ${req.take_profit_price} must be ${long ? 'above' : 'below'} the entry ${entry}` });
  }
  if (req.stop_loss_price != null && entry != null && (long ? req.stop_loss_price >= entry : req.stop_loss_price <= entry)) {
    violations.push({ code: 'bracket_sides', reason: `the stop-loss ${req.stop_loss_price} must be ${long ? 'below' : 'above'} the entry ${entry}` });
  }
  let px: number | null = k === 'LIMIT' ? (req.limit_price ?? null) : touch;
  if (k === 'STOP') px = req.stop_price ?? null;
  if (k === 'STOP_LIMIT' && req.stop_price != null && req.limit_price != null) px = buy ? Math.max(req.stop_price, req.limit_price) : Math.min(req.stop_price, req.limit_price);
  const notional = px != null && req.quantity > 0 ? orderNotional(req.quantity, px, req.asset_type) : null;
  const after = notional != null ? buyingPowerAfter(ctx.buyingPower, notional, req.instruction) : null;
  return {
    ok: violations.length === 0,
    violations,
    notional,
    buying_power: ctx.buyingPower,
    buying_power_after: after,
    quote: null,
    checkedBy: 'local',
    note: LOCAL_PREVIEW_NOTE,
  };
}

export class TradingCalls {
  constructor(
    private readonly sb: SbClient,
    private readonly market: MarketReads,
    private readonly userId: () => string | null,
    private readonly now: () => number = Date.now,
  ) {}

  private uid(): string {
    const u = this.userId();
    if (!u) throw new BackendError('unauthorized', 'sign in first');
    return u;
  }

  async submit(req: T.TradeRequest): Promise<TradeData> {
    const row = insertRow(req, this.uid());
    const r = await run(this.sb.from('trades').insert(row).select(TRADE_COLUMNS).single(), { trading: true, what: 'order' });
    return tradeFromRow(r);
  }

  async cancel(id: number): Promise<CancelData> {
    const r = (await run(this.sb.rpc('streamdesk_cancel_trade', { p_trade_id: id }), { trading: true } /* the blotter names the order */)) as Row | null;
    return { id: Number(r?.id ?? id), status: String(r?.status ?? 'cancel_requested') };
  }

  /** streamdesk_replace_stop (migrations/0090_order_types.sql): own working STOP /
   * STOP_LIMIT rows, legs included; 42501 / P0002 / PT409 / 22023 as BackendErrors. */
  async moveStop(id: number, stopPrice: number): Promise<StopMoveData> {
    const r = (await run(this.sb.rpc('streamdesk_replace_stop', { p_trade_id: id, p_stop_price: stopPrice }), { trading: true, what: `move stop #${id}` })) as Row | null;
    return { id: Number(r?.id ?? id), status: String(r?.status ?? 'working'), stop_price: null, replace_stop_price: num(r?.replace_stop_price) ?? stopPrice };
  }

  async trades(filter: 'open' | 'all', limit: number): Promise<TradesData> {
    let q = this.sb.from('trades').select(TRADE_COLUMNS);
    if (filter === 'open') q = q.in('status', OPEN_STATUSES);
    const r = await rows(q.order('id', { ascending: false }).limit(limit), { what: 'orders' });
    return r.map(tradeFromRow);
  }

  /** One order with its history: a bracket entry's legs' events too (id order, each with
   * its trade_id), as the gateway answers. */
  async trade(id: number): Promise<TradeDetailData> {
    const ctx = { what: `order #${id}` };
    const [t, legs] = await Promise.all([
      run(this.sb.from('trades').select(TRADE_COLUMNS).eq('id', id).maybeSingle(), ctx),
      rows(this.sb.from('trades').select('id').eq('parent_id', id), ctx),
    ]);
    if (!t) throw new BackendError('not_found', `order #${id} not found`);
    const ids = [id, ...legs.map((l) => Number(l.id))];
    const ev = await rows(this.sb.from('trade_events').select('id,trade_id,at,from_status,to_status,reason,detail').in('trade_id', ids).order('id', { ascending: true }), ctx);
    return { ...tradeFromRow(t), events: ev.map(eventFromRow) } as TradeDetailData;
  }

  /** The user's own orders with a fill in [lo, hi), each timed by its last fill event
   * (the executor records "partial fill" and the final "filled"), else its updated_at. */
  async ownFills(lo: number, hi: number, symbol?: string): Promise<OwnFill[]> {
    let q = this.sb.from('trades').select('id,symbol,asset_type,instruction,filled_quantity,avg_fill_price,updated_at').gt('filled_quantity', 0).not('avg_fill_price', 'is', null).lt('created_at', new Date(hi).toISOString()).gte('updated_at', new Date(lo).toISOString());
    if (symbol) q = q.eq('symbol', symbol);
    const ts = await rows(q.order('id', { ascending: true }).limit(1000), { what: 'fills' });
    if (!ts.length) return [];
    const ev = await rows(
      this.sb
        .from('trade_events')
        .select('trade_id,at')
        .in(
          'trade_id',
          ts.map((t) => t.id),
        )
        .or('to_status.eq.filled,reason.eq.partial fill'),
      { what: 'fill events' },
    );
    const at = new Map<number, number>();
    for (const e of ev) {
      const id = Number(e.trade_id);
      const t = parseTs(e.at);
      if (!(at.get(id)! >= t)) at.set(id, t);
    }
    const out: OwnFill[] = [];
    for (const t of ts) {
      const when = at.get(Number(t.id)) ?? parseTs(t.updated_at);
      const qty = num(t.filled_quantity);
      const px = num(t.avg_fill_price);
      if (qty == null || px == null || !(when >= lo && when < hi)) continue;
      out.push({ symbol: String(t.symbol), asset_type: String(t.asset_type), instruction: String(t.instruction), quantity: qty, price: px, at: when, id: Number(t.id) });
    }
    return out.sort((a, b) => a.at - b.at);
  }

  async fills(symbol: string, session: string | null): Promise<FillsData> {
    const [lo, hi] = nySessionBounds(session ?? nyDate(this.now()));
    const fs = await this.ownFills(lo, hi, symbol);
    return fs.map((f) => ({ trade_id: f.id, t: f.at, instruction: f.instruction, quantity: f.quantity, price: f.price }));
  }

  async pnl(): Promise<PnlData> {
    const ctx = { what: 'positions' };
    const [lo, hi] = nySessionBounds(nyDate(this.now()));
    const [pos, bal, fills] = await Promise.all([
      rows(this.sb.from('positions').select('symbol,asset_type,quantity,average_price,day_pnl').order('symbol'), ctx),
      rows(this.sb.from('account_balances').select('cash,buying_power,liquidation_value'), { what: 'balances' }),
      this.ownFills(lo, hi).catch(() => [] as OwnFill[]),
    ]);
    const held = [...new Map(pos.map((p) => [String(p.symbol), { symbol: String(p.symbol), asset_type: String(p.asset_type ?? 'EQUITY') }])).values()];
    const marks = await this.market.marks(held);
    return pnlFromRows(pos, bal, marks, fills, lo);
  }
}
