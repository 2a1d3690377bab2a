// The stores over an injected data backend (the Supabase one on the fake client): sign-in
// state, the operator flag, live messages (degrade level, connection state), order updates.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setBackend } from '../src/backend';
import { SupabaseBackend } from '../src/backend/supabase/backend';
import { parseSettings } from '../src/backend/supabase/settings';
import { conn, degrade, quoteSignal, setTickers, startFeed, stopFeed } from '../src/stores/market';
import { applyAuth, authed, config, loadConfig, loginError, logout, operator, signIn, user } from '../src/stores/session';
import { applyTradeUpdate, orders } from '../src/stores/trading';
import { FakeSupabase } from './fake-supabase';

const USER = '99999999-2222-3333-4444-555555555555';
let sb: FakeSupabase;
let b: SupabaseBackend;
const g = globalThis as { requestAnimationFrame?: (fn: () => void) => number };
const hadRaf = 'requestAnimationFrame' in g;

beforeAll(() => {
  // node has no animation frames: the market store's batch runs on a timer here
  if (!hadRaf) g.requestAnimationFrame = (fn) => setTimeout(fn, 0) as unknown as number;
});
afterAll(() => {
  if (!hadRaf) delete g.requestAnimationFrame;
  setBackend(null);
});

beforeEach(() => {
  sb = new FakeSupabase();
  sb.auth.users['trader@example.com'] = { password: 'pw-for-tests', id: USER };
  sb.rpcHandlers.streamdesk_is_operator = () => ({ data: false, error: null });
  b = new SupabaseBackend(sb, parseSettings({ VITE_SUPABASE_URL: 'https://x.supabase.co', VITE_SUPABASE_ANON_KEY: 'sb_publishable_x' }));
  b.auth.onChange(applyAuth);
  setBackend(b);
  applyAuth({ signedIn: false, user: null });
  loginError.value = '';
});

describe('session store over Supabase Auth', () => {
  it('a wrong password says so; a right one signs in; a non-operator is flagged; logout signs out', async () => {
    expect(await signIn('trader@example.com', 'nope')).toBe(false);
    expect(loginError.value).toBe('Wrong email or password.');
    expect(authed.value).toBe(false);
    expect(await signIn('trader@example.com', 'pw-for-tests')).toBe(true);
    expect(authed.value).toBe(true);
    expect(user.value).toEqual({ id: USER, email: 'trader@example.com' });
    await loadConfig();
    expect(operator.value).toBe(false);
    expect(config.value?.trading_enabled).toBe(false);
    await logout();
    expect(authed.value).toBe(false);
    expect(operator.value).toBeNull();
  });

  it('a session ended elsewhere (another tab, expiry) returns to the login form', async () => {
    await signIn('trader@example.com', 'pw-for-tests');
    sb.auth.session = null;
    sb.auth.fire('SIGNED_OUT');
    expect(authed.value).toBe(false);
  });
});

describe('market store over Realtime', () => {
  it('shows the connection state and the degrade level of the last message', async () => {
    await signIn('trader@example.com', 'pw-for-tests');
    setTickers(['SPY']);
    startFeed();
    await new Promise((r) => setTimeout(r, 0));
    const market = sb.channels.find((c) => c.topic === 'streamdesk:market')!;
    market.status('SUBSCRIBED');
    expect(conn.value).toBe('open');
    market.emit('flush', { v: 1, seq: 1, committed_at: Date.now(), equity: [{ ticker: 'SPY', ts: 1000, price: 501.5, volume: 3, bid: 501.4, ask: 501.6, sma9: null, vwap: null }], options: [], degrade: 2 });
    await new Promise((r) => setTimeout(r, 5));
    expect(degrade.value).toBe(2);
    expect(quoteSignal('SPY').value.last).toBe(501.5);
    market.emit('flush', { v: 1, seq: 2, committed_at: Date.now(), equity: [{ ticker: 'SPY', ts: 2000, price: 502, volume: 1 }], options: [] });
    await new Promise((r) => setTimeout(r, 5));
    expect(degrade.value).toBe(0);
    stopFeed();
    expect(conn.value).toBe('closed');
  });
});

describe('trading store', () => {
  it('a live order update patches the blotter row at once', () => {
    orders.value = [{ id: 5, created_at: 'c', symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 1, order_type: 'LIMIT', limit_price: 1, status: 'working', filled_quantity: 0, avg_fill_price: null, error: null, updated_at: 'u' }];
    applyTradeUpdate({ id: 5, status: 'filled', filled_quantity: 1, avg_fill_price: 1.01, updated_at: 'v' });
    expect(orders.value[0]).toMatchObject({ status: 'filled', filled_quantity: 1, avg_fill_price: 1.01, updated_at: 'v', error: null });
  });
});
