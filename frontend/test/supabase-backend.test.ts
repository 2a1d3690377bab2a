// The Supabase data backend against a fake supabase-js client (test/fake-supabase.ts): what
// it asks PostgREST / Realtime / Auth for, and what the stores get back.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackendError, NOT_OPERATOR_MESSAGE } from '../src/backend/errors';
import { SupabaseBackend } from '../src/backend/supabase/backend';
import { parseSettings } from '../src/backend/supabase/settings';
import { REQUEST_COLUMNS } from '../src/backend/supabase/trading';
import type { CommittedMessage } from '../src/lib/feed';
import type { TradeUpdate } from '../src/backend/types';
import { FakeSupabase } from './fake-supabase';

const T = (s: string) => Date.parse(`2026-03-10T${s}Z`); // Tuesday; 09:30 New York = 13:30 UTC
const pg = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');
const USER = '11111111-2222-3333-4444-555555555555';
const settings = parseSettings({ VITE_SUPABASE_URL: 'https://x.supabase.co', VITE_SUPABASE_ANON_KEY: 'sb_publishable_x', VITE_TICKERS: 'spy, qqq' });

let sb: FakeSupabase;
let b: SupabaseBackend;
let now = T('15:00:00');

async function signIn(operator = true): Promise<void> {
  sb.auth.users['op@example.com'] = { password: 'pw-for-tests', id: USER };
  sb.rpcHandlers.streamdesk_is_operator = () => ({ data: operator, error: null });
  await b.auth.signInWithPassword('op@example.com', 'pw-for-tests');
}

beforeEach(() => {
  sb = new FakeSupabase();
  now = T('15:00:00');
  b = new SupabaseBackend(sb, settings, () => now);
});

