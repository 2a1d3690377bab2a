#!/usr/bin/env node
// Browser smoke run of the dashboard with playwright-core and Debian's chromium.
//   E2E_BASE_URL=http://127.0.0.1:8080 E2E_TOKEN=... npm run e2e     (from frontend/)
// Without E2E_BASE_URL it starts tests/e2e/mock-gateway.mjs (contract-shaped fake data) on a
// free port and serves frontend/dist (build it first). Screenshots go to E2E_ARTIFACTS
// (default frontend/e2e-artifacts). Exit code 1 when a step fails.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const frontend = join(here, '../../frontend');
const require = createRequire(join(frontend, 'package.json'));
const { chromium } = require('playwright-core');

const ART = process.env.E2E_ARTIFACTS ?? join(frontend, 'e2e-artifacts');
mkdirSync(ART, { recursive: true });
let base = process.env.E2E_BASE_URL;
let token = process.env.E2E_TOKEN;
let mock = null;
if (!base) {
  process.env.MOCK_TOKEN = token = token ?? 'test-token';
  process.argv[2] = '0';
  ({ server: mock } = await import('./mock-gateway.mjs'));
  await new Promise((r) => (mock.listening ? r() : mock.once('listening', r)));
  base = `http://127.0.0.1:${mock.address().port}`;
}
base = base.replace(/\/$/, '');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
});
const results = [];
const errors = [];
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false, error: String(e) });
    console.log(`FAIL ${name}: ${e.message ?? e}`);
  }
}
const tid = (page, id) => page.locator(`[data-testid="${id}"]`);
async function changes(loc, within) {
  const first = await loc.innerText();
  const end = Date.now() + within;
  while (Date.now() < end) {
    const now = await loc.innerText();
    if (now && now !== first) return [first, now];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`stayed ${JSON.stringify(first)} for ${within} ms`);
}
const shot = (page, name) => page.screenshot({ path: join(ART, `${name}.png`) });

const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
ctx.setDefaultTimeout(15_000);
const page = await ctx.newPage();
page.on('pageerror', (e) => errors.push(String(e)));

await step('login page refuses a wrong token', async () => {
  await page.goto(base + '/');
  await tid(page, 'login-token').fill('wrong');
  await tid(page, 'login-submit').click();
  await tid(page, 'login-error').waitFor();
  await shot(page, 'login');
});

await step('login link logs in and clears the fragment', async () => {
  await page.goto(`${base}/#login=${encodeURIComponent(token)}`);
  await tid(page, 'watchlist').waitFor();
  if (page.url().includes(token)) throw new Error(`token still in ${page.url()}`);
});

const first = async () => (await page.locator('[data-testid^="wl-last-"]').first().getAttribute('data-testid')).slice('wl-last-'.length);
let T = 'SPY';
await step('watchlist updates live', async () => {
  await page.locator('[data-testid^="wl-last-"]').first().waitFor();
  T = await first();
  await changes(tid(page, `wl-last-${T}`), 20_000);
});

await step('chart legend follows the forming candle', async () => {
  await tid(page, `wl-${T}`).click();
  await tid(page, 'chart').waitFor();
  await changes(tid(page, 'chart-legend'), 20_000);
  await shot(page, 'watchlist-and-chart');
});

for (const tf of ['1m', '5m', '15m', '1h', '1D', '1s']) {
  await step(`timeframe ${tf} loads candles`, async () => {
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url().includes(`/api/candles/${T}`) && r.url().includes(`tf=${tf}`)),
      tid(page, `tf-${tf}`).click(),
    ]);
    if (resp.status() !== 200) throw new Error(`HTTP ${resp.status()}`);
  });
}
await shot(page, 'chart-1s');

