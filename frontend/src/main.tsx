import { render } from 'preact';
import { effect } from '@preact/signals';
import './styles.css';
import { setUnauthorizedHandler } from './api/client';
import { App } from './views/App';
import { Login } from './views/Login';
import { authed, checkSession, config, loadConfig, login, pollStatus, status, takeFragmentToken } from './stores/session';
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
async function start(): Promise<void> {
  if (running) return;
  running = true;
  try {
    await loadConfig();
  } catch {
    running = false;
    return;
  }
  effect(() => {
    const c = config.value;
    if (!c) return;
    setTickers(c.tickers);
    if (!underlying.value || !c.option_underlyings.includes(underlying.value)) {
      underlying.value = c.option_underlyings.includes(selected.peek()) ? selected.peek() : (c.option_underlyings[0] ?? '');
    }
  });
  effect(() => void loadChain(underlying.value));
  onOptions(applyOptionRows);
  onTrade(() => {
    void refreshOrders();
    void refreshPnl();
  });
  startFeed();
  every(2000, pollStatus);
  every(2000, refreshOrders);
  every(3000, refreshPnl);
  every(10_000, () => loadQuotes().catch(() => {}));
  // Without the live feed, poll quotes so the page still moves (and says so in the status bar).
  every(2000, () => (conn.value !== 'open' ? loadQuotes().catch(() => {}) : undefined));
  every(30_000, () => loadChain(underlying.value));
  every(60_000, () => loadConfig().catch(() => {}));
  void status;
}

function stop(): void {
  running = false;
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
