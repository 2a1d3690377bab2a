#!/usr/bin/env node
// A contract-shaped stand-in for the gateway (sd-contract.md) serving frontend/dist, for the
// dashboard's browser smoke run when the full stack is not up. Synthetic data, in memory.
// Usage: node tests/e2e/mock-gateway.mjs [port]   (token: MOCK_TOKEN, default "test-token")
import { createServer } from 'node:http';
import { readFileSync, existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const frontend = join(here, '../../frontend');
const require = createRequire(join(frontend, 'package.json'));
const { WebSocketServer } = require('ws');

const TOKEN = process.env.MOCK_TOKEN ?? 'test-token';
const DIST = join(frontend, 'dist');
const sessions = new Set();
const tickers = (process.env.MOCK_TICKERS ?? 'SPY,QQQ,AAPL,MSFT,NVDA').split(',');
const opts = ['SPY'];
const MODE = process.env.MOCK_TRADING_MODE ?? 'paper';
const price = { SPY: 500, QQQ: 430, AAPL: 190, IWM: 200, MSFT: 410, NVDA: 120 };
const prev = { SPY: 498, QQQ: 432, AAPL: 189, IWM: 199, MSFT: 405, NVDA: 121 };
const vol = { SPY: 0, QQQ: 0, AAPL: 0, IWM: 0, MSFT: 0, NVDA: 0 };
for (const t of tickers) (price[t] ??= 100), (prev[t] ??= 99), (vol[t] ??= 0);
let kill = { engaged: false, reason: null, changed_at: null };
const paused = { streamer: false, 'trade-executor': false };
let streaming = true;
const trades = [];
let nextId = 1;
const positions = new Map();

const DAY = 86_400_000;
const nyMidnight = (ms) => {
  const d = new Date(ms - 5 * 3600_000);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) + 5 * 3600_000;
};
const nyDate = (ms) => new Date(ms - 5 * 3600_000).toISOString().slice(0, 10);
const today = nyDate(Date.now());
const sessionList = [nyDate(Date.now() - 3 * DAY), nyDate(Date.now() - DAY), today];

function candles(tk, tf, session, limit) {
  const w = { '1s': 1e3, '1m': 6e4, '5m': 3e5, '15m': 9e5, '1h': 36e5, '1D': DAY }[tf];
  if (!w) return null;
  const day = session ? Date.parse(session + 'T05:00:00Z') : nyMidnight(Date.now());
  const end = session && session !== today ? day + 16 * 3600_000 : Date.now();
  const start = tf === '1D' ? end - 30 * DAY : Math.max(day + 4 * 3600_000, end - Math.min(limit ?? 2000, 2000) * w);
  const out = { ticker: tk, tf, session: session ?? today, t: [], o: [], h: [], l: [], c: [], v: [], sma9: [], vwap: [] };
  let p = price[tk] ?? 100;
  for (let t = Math.floor(start / w) * w; t <= end; t += w) {
    const tt = tf === '1D' ? nyMidnight(t) : t;
    const o = p;
    p = +(p + Math.sin(t / 7e5) * 0.3 + (Math.random() - 0.5) * 0.2).toFixed(2);
    out.t.push(tt);
    out.o.push(o);
    out.h.push(Math.max(o, p) + 0.1);
    out.l.push(Math.min(o, p) - 0.1);
    out.c.push(p);
    out.v.push(Math.round(1000 + Math.random() * 5000));
    out.sma9.push(+(p - 0.2).toFixed(2));
    out.vwap.push(+(p + 0.1).toFixed(2));
  }
  return out;
}

function chain(u) {
  const up = price[u] ?? 100;
  const exps = [1, 8, 15].map((d) => nyDate(Date.now() + d * DAY));
  const contracts = [];
  for (const e of exps)
    for (let k = Math.round(up) - 5; k <= Math.round(up) + 5; k += 1)
      for (const ty of ['CALL', 'PUT']) {
        const intr = ty === 'CALL' ? Math.max(0, up - k) : Math.max(0, k - up);
        const mid = +(intr + 1.2).toFixed(2);
        const occ = `${u.padEnd(6)}${e.slice(2).replaceAll('-', '')}${ty[0]}${String(k * 1000).padStart(8, '0')}`;
        contracts.push({
          ticker: occ, ts: Date.now(), option_type: ty, strike_price: k, expiration_date: e, last_price: mid,
          bid: +(mid - 0.05).toFixed(2), ask: +(mid + 0.05).toFixed(2), delta: ty === 'CALL' ? 0.5 : -0.5,
          gamma: 0.05, theta: -0.03, vega: 0.12, implied_volatility: 0.22, open_interest: 1200, underlying_price: up,
        });
      }
  return { underlying: u, underlying_price: up, expirations: exps, contracts };
}