await step('previous session (right after switching ticker)', async () => {
  const other = (await page.locator('[data-testid^="wl-last-"]').nth(1).getAttribute('data-testid')).slice('wl-last-'.length);
  await tid(page, `wl-${other}`).click();
  await tid(page, 'session-date').inputValue();
  await Promise.all([
    page.waitForResponse((r) => r.url().includes(`/api/candles/${other}`) && r.url().includes('session=')),
    tid(page, 'session-prev').click(), // waits until that ticker's sessions are in
  ]);
  await tid(page, `wl-${T}`).click();
  await tid(page, 'session-next').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="session-mode"]')?.textContent === 'LIVE');
  const before = await tid(page, 'session-date').inputValue();
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url().includes(`/api/candles/${T}`) && r.url().includes('session=')),
    tid(page, 'session-prev').click(),
  ]);
  if (resp.status() !== 200) throw new Error(`HTTP ${resp.status()}`);
  const after = await tid(page, 'session-date').inputValue();
  if (!(after < before)) throw new Error(`session-date ${before} -> ${after}`);
  await shot(page, 'history-previous-session');
  await tid(page, 'session-next').click();
});

await step('option chain fills the ticket', async () => {
  await tid(page, 'tab-chain').click();
  const ask = page.locator('[data-testid="chain"] [data-testid^="chain-ask-"]').first();
  await ask.waitFor();
  const occ = (await ask.getAttribute('data-testid')).slice('chain-ask-'.length);
  await shot(page, 'option-chain');
  await ask.click();
  const v = await tid(page, 'ticket-symbol').inputValue();
  if (v !== occ) throw new Error(`ticket-symbol ${v} != ${occ}`);
  await page.keyboard.press('Escape');
  await tid(page, 'ticket').waitFor({ state: 'detached' });
});

await step('ticket: preview, submit, confirm; blotter shows the order', async () => {
  await tid(page, `wl-${T}`).click();
  await page.keyboard.press('b');
  await tid(page, 'ticket').waitFor();
  await tid(page, 'ticket-order-type').selectOption('LIMIT');
  await tid(page, 'ticket-qty').fill('2');
  const last = Number((await tid(page, `wl-last-${T}`).innerText()).replace(/[^0-9.]/g, ''));
  await tid(page, 'ticket-price').fill((last * 1.01).toFixed(2));
  await tid(page, 'ticket-preview').click();
  await tid(page, 'ticket-preview-result').waitFor();
  if (await tid(page, 'ticket-violations').count()) throw new Error('unexpected violations');
  await shot(page, 'trade-ticket');
  await tid(page, 'ticket-submit').click();
  await tid(page, 'ticket-confirm').click();
  const txt = await tid(page, 'ticket-result').innerText();
  const id = /#(\d+)/.exec(txt)?.[1];
  if (!id) throw new Error(`no order id in ${txt}`);
  await page.keyboard.press('Escape');
  await tid(page, 'tab-orders').click();
  await tid(page, 'blotter-filter-all').click();
  await tid(page, `order-status-${id}`).waitFor();
  await page.waitForFunction((i) => document.querySelector(`[data-testid="order-status-${i}"]`)?.textContent === 'filled', id, { timeout: 30_000 });
  await tid(page, `order-${id}`).click();
  await tid(page, 'order-events').waitFor();
  await shot(page, 'orders-blotter');
});

await step('a risk violation is shown before submitting', async () => {
  await tid(page, `wl-${T}`).click();
  await page.keyboard.press('b');
  await tid(page, 'ticket-qty').fill('20000');
  await tid(page, 'ticket-preview').click();
  await tid(page, 'ticket-violations').waitFor();
  if (!(await tid(page, 'ticket-submit').isDisabled())) throw new Error('submit enabled despite violations');
  await shot(page, 'ticket-violation');
  await page.keyboard.press('Escape');
});

await step('positions and P&L', async () => {
  await tid(page, 'tab-positions').click();
  await tid(page, 'positions').waitFor();
  await shot(page, 'positions-pnl');
});

await step('signals', async () => {
  await tid(page, 'tab-signals').click();
  await tid(page, 'signals').waitFor();
  await shot(page, 'signals');
});

await step('operations panel', async () => {
  await tid(page, 'tab-ops').click();
  await tid(page, 'ops').waitFor();
  await shot(page, 'operations');
});

