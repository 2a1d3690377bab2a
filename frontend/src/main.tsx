import { render } from 'preact';
import { effect } from '@preact/signals';
import './styles.css';
import { setUnauthorizedHandler } from './api/client';
import { App } from './views/App';
import { Login } from './views/Login';
import { authed, checkSession, config, loadConfig, login, pollStatus, takeFragmentToken } from './stores/session';
import { conn, loadQuotes, onOptions, onTrade, selected, setTickers, startFeed, stopFeed } from './stores/market';
import { applyOptionRows, loadChain, underlying } from './stores/options';
import { refreshOrders, refreshPnl } from './stores/trading';

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
  every(2000, pollStatus);
  every(2000, refreshOrders);
  every(3000, refreshPnl);
  every(10_000, () => loadQuotes().catch(() => {}));
  // Without the live feed, poll quotes so the page still moves (and says so in the status bar).
  every(2000, () => (conn.value !== 'open' ? loadQuotes().catch(() => {}) : undefined));
  every(30_000, () => loadChain(underlying.value));
  every(60_000, () => loadConfig().catch(() => {}));
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
  onTrade(() => {
    void refreshOrders();
    void refreshPnl();
  });
}

function stop(): void {
  running = false;
  clearTimeout(retry);
  stopFeed();
  while (timers.length) clearInterval(timers.pop());
}

setUnauthorizedHandler(() => {
  authed.value = false;
});

effect(() => {
  if (authed.value) void start();
  else if (authed.value === false) stop();
});

async function boot(): Promise<void> {
  const tok = takeFragmentToken(location, history);
  if (tok) {
    if (await login(tok)) return;
  }
  await checkSession();
}

render(<Root />, document.getElementById('app')!);
void boot();
// A login link opened in a tab already showing the page only changes the fragment.
addEventListener('hashchange', () => {
  const tok = takeFragmentToken(location, history);
  if (tok) void login(tok);
});
