import { render } from 'preact';
import { effect } from '@preact/signals';
import './styles.css';
import { backend, loadBackend } from './backend';
import { App } from './views/App';
import { Login } from './views/Login';
import { applyAuth, authed, checkSession, config, loadConfig, login, pollStatus, takeFragmentToken } from './stores/session';
import { conn, loadQuotes, onOptions, onTrade, selected, setTickers, startFeed, stopFeed } from './stores/market';
import { applyOptionRows, loadChain, underlying } from './stores/options';
import { applyTradeUpdate, refreshOrders, refreshPnl } from './stores/trading';

function Root() {
  if (authed.value == null) return <main class="login"><p class="muted">Connecting…</p></main>;
  return authed.value ? <App /> : <Login />;
}

const timers: ReturnType<typeof setInterval>[] = [];
function every(ms: number, fn: () => unknown): void {
  void fn();
  timers.push(
    setInterval(() => {
      if (!document.hidden) void fn();
    }, ms),
  );
}

let running = false;
let wired = false;
let retry: ReturnType<typeof setTimeout> | undefined;
async function start(): Promise<void> {
  if (running) return;
  running = true;
  try {
    await loadConfig();
  } catch {
    // Gateway restarting or unreachable: try again (a 401 sends us to the login form instead).
    running = false;
    if (authed.value) retry = setTimeout(() => void start(), 2000);
    return;
  }
  if (!wired) wire();
  startFeed();
  const p = backend().polling;
  every(p.status, pollStatus);
  every(p.orders, refreshOrders);
  every(p.pnl, refreshPnl);
  every(p.quotes, () => loadQuotes().catch(() => {}));
  // Without the live feed, poll quotes so the page still moves (and says so in the status bar).
  every(p.quotesWithoutFeed, () => (conn.value !== 'open' ? loadQuotes().catch(() => {}) : undefined));
  every(p.chain, () => loadChain(underlying.value));
  every(p.config, () => loadConfig().catch(() => {}));
}

/** Effects and listeners that live as long as the page (set up once, whatever the logins). */
function wire(): void {
  wired = true;
  effect(() => {
    const c = config.value;
    if (!c) return;
    setTickers(c.tickers);
    const u = underlying.peek();
    if (!u || !c.option_underlyings.includes(u)) {
      underlying.value = c.option_underlyings.includes(selected.peek()) ? selected.peek() : (c.option_underlyings[0] ?? '');
    }
  });
  effect(() => void loadChain(underlying.value));
  onOptions(applyOptionRows);
  onTrade(applyTradeUpdate);
}

function stop(): void {
  running = false;
  clearTimeout(retry);
  stopFeed();
  while (timers.length) clearInterval(timers.pop());
}

effect(() => {
  if (authed.value) void start();
  else if (authed.value === false) stop();
});

async function boot(): Promise<void> {
  const b = await loadBackend();
  // Sessions ending (a 401, an expired Supabase session) or starting (a magic link) elsewhere.
  b.auth.onChange(applyAuth);
  render(<Root />, document.getElementById('app')!);
  if (b.auth.methods.includes('token')) {
    // A login link opened in a tab already showing the page only changes the fragment.
    addEventListener('hashchange', () => {
      const t = takeFragmentToken(location, history);
      if (t) void login(t);
    });
    const tok = takeFragmentToken(location, history);
    if (tok && (await login(tok))) return;
  }
  await checkSession();
}

void boot();
