import { useEffect, useRef, useState } from 'preact/hooks';
import { effect, signal } from '@preact/signals';
import { Blotter } from './Blotter';
import { ChainView } from './Chain';
import { Chart } from './Chart';
import { Ops } from './Ops';
import { Positions } from './Positions';
import { SignalsView } from './Signals';
import { StrategiesView } from './Strategies';
import { StatusBar } from './StatusBar';
import { Ticket } from './Ticket';
import { Watchlist } from './Watchlist';
import { cls } from './format';
import { NOT_OPERATOR_MESSAGE } from '../backend/errors';
import { config, logout, operator, user } from '../stores/session';
import { quoteSignal, selected, tickers } from '../stores/market';
import { closeTicket, openTicket, ticket, toast } from '../stores/trading';
import { roundToTick } from '../lib/ticks';

type TabId = 'orders' | 'positions' | 'strategies' | 'chain' | 'signals' | 'ops';
const TABS: [TabId, string][] = [
  ['orders', 'Orders'],
  ['positions', 'Positions & P&L'],
  ['strategies', 'Strategies'],
  ['chain', 'Option chain'],
  ['signals', 'Signals'],
  ['ops', 'Operations'],
];
export const tab = signal<TabId>('orders');

export function tradeSelected(side: 'buy' | 'sell'): void {
  const t = selected.value;
  if (!t) return;
  const q = quoteSignal(t).value;
  const px = side === 'buy' ? (q.ask ?? q.last) : (q.bid ?? q.last);
  openTicket({
    symbol: t,
    asset_type: 'EQUITY',
    instruction: side === 'buy' ? 'BUY' : 'SELL',
    order_type: 'LIMIT',
    limit_price: px == null ? null : roundToTick(px, 0.01),
    quantity: ticket.value.asset_type === 'EQUITY' && ticket.value.symbol === t ? ticket.value.quantity : 1,
  });
}

function Search({ inputRef }: { inputRef: { current: HTMLInputElement | null } }) {
  const [v, setV] = useState('');
  return (
    <form
      class="search"
      onSubmit={(e) => {
        e.preventDefault();
        const s = v.trim().toUpperCase();
        const hit = tickers.value.find((t) => t === s) ?? tickers.value.find((t) => t.startsWith(s));
        if (hit) {
          selected.value = hit;
          setV('');
          inputRef.current?.blur();
        }
      }}
    >
      <input ref={inputRef} data-testid="symbol-search" list="sd-tickers" value={v} onInput={(e) => setV((e.target as HTMLInputElement).value)} placeholder="/ symbol" spellcheck={false} aria-label="Symbol search" />
      <datalist id="sd-tickers">
        {tickers.value.map((t) => (
          <option value={t} />
        ))}
      </datalist>
    </form>
  );
}

export function App() {
  const cfg = config.value;
  const live = cfg?.trading_mode === 'live';
  const search = useRef<HTMLInputElement>(null);
  const t = tab.value;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement;
      const typing = el && (el.tagName === 'INPUT' || el.tagName === 'SELECT' || el.tagName === 'TEXTAREA' || el.isContentEditable);
      if (e.key === 'Escape') {
        if (ticket.value.open) closeTicket();
        else if (typing) el.blur();
        return;
      }
      if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === 'b') {
        e.preventDefault();
        tradeSelected('buy');
      } else if (e.key === 's') {
        e.preventDefault();
        tradeSelected('sell');
      } else if (e.key === '/') {
        e.preventDefault();
        search.current?.focus();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);
  useEffect(
    () =>
      effect(() => {
        const t = selected.value;
        document.title = t ? `${t} · StreamDesk` : 'StreamDesk';
      }),
    [],
  );
  return (
    <div class="app">
      <header class="top">
        <strong class="brand">StreamDesk</strong>
        <span class={cls('mode', live ? 'mode-live' : 'mode-paper')} data-testid="mode-badge">
          {cfg ? (live ? 'LIVE' : 'PAPER') : '…'}
        </span>
        {operator.value === false ? (
          <span class="badge warn" data-testid="not-operator" role="status">
            {NOT_OPERATOR_MESSAGE}
          </span>
        ) : (
          cfg && !cfg.trading_enabled && <span class="badge warn">trading disabled</span>
        )}
        <Search inputRef={search} />
        <button class="buy" data-testid="btn-buy" onClick={() => tradeSelected('buy')} title="Buy (b)">
          Buy
        </button>
        <button class="sell" data-testid="btn-sell" onClick={() => tradeSelected('sell')} title="Sell (s)">
          Sell
        </button>
        {user.value?.email && (
          <span class="muted user hide-xs" data-testid="user-email">
            {user.value.email}
          </span>
        )}
        <button data-testid="logout" onClick={() => void logout()} title="Log out">
          Log out
        </button>
      </header>
      <main class="layout">
        <div class="col-left">
          <Watchlist />
        </div>
        <div class="col-main">
          <Chart />
        </div>
        <div class="col-wide">
          <nav class="tabs main-tabs" role="tablist">
            {TABS.map(([id, label]) => (
              <button role="tab" aria-selected={t === id} class={t === id ? 'on' : ''} data-testid={`tab-${id}`} onClick={() => (tab.value = id)}>
                {label}
              </button>
            ))}
          </nav>
          {t === 'orders' && <Blotter />}
          {t === 'positions' && <Positions />}
          {t === 'strategies' && <StrategiesView />}
          {t === 'chain' && <ChainView />}
          {t === 'signals' && <SignalsView />}
          {t === 'ops' && <Ops />}
        </div>
      </main>
      <StatusBar />
      <Ticket />
      {toast.value && (
        <div class="toast" data-testid="ticket-result" role="status">
          {toast.value.text}
        </div>
      )}
    </div>
  );
}
