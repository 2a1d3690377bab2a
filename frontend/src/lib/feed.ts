// The live feed (no DOM): one WebSocket to /ws that reconnects by itself with exponential
// back-off and, after every reconnect, asks its owner to backfill what was missed since the
// last row it saw. The socket class and timers are injected so tests drive it.

export interface EquityItem {
  ticker: string;
  ts: number;
  price: number | null;
  volume: number | null;
  bid: number | null;
  ask: number | null;
  sma9: number | null;
  vwap: number | null;
  ema9?: number | null;
}

export interface OptionItem {
  ticker: string;
  ts: number;
  underlying: string;
  last: number | null;
  bid: number | null;
  ask: number | null;
  delta: number | null;
  iv: number | null;
}

export interface CommittedMessage {
  v: number;
  seq: number;
  committed_at: number;
  rows?: { equity: number; options: number; bars: number };
  from_ts?: number | null;
  to_ts?: number | null;
  equity: EquityItem[];
  options: OptionItem[];
  options_truncated?: boolean;
  /** Supabase Realtime only: how much the writer reduced this message to stay inside the
   * free plan's quotas (0 = full; docs/supabase.md) */
  degrade?: number;
}

export interface TradeMessage {
  type: 'trade';
  id: number;
  status: string;
}

export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(): void;
}

export type SocketFactory = (url: string) => SocketLike;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(h: unknown): void;
  now(): number;
}

export type ConnState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface FeedHandlers {
  onCommitted(msg: CommittedMessage): void;
  onTrade?(msg: TradeMessage): void;
  onState?(state: ConnState, attempt: number): void;
  /** Called after a RE-connect with the last row time seen (ms) or null. */
  onBackfill?(lastSeenTs: number | null): void;
}

export interface FeedOptions {
  url: string;
  socket: SocketFactory;
  timers?: Timers;
  minDelayMs?: number;
  maxDelayMs?: number;
  /** No message (pings come every 15 s idle) for this long: assume the link is dead. */
  silenceMs?: number;
  random?: () => number;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

export function backoffDelay(attempt: number, min: number, max: number, rnd: number): number {
  const base = Math.min(max, min * 2 ** Math.max(0, attempt - 1));
  // Full-jitter on the upper half keeps many tabs from reconnecting in lock-step.
  return Math.round(base / 2 + (base / 2) * rnd);
}

export class LiveFeed {
  state: ConnState = 'closed';
  attempt = 0;
  lastSeq: number | null = null;
  lastSeenTs: number | null = null;
  lastMessageAt: number | null = null;
  private sock: SocketLike | null = null;
  private retry: unknown = null;
  private watchdog: unknown = null;
  private everOpened = false;
  private stopped = true;
  private readonly t: Timers;
  private readonly min: number;
  private readonly max: number;
  private readonly silence: number;
  private readonly rnd: () => number;

  constructor(private readonly opts: FeedOptions, private readonly h: FeedHandlers) {
    this.t = opts.timers ?? realTimers;
    this.min = opts.minDelayMs ?? 500;
    this.max = opts.maxDelayMs ?? 10_000;
    this.silence = opts.silenceMs ?? 40_000;
    this.rnd = opts.random ?? Math.random;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retry != null) this.t.clearTimeout(this.retry);
    if (this.watchdog != null) this.t.clearTimeout(this.watchdog);
    this.retry = this.watchdog = null;
    const s = this.sock;
    this.sock = null;
    if (s) {
      s.onclose = s.onmessage = s.onerror = s.onopen = null;
      s.close();
    }
    this.setState('closed');
  }

  private setState(s: ConnState): void {
    this.state = s;
    this.h.onState?.(s, this.attempt);
  }

  private connect(): void {
    this.retry = null;
    this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    let s: SocketLike;
    try {
      s = this.opts.socket(this.opts.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.sock = s;
    s.onopen = () => {
      if (this.sock !== s) return;
      const wasReconnect = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      this.setState('open');
      this.armWatchdog();
      if (wasReconnect) this.h.onBackfill?.(this.lastSeenTs);
    };
    s.onmessage = (ev) => {
      if (this.sock !== s) return;
      this.lastMessageAt = this.t.now();
      this.armWatchdog();
      this.dispatch(ev.data);
    };
    s.onerror = () => {
      /* onclose follows */
    };
    s.onclose = () => {
      if (this.sock !== s) return;
      this.sock = null;
      if (this.watchdog != null) this.t.clearTimeout(this.watchdog);
      this.watchdog = null;
      if (!this.stopped) this.scheduleRetry();
    };
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    this.attempt += 1;
    this.setState('reconnecting');
    const d = backoffDelay(this.attempt, this.min, this.max, this.rnd());
    this.retry = this.t.setTimeout(() => this.connect(), d);
  }

  private armWatchdog(): void {
    if (this.watchdog != null) this.t.clearTimeout(this.watchdog);
    this.watchdog = this.t.setTimeout(() => {
      // Silent link: drop it; onclose reconnects.
      const s = this.sock;
      if (!s) return;
      this.sock = null;
      s.onclose = s.onmessage = s.onerror = s.onopen = null;
      s.close();
      this.scheduleRetry();
    }, this.silence);
  }

  private dispatch(data: unknown): void {
    let msg: unknown;
    try {
      msg = typeof data === 'string' ? JSON.parse(data) : data;
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    const m = msg as Record<string, unknown>;
    if (m.type === 'ping') return;
    if (m.type === 'trade') {
      this.h.onTrade?.(m as unknown as TradeMessage);
      return;
    }
    if (!Array.isArray(m.equity) && !Array.isArray(m.options)) return;
    const cm = m as unknown as CommittedMessage;
    cm.equity = cm.equity ?? [];
    cm.options = cm.options ?? [];
    if (typeof cm.seq === 'number') this.lastSeq = cm.seq;
    for (const e of cm.equity) if (this.lastSeenTs == null || e.ts > this.lastSeenTs) this.lastSeenTs = e.ts;
    this.h.onCommitted(cm);
  }
}