describe('history reads', () => {
  beforeEach(() => {
    const eq = [];
    const ind = [];
    // 2500 seconds of SPY from 13:30 UTC, one row each: more than a PostgREST page
    for (let i = 0; i < 2500; i++) {
      const ts = pg(T('13:30:00') + i * 1000);
      eq.push({ ticker: 'SPY', timestamp: ts, price: 100 + i / 100, volume: 1, bid: 99, ask: 101, cum_volume: 1000 + i });
      ind.push({ ticker: 'SPY', timestamp: ts, sma9: 100, vwap: 100.5 });
    }
    sb.tables.equity_data = eq;
    sb.tables.indicators = ind;
    sb.tables.bars_1m = [
      { ticker: 'SPY', bucket: pg(T('13:30:00')), open: 1, high: 2, low: 0.5, close: 1.5, volume: 10, vwap: 1.2 },
      { ticker: 'SPY', bucket: pg(T('13:31:00')), open: 1.5, high: 3, low: 1, close: 2, volume: 20, vwap: 2 },
      { ticker: 'SPY', bucket: pg(T('13:36:00')), open: 2, high: 2, low: 2, close: 2, volume: 1, vwap: 2 },
      // the previous session's last bars (for SMA9) and one for the previous close
      ...Array.from({ length: 8 }, (_, i) => ({ ticker: 'SPY', bucket: pg(Date.parse('2026-03-09T19:52:00Z') + i * 60_000), open: 1, high: 1, low: 1, close: 1, volume: 1, vwap: 1 })),
      { ticker: 'QQQ', bucket: pg(T('13:30:00')), open: 9, high: 9, low: 9, close: 9, volume: 9, vwap: 9 },
    ];
  });

  it('1s: the session newest-first in pages of at most 1000 (keyset), indicators joined', async () => {
    const c = await b.candles('SPY', '1s', '2026-03-10', 2000);
    expect(c.t).toHaveLength(2000);
    expect(c.t[c.t.length - 1]).toBe(T('13:30:00') + 2499_000);
    expect(c.t[0]).toBe(T('13:30:00') + 500_000);
    expect(c.sma9.every((x) => x === 100)).toBe(true);
    const reqs = sb.requests('equity_data');
    expect(reqs.map((r) => r.limit)).toEqual([1000, 1000]);
    expect(reqs[0].order).toEqual({ col: 'timestamp', ascending: false });
    expect(reqs[0].filters).toContainEqual({ op: 'eq', col: 'ticker', val: 'SPY' });
    // New York midnight bounds of the session
    expect(reqs[0].filters).toContainEqual({ op: 'gte', col: 'timestamp', val: '2026-03-10T04:00:00.000Z' });
    expect(reqs[0].filters).toContainEqual({ op: 'lt', col: 'timestamp', val: '2026-03-11T04:00:00.000Z' });
    // the second page continues below the first page's last row
    expect(reqs[1].filters).toContainEqual({ op: 'lt', col: 'timestamp', val: pg(T('13:30:00') + 1500_000) });
  });

  it('1m+: the session bars rolled up, SMA9 seeded by the previous bars; latest session by default', async () => {
    const c = await b.candles('SPY', '5m', null, 2000);
    expect(c.session).toBe('2026-03-10');
    expect(c.t).toEqual([T('13:30:00'), T('13:35:00')]);
    expect([c.o[0], c.h[0], c.l[0], c.c[0], c.v[0]]).toEqual([1, 3, 0.5, 2, 30]);
    expect(c.sma9[0]).toBeCloseTo((7 * 1 + 1.5 + 2) / 9, 10);
    expect(c.vwap[0]).toBeCloseTo((1.2 * 10 + 2 * 20) / 30, 10);
    const bars = sb.requests('bars_1m');
    expect(bars.some((r) => r.filters.some((f) => f.op === 'gte' && f.col === 'bucket' && f.val === '2026-03-10T04:00:00.000Z'))).toBe(true);
  });

  it('no bars for the session: candles from the per-second rows', async () => {
    sb.tables.bars_1m = [];
    const c = await b.candles('SPY', '1m', '2026-03-10', 3);
    expect(c.t).toEqual([T('14:09:00'), T('14:10:00'), T('14:11:00')]);
    expect(c.v[0]).toBe(60);
  });

  it('sessions: one newest-bar probe per day, ascending', async () => {
    const s = await b.sessions('SPY');
    expect(s.sessions).toEqual(['2026-03-09', '2026-03-10']);
  });

  it('quotes: latest second, its indicators, the previous session close', async () => {
    const q = await b.quotes(['SPY', 'QQQ', 'NONE']);
    expect(q.SPY).toMatchObject({ last: 124.99, bid: 99, ask: 101, volume: 3499, sma9: 100, vwap: 100.5, prev_close: 1, ts: T('13:30:00') + 2499_000 });
    expect(q.QQQ).toMatchObject({ last: null, prev_close: 9 });
    expect(q.NONE).toBeUndefined();
  });

  it('gaps since a time: open or ended after it', async () => {
    sb.tables.stream_gaps = [
      { id: 1, source: 'streamer', started_at: pg(T('13:00:00')), ended_at: pg(T('13:01:00')), symbols: [], reason: 'old' },
      { id: 2, source: 'streamer', started_at: pg(T('14:00:00')), ended_at: null, symbols: ['SPY'], reason: 'open' },
      { id: 3, source: 'streamer', started_at: pg(T('13:40:00')), ended_at: pg(T('13:45:00')), symbols: [], reason: 'recent' },
    ];
    const g = await b.gaps(T('13:30:00'), 200);
    expect(g.map((x) => x.id)).toEqual([2, 3]);
  });
});

