// The Supabase data backend: the dashboard against a Supabase project alone (hosted on
// Vercel, docs/supabase.md). The client is injected (create.ts makes the real one; tests pass
// a fake), so nothing here imports supabase-js.
//
// Gateway-only features degrade, and say so: the preview is arithmetic in the browser (the
// executor runs the risk checks), there is no operations panel, no SMA9/VWAP cross list, no
// health summary or kill-switch state; the market session comes from the New York clock
// without the exchange holidays.
import type { Tf } from '../../lib/candles';
import { marketSession } from '../../lib/markethours';
import type { CandlesData, Capabilities, ConfigData, DataBackend, LiveConnection, LiveHandlers, Polling, StatusData } from '../types';
import { SupabaseAuth } from './auth';
import type { SbClient } from './client';
import { SupabaseLive } from './live';
import { MarketReads, SESSIONS_LISTED } from './market';
import type { SupabaseSettings } from './settings';
import { localPreview, TradingCalls } from './trading';

export const SUPABASE_CAPS: Capabilities = { riskPreview: false, signals: false, health: false, sessionsListed: SESSIONS_LISTED };

// Each PostgREST read is a round trip to the project (a quote is three): poll less than the
// gateway does; Realtime carries the live data and order updates.
export const SUPABASE_POLLING: Polling = { status: 5000, orders: 5000, pnl: 10_000, quotes: 30_000, quotesWithoutFeed: 5000, chain: 60_000, config: 60_000 };

export class SupabaseBackend implements DataBackend {
  readonly kind = 'supabase' as const;
  readonly caps = SUPABASE_CAPS;
  readonly polling = SUPABASE_POLLING;
  readonly ops = null;
  readonly auth: SupabaseAuth;
  readonly market: MarketReads;
  readonly trading: TradingCalls;
  private lives = new Set<SupabaseLive>();
  /** tickers seen in the live feed: the universe is not readable through the API */
  private seen = new Set<string>();

  constructor(
    readonly sb: SbClient,
    readonly settings: SupabaseSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.auth = new SupabaseAuth(sb, (token) => {
      for (const l of this.lives) void l.setAuth(token);
    });
    this.auth.listen();
    this.market = new MarketReads(sb);
    this.trading = new TradingCalls(sb, this.market, () => this.auth.userId(), now);
  }

  async config(): Promise<ConfigData> {
    const s = this.settings;
    const operator = await this.auth.isOperator();
    const tickers = [...s.tickers];
    for (const t of [...this.seen].sort()) if (!tickers.includes(t)) tickers.push(t);
    return {
      tickers,
      option_underlyings: [...s.optionUnderlyings],
      trading_mode: s.tradingMode,
      // null (cannot say): leave it to row-level security at insert
      trading_enabled: operator !== false,
      kill_switch: false,
      market_orders: s.marketOrders,
      version: 'supabase',
    } as ConfigData;
  }

  async status(): Promise<StatusData> {
    const t = this.now();
    const session = marketSession(t);
    return {
      now: new Date(t).toISOString(),
      market: { open: session === 'regular', session, next_change_at: null },
      kill_switch: false,
      health: null,
      services: [],
    } as StatusData;
  }

  quotes = (tickers: readonly string[]) => this.market.quotes(tickers);
  candles = (ticker: string, tf: Tf, session: string | null, limit: number): Promise<CandlesData> => this.market.candles(ticker, tf, session, limit);
  sessions = (ticker: string) => this.market.sessions(ticker);
  signals = async (ticker: string, session: string | null) => ({ ticker, session, crosses: [] });
  gaps = (since: number | undefined, limit: number) => this.market.gaps(since, limit);
  options = (u: string) => this.market.options(u);
  fills = (symbol: string, session: string | null) => this.trading.fills(symbol, session);
  pnl = () => this.trading.pnl();
  trades = (filter: 'open' | 'all', limit: number) => this.trading.trades(filter, limit);
  trade = (id: number) => this.trading.trade(id);
  submit = (req: Parameters<TradingCalls['submit']>[0]) => this.trading.submit(req);
  cancel = (id: number) => this.trading.cancel(id);
  moveStop = (id: number, stopPrice: number) => this.trading.moveStop(id, stopPrice);

  preview: DataBackend['preview'] = async (req, ctx) => localPreview(req, ctx, await this.auth.isOperator());

  live(h: LiveHandlers): LiveConnection {
    const l = new SupabaseLive(
      this.sb,
      {
        ...h,
        onCommitted: (m) => {
          for (const e of m.equity) this.seen.add(e.ticker);
          h.onCommitted(m);
        },
      },
      { userId: this.auth.userId(), accessToken: this.auth.session?.access_token ?? null },
    );
    this.lives.add(l);
    void l.start();
    return {
      stop: () => {
        this.lives.delete(l);
        l.stop();
      },
    };
  }
}