function authed(req) {
  const c = /sd_session=([^;]+)/.exec(req.headers.cookie ?? '');
  return (c && sessions.has(c[1])) || req.headers.authorization === `Bearer ${TOKEN}`;
}

function body(req) {
  return new Promise((res) => {
    let b = '';
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      try { res(b ? JSON.parse(b) : {}); } catch { res({}); }
    });
  });
}

function preview(b) {
  const v = [];
  if (!(b.quantity > 0)) v.push({ code: 'quantity', reason: 'quantity must be positive' });
  if (b.asset_type === 'EQUITY' && b.quantity > 1000) v.push({ code: 'max_quantity', reason: 'quantity 20000 over RISK_MAX_QUANTITY_EQUITY 1000' });
  const px = b.limit_price ?? price[b.symbol] ?? 1;
  const notional = +(px * b.quantity * (b.asset_type === 'OPTION' ? 100 : 1)).toFixed(2);
  if (notional > 50_000) v.push({ code: 'max_notional', reason: `notional ${notional} over 50000` });
  if (kill.engaged) v.push({ code: 'kill_switch', reason: 'kill switch engaged' });
  return { ok: !v.length, violations: v, notional, buying_power: 100000, buying_power_after: 100000 - notional, quote: null };
}

const json = (res, code, obj, headers = {}) => {
  res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
  res.end(obj === undefined ? '' : JSON.stringify(obj));
};

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (p === '/api/login' && req.method === 'POST') {
    const b = await body(req);
    if (b.token !== TOKEN) return json(res, 401, { detail: 'wrong token' });
    const sid = Math.random().toString(36).slice(2);
    sessions.add(sid);
    res.writeHead(204, { 'Set-Cookie': `sd_session=${sid}; HttpOnly; SameSite=Strict; Path=/` });
    return res.end();
  }
  if (p.startsWith('/api/')) {
    if (!authed(req)) return json(res, 401, { detail: 'not authenticated' });
    let m;
    if (p === '/api/session') return json(res, 200, { authenticated: true });
    if (p === '/api/logout') return json(res, 204);
    if (p === '/api/config') return json(res, 200, { tickers, option_underlyings: opts, trading_mode: MODE, trading_enabled: true, kill_switch: kill.engaged, market_orders: true, version: 'mock' });
    if (p === '/api/quotes')
      return json(res, 200, Object.fromEntries(tickers.map((t) => [t, { bid: +(price[t] - 0.01).toFixed(2), ask: +(price[t] + 0.01).toFixed(2), last: price[t], ts: lastTs[t] ?? null, volume: vol[t], prev_close: prev[t], sma9: price[t] - 0.2, vwap: price[t] + 0.1 }])));
    if ((m = /^\/api\/candles\/(\w+)$/.exec(p))) {
      const c = candles(m[1], url.searchParams.get('tf') ?? '1m', url.searchParams.get('session'), Number(url.searchParams.get('limit')) || 2000);
      return c ? json(res, 200, c) : json(res, 422, { detail: [{ msg: 'bad tf' }] });
    }
    if ((m = /^\/api\/sessions\/(\w+)$/.exec(p))) return json(res, 200, { ticker: m[1], sessions: sessionList });
    if ((m = /^\/api\/signals\/(\w+)$/.exec(p))) return json(res, 200, { ticker: m[1], session: url.searchParams.get('session') ?? today, crosses: [{ t: Date.now() - 600_000, price: price[m[1]], direction: 'up' }, { t: Date.now() - 300_000, price: price[m[1]], direction: 'down' }] });
    if (p === '/api/gaps') return json(res, 200, [{ id: 1, source: 'streamer', started_at: new Date(Date.now() - 900_000).toISOString(), ended_at: new Date(Date.now() - 880_000).toISOString(), symbols: null, reason: 'reconnect' }]);
    if ((m = /^\/api\/options\/(\w+)$/.exec(p))) return json(res, 200, chain(m[1]));
    if ((m = /^\/api\/fills\/(.+)$/.exec(p))) return json(res, 200, trades.filter((t) => t.symbol === decodeURIComponent(m[1]) && t.status === 'filled').map((t) => ({ trade_id: t.id, t: Date.parse(t.updated_at), instruction: t.instruction, quantity: t.quantity, price: t.avg_fill_price })));
    if (p === '/api/pnl') {
      const ps = [...positions.values()].map((x) => ({ ...x, mark: price[x.symbol] ?? x.average_price, market_value: (price[x.symbol] ?? 0) * x.quantity, unrealized: ((price[x.symbol] ?? 0) - x.average_price) * x.quantity, day_pnl: 0 }));
      return json(res, 200, { positions: ps, realized_today: 0, unrealized_total: ps.reduce((a, x) => a + x.unrealized, 0), day_pnl_total: 0, balances: { cash: 100000, buying_power: 100000, liquidation_value: 100000 } });
    }
    if (p === '/api/trades/preview') return json(res, 200, preview(await body(req)));
    if (p === '/api/trades' && req.method === 'POST') {
      const b = await body(req);
      const pv = preview(b);
      if (kill.engaged) return json(res, 403, { detail: 'kill switch engaged' });
      if (!pv.ok) return json(res, 422, { error: 'risk', reasons: pv.violations.map((v) => v.reason) });
      const now = new Date().toISOString();
      const t = { id: nextId++, created_at: now, updated_at: now, ...b, status: 'pending', filled_quantity: 0, avg_fill_price: null, error: null, events: [{ at: now, to_status: 'pending' }] };
      trades.unshift(t);
      setTimeout(() => {
        const ask = price[b.symbol] ?? 0;
        const marketable = b.order_type === 'MARKET' || b.asset_type === 'OPTION' || (b.instruction === 'BUY' ? b.limit_price >= ask : b.limit_price <= ask);
        const at = new Date().toISOString();
        if (marketable) {
          Object.assign(t, { status: 'filled', filled_quantity: b.quantity, avg_fill_price: b.limit_price ?? ask, updated_at: at });
          const pos = positions.get(b.symbol) ?? { symbol: b.symbol, asset_type: b.asset_type, quantity: 0, average_price: 0 };
          const q = b.instruction.startsWith('BUY') ? b.quantity : -b.quantity;
          pos.average_price = pos.quantity + q ? (pos.average_price * pos.quantity + t.avg_fill_price * q) / (pos.quantity + q) : 0;
          pos.quantity += q;
          positions.set(b.symbol, pos);
        } else Object.assign(t, { status: 'working', updated_at: at });
        t.events.push({ at, from_status: 'pending', to_status: t.status });
      }, 400);
      const { events, ...row } = t;
      return json(res, 201, row);
    }
    if (p === '/api/trades') {
      const open = url.searchParams.get('status') === 'open';
      return json(res, 200, trades.filter((t) => !open || ['pending', 'working', 'cancel_requested'].includes(t.status)).map(({ events, ...r }) => r));
    }
    if ((m = /^\/api\/trades\/(\d+)\/cancel$/.exec(p))) {
      const t = trades.find((x) => x.id === Number(m[1]));
      if (!t) return json(res, 404, { detail: 'no such trade' });
      if (!['pending', 'working'].includes(t.status)) return json(res, 409, { detail: t.status });
      const at = new Date().toISOString();
      t.events.push({ at, from_status: t.status, to_status: 'cancelled' });
      Object.assign(t, { status: 'cancelled', updated_at: at });
      return json(res, 200, { id: t.id, status: t.status });
    }
    if ((m = /^\/api\/trades\/(\d+)$/.exec(p))) {
      const t = trades.find((x) => x.id === Number(m[1]));
      return t ? json(res, 200, t) : json(res, 404, { detail: 'no such trade' });
    }
    if (p === '/api/status')
      return json(res, 200, { now: Date.now(), market: { open: true, session: 'regular', next_change_at: null }, kill_switch: kill.engaged, health: { status: streaming ? 'ok' : 'degraded', components: {} }, services: [{ name: 'streamer', alive: streaming, age_s: 0.4, paused: paused.streamer, counters: {} }, { name: 'trade-executor', alive: true, age_s: 0.8, paused: paused['trade-executor'], counters: {} }, { name: 'indicators', alive: true, age_s: 0.5, paused: null, counters: {} }] });
    if (p === '/api/ops/token') return json(res, 200, { exists: true, created_at: new Date(Date.now() - 2 * DAY).toISOString(), age_s: 2 * 86400, refresh_expires_in_s: 5 * 86400, access_expires_in_s: 1200 });
    if (p === '/api/ops/auth/start') return json(res, 200, { authorize_url: 'http://127.0.0.1:9/authorize?state=x', state: 'x' });
    if (p === '/api/ops/auth/complete') return json(res, 200, { ok: true });
    if ((m = /^\/api\/ops\/services\/([\w-]+)\/(pause|resume)$/.exec(p))) {
      paused[m[1]] = m[2] === 'pause';
      if (m[1] === 'streamer') streaming = !paused.streamer;
      return json(res, 200, { name: m[1], paused: paused[m[1]] });
    }
    if (p === '/api/ops/universe' && req.method === 'POST') {
      const b = await body(req);
      const list = b.kind === 'option' ? opts : tickers;
      if (!/^[A-Z.]{1,6}$/.test(b.symbol ?? '')) return json(res, 422, { error: 'bad symbol' });
      if (!list.includes(b.symbol)) list.push(b.symbol);
      price[b.symbol] ??= 100;
      prev[b.symbol] ??= 99;
      vol[b.symbol] ??= 0;
      return json(res, 200, { equities: tickers, option_underlyings: opts });
    }
    if ((m = /^\/api\/ops\/universe\/(equity|option)\/(\w+)$/.exec(p)) && req.method === 'DELETE') {
      const list = m[1] === 'option' ? opts : tickers;
      const i = list.indexOf(m[2]);
      if (i < 0) return json(res, 404, { detail: 'not in universe' });
      list.splice(i, 1);
      return json(res, 200, { equities: tickers, option_underlyings: opts });
    }
    if (p === '/api/ops/universe') return json(res, 200, { equities: tickers, option_underlyings: opts });
    if (p === '/api/ops/kill-switch' && req.method === 'POST') {
      const b = await body(req);
      kill = { engaged: !!b.engaged, reason: b.reason ?? null, changed_at: new Date().toISOString() };
      return json(res, 200, kill);
    }
    if (p === '/api/ops/kill-switch') return json(res, 200, kill);
    if ((m = /^\/api\/export\/(\w+)\.csv$/.exec(p))) {
      res.writeHead(200, { 'Content-Type': 'text/csv' });
      return res.end('ticker,timestamp,price\nSPY,2026-03-11T14:30:00Z,500\n');
    }
    return json(res, 404, { detail: 'not found' });
  }
  if (p === '/livez') return json(res, 200, { ok: true });
  if (p === '/__mock/drop-ws') {
    // Cut every live socket and refuse new ones for `ms` (reconnect + backfill test).
    refuseWsUntil = Date.now() + Number(url.searchParams.get('ms') ?? 1500);
    for (const ws of wss.clients) ws.terminate();
    return json(res, 200, { dropped: true });
  }
  let f = join(DIST, p === '/' ? 'index.html' : p);
  if (!f.startsWith(DIST) || !existsSync(f) || statSync(f).isDirectory()) f = join(DIST, 'index.html');
  const type = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' }[extname(f)] ?? 'application/octet-stream';
  res.writeHead(200, { 'Content-Type': type });
  res.end(readFileSync(f));
});

