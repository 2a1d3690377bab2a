// Orders and the account through PostgREST under row-level security (docs/supabase.md):
// an operator inserts `pending` trades for themself (request columns only), reads their own
// trades and trade_events, the positions and balances, and cancels through an RPC. Nothing
// here retries a write: an order whose answer was lost is found in the blotter, not re-sent.
import type * as T from '../../api/types';
import { BackendError, NOT_OPERATOR_MESSAGE } from '../errors';
import { nyDate, nySessionBounds } from '../../lib/nytime';
import { buyingPowerAfter, isBuy, orderNotional } from '../../lib/pnl';
import type { CancelData, FillsData, PnlData, PreviewContext, PreviewResult, TradeData, TradeDetailData, TradesData } from '../types';
import type { Row, SbClient } from './client';
import type { MarketReads } from './market';
import { rows, run } from './query';
import { eventFromRow, num, OPEN_STATUSES, parseTs, pnlFromRows, TRADE_COLUMNS, tradeFromRow, type OwnFill } from './rows';

/** The columns a client may set on insert (the column grant of migrations/0004_security.sql). */
export const REQUEST_COLUMNS = ['symbol', 'asset_type', 'instruction', 'quantity', 'order_type', 'limit_price', 'duration', 'source', 'user_id'] as const;

/** The row inserted for an order: request columns only; status, fills and the rest are the
 * executor's (defaults and RLS make the row `pending` and the caller's own). */
export function insertRow(req: T.TradeRequest, userId: string): Row {
  return {
    symbol: req.symbol.trim().toUpperCase(),
    asset_type: req.asset_type,
    instruction: req.instruction,
    quantity: req.quantity,
    order_type: req.order_type,
    limit_price: req.order_type === 'LIMIT' ? (req.limit_price ?? null) : null,
    duration: req.duration ?? 'DAY',
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
  if (req.order_type === 'LIMIT' && !(req.limit_price != null && req.limit_price > 0)) violations.push({ code: 'limit_price', reason: 'a limit order needs a price above 0' });
  const buy = isBuy(req.instruction);
  const q = ctx.quote;
  const px = req.order_type === 'LIMIT' ? (req.limit_price ?? null) : buy ? (q.ask ?? q.last) : (q.bid ?? q.last);
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

  async trades(filter: 'open' | 'all', limit: number): Promise<TradesData> {
    let q = this.sb.from('trades').select(TRADE_COLUMNS);
    if (filter === 'open') q = q.in('status', OPEN_STATUSES);
    const r = await rows(q.order('id', { ascending: false }).limit(limit), { what: 'orders' });
    return r.map(tradeFromRow);
  }

  async trade(id: number): Promise<TradeDetailData> {
    const ctx = { what: `order #${id}` };
    const [t, ev] = await Promise.all([
      run(this.sb.from('trades').select(TRADE_COLUMNS).eq('id', id).maybeSingle(), ctx),
      rows(this.sb.from('trade_events').select('id,at,from_status,to_status,reason,detail').eq('trade_id', id).order('id', { ascending: true }), ctx),
    ]);
    if (!t) throw new BackendError('not_found', `order #${id} not found`);
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