if (mock) {
  await step('pausing the streamer turns the stale indicator on within 5 s', async () => {
    await tid(page, 'status-stale').waitFor({ state: 'detached', timeout: 10_000 });
    await tid(page, 'svc-pause-streamer').click();
    const t0 = Date.now();
    await tid(page, 'status-stale').waitFor({ timeout: 5_000 });
    console.log(`     stale after ${Date.now() - t0} ms`);
    await shot(page, 'status-stale');
    await tid(page, 'svc-resume-streamer').click();
    await tid(page, 'status-stale').waitFor({ state: 'detached', timeout: 10_000 });
  });
}

await step('benchmark: commit -> DOM latency and page CPU while streaming (10 s)', async () => {
  await tid(page, 'tab-chain').click(); // chain rows stream too
  await tid(page, 'tf-1m').click(); // the default view (1s redraws up to 2000 bars a second: ~+3 %)
  await page.waitForTimeout(1500);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Performance.enable');
  const cpu = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    return metrics.find((m) => m.name === 'TaskDuration').value;
  };
  await page.evaluate(() => (window.__sdMetrics.latency.length = 0));
  const c0 = await cpu();
  const t0 = Date.now();
  await page.waitForTimeout(10_000);
  const c1 = await cpu();
  const wall = (Date.now() - t0) / 1000;
  const lat = (await page.evaluate(() => window.__sdMetrics.latency.slice())).sort((a, b) => a - b);
  if (!lat.length) throw new Error('no live messages measured');
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  // Load to interactive: a new tab (session cookie already set) until the watchlist shows prices.
  const p2 = await ctx.newPage();
  const l0 = Date.now();
  await p2.goto(base + '/');
  await p2.waitForFunction(() => /\d/.test(document.querySelector('[data-testid^="wl-last-"]')?.textContent ?? ''));
  const loadMs = Date.now() - l0;
  await p2.close();
  const out = { load_to_interactive_ms: loadMs, messages: lat.length, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: lat[lat.length - 1], cpu_pct_of_one_core: +((100 * (c1 - c0)) / wall).toFixed(2), base };
  console.log(`     ${JSON.stringify(out)}`);
  writeFileSync(join(ART, 'bench.json'), JSON.stringify(out, null, 1));
});

if (mock) {
  await step('the live feed reconnects by itself and backfills the chart', async () => {
    await tid(page, 'tf-1m').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="status-conn"]')?.getAttribute('data-state') === 'open');
    const backfill = page.waitForResponse((r) => r.url().includes(`/api/candles/${T}`) && /limit=\d+/.test(r.url()) && Number(/limit=(\d+)/.exec(r.url())[1]) < 100, { timeout: 20_000 });
    await page.request.get(`${base}/__mock/drop-ws?ms=1500`);
    await page.waitForFunction(() => document.querySelector('[data-testid="status-conn"]')?.getAttribute('data-state') !== 'open', null, { timeout: 5_000 });
    await shot(page, 'reconnecting');
    await page.waitForFunction(() => document.querySelector('[data-testid="status-conn"]')?.getAttribute('data-state') === 'open', null, { timeout: 20_000 });
    const r = await backfill;
    console.log(`     backfill ${new URL(r.url()).search}`);
  });
}

await step('375 px layout has no horizontal scroll', async () => {
  const c = await browser.newContext({ viewport: { width: 375, height: 800 }, isMobile: true });
  const p = await c.newPage();
  p.on('pageerror', (e) => errors.push(String(e)));
  await p.goto(`${base}/#login=${encodeURIComponent(token)}`);
  await tid(p, 'watchlist').waitFor();
  for (const t of ['orders', 'chain', 'positions', 'ops']) {
    await tid(p, `tab-${t}`).click();
    await p.waitForTimeout(300);
    const w = await p.evaluate(() => document.documentElement.scrollWidth);
    if (w > 375) throw new Error(`tab ${t}: page is ${w}px wide`);
  }
  await tid(p, 'tab-orders').click();
  await shot(p, 'narrow-375');
  await c.close();
});

await browser.close();
if (mock) mock.close();
if (errors.length) console.log(`page errors:\n  ${errors.join('\n  ')}`);
const failed = results.filter((r) => !r.ok).length + (errors.length ? 1 : 0);
console.log(`${results.length - results.filter((r) => !r.ok).length}/${results.length} steps ok; screenshots in ${ART}`);
process.exit(failed ? 1 : 0);