const wss = new WebSocketServer({ noServer: true });
let refuseWsUntil = 0;
server.on('upgrade', (req, sock, head) => {
  if (!authed(req) || new URL(req.url, 'http://x').pathname !== '/ws' || Date.now() < refuseWsUntil) {
    sock.write('HTTP/1.1 403 Forbidden\r\n\r\n');
    return sock.destroy();
  }
  wss.handleUpgrade(req, sock, head, (ws) => wss.emit('connection', ws));
});

let seq = 0;
const lastTs = {};
const secVol = {};
setInterval(() => {
  if (!streaming) return;
  const now = Date.now();
  const sec = Math.floor(now / 1000) * 1000;
  const equity = tickers.map((t) => {
    price[t] = +((price[t] ?? 100) + (Math.random() - 0.5) * 0.1).toFixed(2);
    const k = `${t}:${sec}`;
    secVol[k] = (secVol[k] ?? 0) + Math.round(Math.random() * 300);
    lastTs[t] = sec;
    vol[t] += 0;
    return { ticker: t, ts: sec, price: price[t], volume: secVol[k], bid: +(price[t] - 0.01).toFixed(2), ask: +(price[t] + 0.01).toFixed(2), sma9: +(price[t] - 0.2).toFixed(2), vwap: +(price[t] + 0.1).toFixed(2), ema9: null };
  });
  const c = chain('SPY').contracts.slice(0, 24);
  const options = c.map((o) => ({ ticker: o.ticker, ts: sec, underlying: 'SPY', last: o.last_price, bid: o.bid, ask: o.ask, delta: o.delta, iv: o.implied_volatility }));
  const msg = JSON.stringify({ v: 1, seq: ++seq, committed_at: Date.now(), rows: { equity: equity.length, options: options.length, bars: 0 }, from_ts: sec, to_ts: sec, equity, options, options_truncated: false });
  for (const ws of wss.clients) ws.send(msg);
}, Number(process.env.MOCK_INTERVAL_MS ?? 1000));

const port = Number(process.argv[2] ?? process.env.MOCK_PORT ?? 8099);
server.listen(port, '127.0.0.1', () => console.log(`mock gateway on http://127.0.0.1:${port}/#login=${TOKEN}`));
export { server };