describe('orders', () => {
  it('inserts request columns only, for the signed-in user, from the dashboard', async () => {
    await signIn();
    sb.tables.trades = [];
    const tr = await b.submit({ symbol: 'spy', asset_type: 'EQUITY', instruction: 'BUY', quantity: 3, order_type: 'LIMIT', limit_price: 500.25, duration: 'DAY' });
    const ins = sb.requests('trades').find((r) => r.kind === 'insert')!;
    expect(Object.keys(ins.values!).sort()).toEqual([...REQUEST_COLUMNS].sort());
    const none = { stop_price: null, trail_type: null, trail_offset: null, stop_trigger: null, take_profit_price: null, stop_loss_price: null };
    expect(ins.values).toEqual({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 3, order_type: 'LIMIT', limit_price: 500.25, duration: 'DAY', ...none, source: 'dashboard', user_id: USER });
    expect(ins.values).not.toHaveProperty('parent_id');
    expect(ins.values).not.toHaveProperty('leg');
    expect(ins.values).not.toHaveProperty('replace_stop_price');
    expect(ins.values).not.toHaveProperty('status');
    expect(ins.single).toBe('single');
    expect(tr).toMatchObject({ id: 1000, status: 'pending', symbol: 'SPY', quantity: 3 });
    // a market order carries no limit
    await b.submit({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'SELL', quantity: 1, order_type: 'MARKET', limit_price: 499 });
    expect(sb.requests('trades').filter((r) => r.kind === 'insert')[1].values).toMatchObject({ order_type: 'MARKET', limit_price: null, duration: 'DAY' });
  });

  it('inserts the order-type columns each type takes: stops, trails, a bracket as one row', async () => {
    await signIn();
    sb.tables.trades = [];
    const base = { symbol: 'SPY', asset_type: 'EQUITY' as const, instruction: 'SELL' as const, quantity: 2 };
    await b.submit({ ...base, order_type: 'STOP_LIMIT', stop_price: 495, limit_price: 494.5, stop_trigger: 'BID', take_profit_price: 1 });
    await b.submit({ ...base, order_type: 'TRAILING_STOP', trail_type: 'PERCENT', trail_offset: 2, limit_price: 3, stop_price: 4 });
    await b.submit({ ...base, instruction: 'BUY', order_type: 'LIMIT', limit_price: 500, take_profit_price: 510, stop_loss_price: 490, stop_trigger: 'BID' });
    const [stop, trail, bracket] = sb.requests('trades').filter((r) => r.kind === 'insert').map((r) => r.values!);
    expect(stop).toMatchObject({ order_type: 'STOP_LIMIT', stop_price: 495, limit_price: 494.5, stop_trigger: 'BID', take_profit_price: null, trail_type: null });
    expect(trail).toMatchObject({ order_type: 'TRAILING_STOP', trail_type: 'PERCENT', trail_offset: 2, limit_price: null, stop_price: null });
    expect(bracket).toMatchObject({ order_type: 'LIMIT', limit_price: 500, take_profit_price: 510, stop_loss_price: 490, stop_trigger: null, stop_price: null });
  });

  it('moves a stop through the RPC streamdesk_replace_stop(p_trade_id, p_stop_price)', async () => {
    await signIn();
    sb.rpcHandlers.streamdesk_replace_stop = (a) => ({ data: { id: a!.p_trade_id, status: 'working', replace_stop_price: a!.p_stop_price }, error: null });
    expect(await b.moveStop(42, 101.5)).toEqual({ id: 42, status: 'working', stop_price: null, replace_stop_price: 101.5 });
    expect(sb.rpcLog.filter((r) => r.fn === 'streamdesk_replace_stop')).toEqual([{ fn: 'streamdesk_replace_stop', args: { p_trade_id: 42, p_stop_price: 101.5 } }]);
    sb.rpcHandlers.streamdesk_replace_stop = () => ({ data: null, error: { code: 'PT409', message: 'trade 43 is a filled STOP order; only a working STOP or STOP_LIMIT can be moved' }, status: 409 });
    await expect(b.moveStop(43, 1)).rejects.toMatchObject({ kind: 'invalid', message: expect.stringContaining('only a working STOP') });
    sb.rpcHandlers.streamdesk_replace_stop = () => ({ data: null, error: { code: '22023', message: 'bad stop price 0' }, status: 400 });
    await expect(b.moveStop(43, 0)).rejects.toMatchObject({ kind: 'invalid' });
    sb.rpcHandlers.streamdesk_replace_stop = () => ({ data: null, error: { code: 'P0002', message: 'no trade 45' }, status: 404 });
    await expect(b.moveStop(45, 1)).rejects.toMatchObject({ kind: 'not_found' });
    sb.rpcHandlers.streamdesk_replace_stop = () => ({ data: null, error: { code: '42501', message: 'trade 46 is not yours' }, status: 403 });
    await expect(b.moveStop(46, 1)).rejects.toMatchObject({ kind: 'forbidden' });
    sb.rpcHandlers.streamdesk_replace_stop = () => ({ data: null, error: { code: '42501', message: 'streamdesk_replace_stop: only operators may move stops' }, status: 403 });
    await expect(b.moveStop(44, 1)).rejects.toMatchObject({ kind: 'not_operator' });
  });

  it("an entry's history carries its legs' events, and rows their leg columns", async () => {
    await signIn();
    const row = { created_at: 'a', symbol: 'SPY', asset_type: 'EQUITY', quantity: 1, duration: 'DAY', status: 'working', filled_quantity: 0, avg_fill_price: null, updated_at: 'b' };
    sb.tables.trades = [
      { ...row, id: 7, instruction: 'BUY', order_type: 'LIMIT', limit_price: 500, leg: 'entry', take_profit_price: '510', stop_loss_price: '490' },
      { ...row, id: 8, instruction: 'SELL', order_type: 'LIMIT', limit_price: 510, leg: 'take_profit', parent_id: 7, broker_status: 'AWAITING_PARENT_ORDER' },
      { ...row, id: 9, instruction: 'SELL', order_type: 'STOP', stop_price: '490', leg: 'stop_loss', parent_id: 7, broker_status: 'AWAITING_PARENT_ORDER' },
    ];
    sb.tables.trade_events = [
      { id: 1, trade_id: 7, at: 'x', from_status: null, to_status: 'pending', reason: '', detail: {} },
      { id: 2, trade_id: 8, at: 'y', from_status: null, to_status: 'submitting', reason: 'leg', detail: {} },
      { id: 3, trade_id: 9, at: 'y', from_status: null, to_status: 'submitting', reason: 'leg', detail: {} },
      { id: 4, trade_id: 7, at: 'z', from_status: 'submitting', to_status: 'working', reason: 'accepted', detail: {} },
    ];
    const d = await b.trade(7);
    expect(d.events.map((e) => [e.trade_id, e.to_status])).toEqual([[7, 'pending'], [8, 'submitting'], [9, 'submitting'], [7, 'working']]);
    expect((await b.trade(9)).events.map((e) => e.trade_id)).toEqual([9]);
    const list = await b.trades('all', 100);
    expect(list.find((t) => t.id === 9)).toMatchObject({ order_type: 'STOP', stop_price: 490, parent_id: 7, leg: 'stop_loss', broker_status: 'AWAITING_PARENT_ORDER' });
    expect(list.find((t) => t.id === 7)).toMatchObject({ leg: 'entry', take_profit_price: 510, stop_loss_price: 490, parent_id: null });
  });

  it('refuses to insert without a signed-in user (no user_id to claim)', async () => {
    await expect(b.submit({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 1, order_type: 'LIMIT', limit_price: 1 })).rejects.toMatchObject({ kind: 'unauthorized' });
    expect(sb.requests('trades')).toHaveLength(0);
  });

  it('an RLS refusal of the insert is "not an operator: trading disabled"', async () => {
    await signIn(false);
    sb.insertError.trades = { error: { code: '42501', message: 'new row violates row-level security policy for table "trades"' }, status: 403 };
    const err = await b.submit({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 1, order_type: 'LIMIT', limit_price: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect(err.kind).toBe('not_operator');
    expect(err.message).toBe(NOT_OPERATOR_MESSAGE);
    expect(NOT_OPERATOR_MESSAGE).toBe('your account is not an operator: trading disabled');
    // a CHECK violation is bad input, not a permission problem
    sb.insertError.trades = { error: { code: '23514', message: 'violates check constraint "trades_instruction_check"' }, status: 400 };
    await expect(b.submit({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 1, order_type: 'LIMIT', limit_price: 1 })).rejects.toMatchObject({ kind: 'invalid' });
  });

  it('cancels through the RPC streamdesk_cancel_trade(p_trade_id)', async () => {
    await signIn();
    sb.rpcHandlers.streamdesk_cancel_trade = (a) => ({ data: { id: a!.p_trade_id, status: 'cancel_requested' }, error: null });
    expect(await b.cancel(42)).toEqual({ id: 42, status: 'cancel_requested' });
    expect(sb.rpcLog.filter((r) => r.fn === 'streamdesk_cancel_trade')).toEqual([{ fn: 'streamdesk_cancel_trade', args: { p_trade_id: 42 } }]);
    sb.rpcHandlers.streamdesk_cancel_trade = () => ({ data: null, error: { code: 'P0001', message: 'trade 43 is filled: nothing to cancel' }, status: 400 });
    await expect(b.cancel(43)).rejects.toMatchObject({ kind: 'invalid', message: 'trade 43 is filled: nothing to cancel' });
    sb.rpcHandlers.streamdesk_cancel_trade = () => ({ data: null, error: { code: 'PT409', message: 'trade 43 is filled; it cannot be cancelled now' }, status: 409 });
    await expect(b.cancel(43)).rejects.toMatchObject({ kind: 'invalid', message: 'trade 43 is filled; it cannot be cancelled now' });
    sb.rpcHandlers.streamdesk_cancel_trade = () => ({ data: null, error: { code: 'P0002', message: 'no trade 45' }, status: 404 });
    await expect(b.cancel(45)).rejects.toMatchObject({ kind: 'not_found' });
    sb.rpcHandlers.streamdesk_cancel_trade = () => ({ data: null, error: { code: '42501', message: 'trade 46 is not yours' }, status: 403 });
    await expect(b.cancel(46)).rejects.toMatchObject({ kind: 'forbidden', message: 'not your order' });
    sb.rpcHandlers.streamdesk_cancel_trade = () => ({ data: null, error: { code: '42501', message: 'streamdesk_cancel_trade: only operators may cancel trades' }, status: 403 });
    await expect(b.cancel(44)).rejects.toMatchObject({ kind: 'not_operator', message: NOT_OPERATOR_MESSAGE });
  });

  it('lists own orders (open = not final), one with its events', async () => {
    await signIn();
    sb.tables.trades = [
      { id: 1, created_at: 'a', symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 1, order_type: 'LIMIT', limit_price: 1, duration: 'DAY', status: 'filled', filled_quantity: 1, avg_fill_price: 1, updated_at: 'b' },
      { id: 2, created_at: 'a', symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 1, order_type: 'LIMIT', limit_price: 1, duration: 'DAY', status: 'working', filled_quantity: 0, avg_fill_price: null, updated_at: 'b' },
    ];
    sb.tables.trade_events = [
      { id: 5, trade_id: 2, at: 'x', from_status: null, to_status: 'pending', reason: '', detail: {} },
      { id: 6, trade_id: 2, at: 'y', from_status: 'pending', to_status: 'working', reason: 'accepted', detail: {} },
    ];
    expect((await b.trades('all', 100)).map((t) => t.id)).toEqual([2, 1]);
    expect((await b.trades('open', 100)).map((t) => t.id)).toEqual([2]);
    const d = await b.trade(2);
    expect(d.events.map((e) => e.to_status)).toEqual(['pending', 'working']);
    await expect(b.trade(9)).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('previews in the browser: notional, buying power after, and what is refused for sure', async () => {
    await signIn();
    const ctx = { quote: { bid: 9.9, ask: 10, last: 9.95 }, buyingPower: 1000, marketOrders: false };
    const p = await b.preview({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 10, order_type: 'LIMIT', limit_price: 10 }, ctx);
    expect(p).toMatchObject({ ok: true, checkedBy: 'local', notional: 100, buying_power: 1000, buying_power_after: 900, violations: [] });
    expect(p.note).toMatch(/executor runs the risk checks/);
    const opt = await b.preview({ symbol: 'SPY   260320C00500000', asset_type: 'OPTION', instruction: 'BUY_TO_OPEN', quantity: 2, order_type: 'LIMIT', limit_price: 3 }, ctx);
    expect(opt.notional).toBe(600);
    const mkt = await b.preview({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 1, order_type: 'MARKET' }, ctx);
    expect(mkt.ok).toBe(false);
    expect(mkt.violations.map((v) => v.code)).toEqual(['market_orders']);
  });

  it('a non-operator: config says trading is off and the preview refuses with the message', async () => {
    await signIn(false);
    expect((await b.config()).trading_enabled).toBe(false);
    const p = await b.preview({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 1, order_type: 'LIMIT', limit_price: 1 }, { quote: { bid: null, ask: null, last: null }, buyingPower: null, marketOrders: false });
    expect(p.ok).toBe(false);
    expect(p.violations).toEqual([{ code: 'not_operator', reason: NOT_OPERATOR_MESSAGE }]);
  });

  it('P&L from positions, balances, newest marks and own fills of today', async () => {
    await signIn();
    sb.tables.positions = [{ account_hash: 'h', symbol: 'SPY', asset_type: 'EQUITY', quantity: 10, average_price: 100, day_pnl: 3 }];
    sb.tables.account_balances = [{ account_hash: 'h', cash: 50, buying_power: 500, liquidation_value: 1550 }];
    sb.tables.equity_data = [{ ticker: 'SPY', timestamp: pg(T('14:00:00')), price: 101 }];
    sb.tables.trades = [{ id: 9, symbol: 'SPY', asset_type: 'EQUITY', instruction: 'SELL', filled_quantity: 5, avg_fill_price: 102, created_at: pg(T('14:00:00')), updated_at: pg(T('14:00:05')) }];
    sb.tables.trade_events = [{ id: 1, trade_id: 9, at: pg(T('14:00:04')), to_status: 'filled', reason: '' }];
    const p = await b.pnl();
    expect(p.positions[0]).toMatchObject({ symbol: 'SPY', mark: 101, unrealized: 10 });
    expect(p.balances?.buying_power).toBe(500);
    // opening 15 @ 100, sold 5 @ 102
    expect(p.realized_today).toBe(10);
    expect(await b.fills('SPY', null)).toEqual([{ trade_id: 9, t: T('14:00:04'), instruction: 'SELL', quantity: 5, price: 102 }]);
  });
});

describe('config and status', () => {
  it('tickers from the build, plus those the live feed carries', async () => {
    await signIn();
    expect((await b.config()).tickers).toEqual(['SPY', 'QQQ']);
    const conn = b.live({ onCommitted: () => {}, onTrade: () => {}, onState: () => {}, onBackfill: () => {} });
    await Promise.resolve();
    await Promise.resolve();
    sb.channels[0].emit('flush', { v: 1, seq: 1, committed_at: 1, equity: [{ ticker: 'IWM', ts: 1, price: 1 }], options: [] });
    expect((await b.config()).tickers).toEqual(['SPY', 'QQQ', 'IWM']);
    conn.stop();
  });

  it('market session from the New York clock; health and kill switch are not known', async () => {
    const s = await b.status();
    expect(s.market).toMatchObject({ open: true, session: 'regular' });
    expect(s.health).toBeNull();
    now = T('12:00:00'); // 08:00 New York
    expect((await b.status()).market.session).toBe('pre');
    now = Date.parse('2026-03-14T15:00:00Z'); // Saturday
    expect((await b.status()).market.open).toBe(false);
    expect(b.caps).toMatchObject({ riskPreview: false, signals: false, health: false });
    expect(b.ops).toBeNull();
  });
});

describe('auth', () => {
  it('signed out -> wrong password -> signed in (Realtime gets the token) -> refreshed -> signed out elsewhere', async () => {
    const states: boolean[] = [];
    b.auth.onChange((s) => states.push(s.signedIn));
    expect(await b.auth.current()).toEqual({ signedIn: false, user: null });
    sb.auth.users['op@example.com'] = { password: 'right-one', id: USER };
    await expect(b.auth.signInWithPassword('op@example.com', 'wrong-one')).rejects.toMatchObject({ kind: 'unauthorized', message: 'Wrong email or password.' });
    await b.auth.signInWithPassword(' op@example.com ', 'right-one');
    expect(await b.auth.current()).toEqual({ signedIn: true, user: { id: USER, email: 'op@example.com' } });
    expect(states).toEqual([true]); // once, though supabase-js and the call both say so

    const live = b.live({ onCommitted: () => {}, onTrade: () => {}, onState: () => {}, onBackfill: () => {} });
    await Promise.resolve();
    expect(sb.tokens).toEqual([`token-${USER}-1`]);
    sb.auth.refresh();
    await Promise.resolve();
    expect(sb.tokens[sb.tokens.length - 1]).toBe(`token-${USER}-1-r`);
    expect(states).toEqual([true]); // a refresh is not a new sign-in

    sb.auth.session = null;
    sb.auth.fire('SIGNED_OUT');
    expect(states).toEqual([true, false]);
    expect(sb.tokens[sb.tokens.length - 1]).toBeNull();
    expect(await b.auth.isOperator()).toBe(false);
    live.stop();
  });

  it('a magic link goes to existing accounts only, back to the page', async () => {
    sb.auth.users['op@example.com'] = { password: 'x', id: USER };
    await b.auth.sendMagicLink('op@example.com', 'https://desk.example.com/');
    expect(sb.auth.otp[0]).toEqual({ email: 'op@example.com', options: { emailRedirectTo: 'https://desk.example.com/', shouldCreateUser: false } });
    await expect(b.auth.sendMagicLink('nobody@example.com', 'https://desk.example.com/')).rejects.toMatchObject({ message: expect.stringMatching(/No account/) });
  });

  it('the magic link arriving (SIGNED_IN from supabase-js) signs the page in', async () => {
    const states: boolean[] = [];
    b.auth.onChange((s) => states.push(s.signedIn));
    sb.auth.session = { access_token: 'from-link', user: { id: USER, email: 'op@example.com' } };
    sb.auth.fire('SIGNED_IN');
    expect(states).toEqual([true]);
    expect(b.auth.userId()).toBe(USER);
  });

  it('operator status is asked once per user, even by callers at the same time', async () => {
    await signIn(true);
    (b.auth as unknown as { operatorOf: null }).operatorOf = null;
    let calls = 0;
    sb.rpcHandlers.streamdesk_is_operator = () => (calls++, { data: true, error: null });
    expect(await Promise.all([b.auth.isOperator(), b.auth.isOperator(), b.config()])).toMatchObject([true, true, { trading_enabled: true }]);
    expect(await b.auth.isOperator()).toBe(true);
    expect(calls).toBe(1);
  });
});

describe('live data', () => {
  let got: CommittedMessage[];
  let trades: TradeUpdate[];
  let states: string[];
  let backfills: (number | null)[];
  let stop: () => void;

  beforeEach(async () => {
    vi.useFakeTimers();
    await signIn();
    got = [];
    trades = [];
    states = [];
    backfills = [];
    const c = b.live({ onCommitted: (m) => got.push(m), onTrade: (u) => trades.push(u), onState: (s) => states.push(s), onBackfill: (t) => backfills.push(t) });
    stop = c.stop;
    await vi.advanceTimersByTimeAsync(0);
  });
  afterEach(() => {
    stop();
    vi.useRealTimers();
  });

  const msg = (seq: number, committed_at: number, price = 1, extra: Record<string, unknown> = {}) => ({ v: 1, seq, committed_at, equity: [{ ticker: 'SPY', ts: committed_at - 500, price, volume: 1 }], options: [], ...extra });

  it('joins the private market and own trades channels after giving Realtime the token', () => {
    expect(sb.channels.map((c) => [c.topic, c.config.private])).toEqual([
      ['streamdesk:market', true],
      [`streamdesk:trades:${USER}`, true],
    ]);
    expect(sb.tokens[0]).toMatch(/^token-/);
    expect(sb.channels.every((c) => c.subscribed)).toBe(true);
    expect(states).toEqual(['connecting']);
    sb.channels[0].status('SUBSCRIBED');
    expect(states[states.length - 1]).toBe('open');
  });

  it('applies flushes once and in order: duplicates and late ones dropped, a restarted writer accepted', () => {
    const m = sb.channels[0];
    m.emit('flush', msg(10, 10_000, 1));
    m.emit('flush', msg(10, 10_000, 1)); // the same broadcast again
    m.emit('flush', msg(12, 12_000, 3));
    m.emit('flush', msg(11, 11_000, 2)); // overtaken: older rows than those shown
    m.emit('flush', msg(1, 20_000, 4)); // the writer restarted: seq from 1, newer commit
    m.emit('flush', msg(2, 21_000, 5, { degrade: 2 }));
    m.emit('other', msg(3, 22_000, 6)); // not our event
    m.emit('flush', { v: 2, seq: 3, committed_at: 22_000, equity: [] }); // unknown version
    expect(got.map((x) => x.seq)).toEqual([10, 12, 1, 2]);
    expect(got.map((x) => x.degrade)).toEqual([0, 0, 0, 2]);
  });

  it('a re-join after a drop asks for a backfill from the last row seen', () => {
    const m = sb.channels[0];
    m.status('SUBSCRIBED');
    m.emit('flush', msg(1, 5000));
    m.status('CHANNEL_ERROR');
    expect(states[states.length - 1]).toBe('reconnecting');
    m.status('SUBSCRIBED');
    expect(backfills).toEqual([4500]);
  });

  it('a closed market channel is replaced after a back-off', async () => {
    const m = sb.channels[0];
    m.status('SUBSCRIBED');
    m.status('CLOSED');
    expect(sb.channels).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sb.removed).toContain(m);
    expect(sb.channels).toHaveLength(3);
    expect(sb.channels[2].topic).toBe('streamdesk:market');
    m.emit('flush', msg(1, 1000)); // the old channel is not listened to any more
    expect(got).toHaveLength(0);
  });

  it('order status events of the user become trade updates', () => {
    sb.channels[1].emit('trade', { id: 7, symbol: 'SPY', status: 'filled', filled_quantity: 1, avg_fill_price: 500.1, error: null, updated_at: 't' });
    sb.channels[1].emit('trade', { status: 'filled' }); // no id: dropped
    expect(trades).toEqual([{ id: 7, symbol: 'SPY', status: 'filled', filled_quantity: 1, avg_fill_price: 500.1, error: null, updated_at: 't' }]);
  });

  it('stop leaves both channels', () => {
    const [m, t] = sb.channels;
    stop();
    expect(sb.removed).toEqual([m, t]);
    expect(states[states.length - 1]).toBe('closed');
  });
});
