// Live data from Supabase Realtime private channels (docs/supabase.md, "Realtime topics"):
//   streamdesk:market          event `flush`: a committed message v1 plus `degrade`
//   streamdesk:trades:<user>   event `trade`: {id, symbol, status, filled_quantity, ...}
// Private channels are authorised by RLS on realtime.messages with the user's JWT, so the
// session's access token is given to Realtime (setAuth) before joining, and again on refresh.
import { backoffDelay, type ConnState } from '../../lib/feed';
import { SeqGuard } from '../../lib/seq';
import type { LiveConnection, LiveHandlers } from '../types';
import type { Channel, ChannelStatus, SbClient } from './client';
import { committedFromPayload, tradeUpdateFromPayload } from './rows';

export const MARKET_TOPIC = 'streamdesk:market';
export const tradesTopic = (userId: string) => `streamdesk:trades:${userId}`;

export interface LiveTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(h: unknown): void;
}

export interface LiveOptions {
  userId: string | null;
  accessToken: string | null;
  timers?: LiveTimers;
  random?: () => number;
  minDelayMs?: number;
  maxDelayMs?: number;
}

const realTimers: LiveTimers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class SupabaseLive implements LiveConnection {
  state: ConnState = 'closed';
  attempt = 0;
  lastSeenTs: number | null = null;
  readonly guard = new SeqGuard();
  private market: Channel | null = null;
  private trades: Channel | null = null;
  private everOpened = false;
  private stopped = false;
  private retry: unknown = null;
  private readonly t: LiveTimers;

  constructor(
    private readonly sb: SbClient,
    private readonly h: LiveHandlers,
    private readonly opts: LiveOptions,
  ) {
    this.t = opts.timers ?? realTimers;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.setState('connecting');
    // Before joining: a private channel joined without the user's JWT is joined as anon.
    try {
      if (this.opts.accessToken) await this.sb.realtime.setAuth(this.opts.accessToken);
    } catch {
      /* joins as whoever the client is; RLS on realtime.messages decides */
    }
    if (this.stopped) return;
    this.joinMarket();
    if (this.opts.userId) this.joinTrades(this.opts.userId);
  }

  /** A refreshed access token (TOKEN_REFRESHED): channels keep their authorisation. */
  async setAuth(token: string | null): Promise<void> {
    this.opts.accessToken = token;
    await this.sb.realtime.setAuth(token);
  }

  stop(): void {
    this.stopped = true;
    if (this.retry != null) this.t.clearTimeout(this.retry);
    this.retry = null;
    for (const ch of [this.market, this.trades]) if (ch) void this.sb.removeChannel(ch);
    this.market = this.trades = null;
    this.setState('closed');
  }

  private setState(s: ConnState): void {
    this.state = s;
    this.h.onState(s, this.attempt);
  }

  private joinMarket(): void {
    const ch = this.sb
      .channel(MARKET_TOPIC, { config: { private: true } })
      .on('broadcast', { event: 'flush' }, (m) => {
        if (this.market === ch) this.onFlush(m.payload);
      });
    this.market = ch;
    ch.subscribe((status) => {
      if (this.market === ch) this.onMarketStatus(status);
    });
  }

  private joinTrades(userId: string): void {
    const ch = this.sb
      .channel(tradesTopic(userId), { config: { private: true } })
      .on('broadcast', { event: 'trade' }, (m) => {
        if (this.trades !== ch) return;
        const u = tradeUpdateFromPayload(m.payload);
        if (u) this.h.onTrade(u);
      });
    this.trades = ch;
    ch.subscribe((status) => {
      if (this.trades !== ch || this.stopped || status !== 'CLOSED') return;
      // closed for good (not a rejoin supabase-js does itself): a new one in a while
      this.t.setTimeout(() => {
        if (this.trades !== ch || this.stopped) return;
        void this.sb.removeChannel(ch);
        this.joinTrades(userId);
      }, this.opts.maxDelayMs ?? 10_000);
    });
  }

  /** Payload of one `flush` broadcast: applied once, in order (duplicates and late ones
   * dropped: newer rows of the same tickers are already on screen). */
  onFlush(payload: unknown): void {
    const m = committedFromPayload(payload);
    if (!m) return;
    const v = this.guard.check(m.seq, m.committed_at);
    if (v === 'duplicate' || v === 'late') return;
    for (const e of m.equity) if (this.lastSeenTs == null || e.ts > this.lastSeenTs) this.lastSeenTs = e.ts;
    this.h.onCommitted(m);
  }

  onMarketStatus(status: ChannelStatus): void {
    if (this.stopped) return;
    if (status === 'SUBSCRIBED') {
      const again = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      this.setState('open');
      if (again) this.h.onBackfill(this.lastSeenTs);
      return;
    }
    this.attempt += 1;
    this.setState('reconnecting');
    // TIMED_OUT / CHANNEL_ERROR: supabase-js rejoins by itself. CLOSED: the channel is gone
    // for good; join a new one after a back-off.
    if (status === 'CLOSED' && this.retry == null) {
      const d = backoffDelay(this.attempt, this.opts.minDelayMs ?? 500, this.opts.maxDelayMs ?? 10_000, (this.opts.random ?? Math.random)());
      this.retry = this.t.setTimeout(() => {
        this.retry = null;
        if (this.stopped) return;
        const old = this.market;
        this.market = null;
        if (old) void this.sb.removeChannel(old);
        this.joinMarket();
      }, d);
    }
  }
}
