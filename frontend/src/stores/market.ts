// Quotes, selection, the live feed and freshness. Live messages are queued and applied once
// per animation frame inside one signals batch, so the DOM updates at most ~60 times a second
// and only the cells whose value changed.
import { batch, signal, type Signal } from '@preact/signals';
import type { Quote } from '../api/types';
import { backend } from '../backend';
import type { LiveConnection, TradeUpdate } from '../backend/types';
import { RecentSeconds, SecondVolume } from '../lib/candles';
import type { CommittedMessage, ConnState, EquityItem, OptionItem } from '../lib/feed';
import { Freshness } from '../lib/staleness';

export interface QuoteRow extends Quote {
  ticker: string;
  /** time of the last change of `last` (for the flash) */
  changedAt: number;
  dir: 1 | -1 | 0;
}

export const tickers = signal<string[]>([]);
export const quotes = new Map<string, Signal<QuoteRow>>();
export const selected = signal<string>('');
export const conn = signal<ConnState>('closed');
export const connAttempt = signal(0);
export const now = signal(Date.now());
export const freshness = new Freshness(() => Date.now());
export const lastCommitLatency = signal<number | null>(null);
/** Degrade level of the last live message (Supabase Realtime: 0 = full, more = reduced to
 * stay inside the plan's quotas; the gateway's feed is always 0). */
export const degrade = signal(0);

const volumes = new Map<string, SecondVolume>();
/** per-second volumes seen live, so a chart loaded now does not count them twice */
export const recentSeconds = new RecentSeconds();

type EquityListener = (items: EquityItem[]) => void;
type OptionListener = (items: OptionItem[]) => void;
type BackfillListener = (lastSeenTs: number | null) => void;
const equityListeners = new Set<EquityListener>();
const optionListeners = new Set<OptionListener>();
const backfillListeners = new Set<BackfillListener>();
export function onEquity(fn: EquityListener): () => void {
  equityListeners.add(fn);
  return () => equityListeners.delete(fn);
}
export function onOptions(fn: OptionListener): () => void {
  optionListeners.add(fn);
  return () => optionListeners.delete(fn);
}
export function onBackfill(fn: BackfillListener): () => void {
  backfillListeners.add(fn);
  return () => backfillListeners.delete(fn);
}
type TradeListener = (update: TradeUpdate) => void;
const tradeListeners = new Set<TradeListener>();
export function onTrade(fn: TradeListener): () => void {
  tradeListeners.add(fn);
  return () => tradeListeners.delete(fn);
}

function emptyRow(ticker: string): QuoteRow {
  return { ticker, bid: null, ask: null, last: null, ts: null, volume: null, prev_close: null, sma9: null, vwap: null, changedAt: 0, dir: 0 };
}

export function quoteSignal(t: string): Signal<QuoteRow> {
  let s = quotes.get(t);
  if (!s) {
    s = signal(emptyRow(t));
    quotes.set(t, s);
  }
  return s;
}

export function setTickers(list: string[]): void {
  tickers.value = list;
  for (const t of list) quoteSignal(t);
  if (!selected.value || !list.includes(selected.value)) selected.value = list[0] ?? '';
}

export async function loadQuotes(): Promise<void> {
  const qs = await backend().quotes(tickers.value);
  const tnow = Date.now();
  batch(() => {
    for (const [t, q] of Object.entries(qs)) {
      const s = quoteSignal(t);
      const old = s.value;
      const dir = q.last != null && old.last != null && q.last !== old.last ? (q.last > old.last ? 1 : -1) : old.dir;
      s.value = { ...old, ...q, ticker: t, changedAt: q.last !== old.last && old.last != null ? tnow : old.changedAt, dir };
      let v = volumes.get(t);
      if (!v) volumes.set(t, (v = new SecondVolume(q.volume ?? 0)));
      else v.reset(q.volume ?? 0);
      if (q.ts != null) freshness.touch(Math.min(tnow, Math.max(q.ts, freshness.lastUpdate() ?? 0)));
    }
  });
}

let queue: CommittedMessage[] = [];
let raf = 0;

function flush(): void {
  raf = 0;
  const msgs = queue;
  queue = [];
  const tnow = Date.now();
  const eq: EquityItem[] = [];
  const op: OptionItem[] = [];
  for (const m of msgs) {
    for (const e of m.equity) eq.push(e);
    for (const o of m.options) op.push(o);
  }
  const lastMsg = msgs[msgs.length - 1];
  batch(() => {
    for (const e of eq) {
      const s = quoteSignal(e.ticker);
      const old = s.value;
      let v = volumes.get(e.ticker);
      if (!v) volumes.set(e.ticker, (v = new SecondVolume(old.volume ?? 0)));
      const vol = v.apply(e.ts, e.volume);
      recentSeconds.apply(e.ticker, e.ts, e.volume);
      const last = e.price ?? old.last;
      const moved = last !== old.last && old.last != null;
      s.value = {
        ...old,
        last,
        bid: e.bid ?? old.bid,
        ask: e.ask ?? old.ask,
        sma9: e.sma9 ?? old.sma9,
        vwap: e.vwap ?? old.vwap,
        ts: e.ts,
        volume: vol,
        changedAt: moved ? tnow : old.changedAt,
        dir: moved ? ((last as number) > (old.last as number) ? 1 : -1) : old.dir,
      };
    }
    if (lastMsg?.committed_at) lastCommitLatency.value = tnow - lastMsg.committed_at;
    if (lastMsg) degrade.value = lastMsg.degrade ?? 0;
  });
  // Commit -> DOM: after the microtask in which Preact re-renders the changed rows.
  if (msgs.length) setTimeout(() => recordLatency(msgs), 0);
  if (eq.length) for (const fn of equityListeners) fn(eq);
  if (op.length) for (const fn of optionListeners) fn(op);
}

/** Writer COMMIT -> DOM updated, per message (ms), last 4096; read by the e2e benchmark. */
export const metrics = { latency: [] as number[], messages: 0 };
(globalThis as { __sdMetrics?: typeof metrics }).__sdMetrics = metrics;
function recordLatency(msgs: CommittedMessage[]): void {
  const t = Date.now();
  for (const m of msgs) {
    metrics.messages++;
    if (typeof m.committed_at === 'number') metrics.latency.push(t - m.committed_at);
  }
  if (metrics.latency.length > 4096) metrics.latency.splice(0, metrics.latency.length - 4096);
}

let feed: LiveConnection | null = null;

export function startFeed(): void {
  if (feed) return;
  feed = backend().live({
    onCommitted(m) {
      if (m.equity.length || m.options.length) freshness.touch();
      queue.push(m);
      if (!raf) raf = requestAnimationFrame(flush);
    },
    onTrade(u) {
      for (const fn of tradeListeners) fn(u);
    },
    onState(s, attempt) {
      conn.value = s;
      connAttempt.value = attempt;
    },
    onBackfill(ts) {
      void loadQuotes().catch(() => {});
      for (const fn of backfillListeners) fn(ts);
    },
  });
}

export function stopFeed(): void {
  feed?.stop();
  feed = null;
}

// Hidden tabs get no animation frames: flush on a timer instead so nothing piles up.
// (Guarded so the stores import under vitest's node environment.)
if (typeof document !== 'undefined') {
  document.addEventListener('visibilitychange', () => {
    if (document.hidden && raf) {
      cancelAnimationFrame(raf);
      raf = 0;
      flush();
    }
  });
  setInterval(() => {
    if (document.hidden && queue.length) flush();
    now.value = Date.now();
  }, 500);
}
