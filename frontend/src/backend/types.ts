// The data-backend interface: everything the stores do over the network, behind one type
// with two implementations chosen at build time (VITE_BACKEND):
//
//   gateway   our FastAPI gateway: REST under /api, the live feed on /ws, a cookie session
//             (backend/gateway.ts: today's behaviour)
//   supabase  the Supabase project directly: PostgREST reads and the `trades` insert under
//             row-level security, Realtime private channels, Supabase Auth
//             (backend/supabase/: docs/supabase.md is the contract)
//
// Required: every method below. Capabilities say what a backend answers only partly or not
// at all (the views then say so instead of showing an empty panel); `ops` is null where the
// operations panel has no backend. Results have the gateway's shapes (the generated OpenAPI
// types when the gateway documents them), so the stores and views do not know which backend
// they talk to. Errors are `BackendError`s (backend/errors.ts).
import type * as T from '../api/types';
import type { Api } from '../api/types';
import type * as S from '../api/strategies';
import type { Tf } from '../lib/candles';
import type { CommittedMessage, ConnState } from '../lib/feed';

export type BackendKind = 'gateway' | 'supabase';

export type ConfigData = Api<'/api/config', 'get', T.Config>;
export type QuotesData = Api<'/api/quotes', 'get', Record<string, T.Quote>>;
export type CandlesData = Api<'/api/candles/{ticker}', 'get', T.Candles>;
export type SessionsData = Api<'/api/sessions/{ticker}', 'get', T.Sessions>;
export type SignalsData = Api<'/api/signals/{ticker}', 'get', T.Signals>;
export type GapsData = Api<'/api/gaps', 'get', T.Gap[]>;
export type ChainData = Api<'/api/options/{underlying}', 'get', T.Chain>;
export type FillsData = Api<'/api/fills/{symbol}', 'get', T.FillMark[]>;
export type PnlData = Api<'/api/pnl', 'get', T.Pnl>;
export type TradesData = Api<'/api/trades', 'get', T.Trade[]>;
export type TradeData = Api<'/api/trades', 'post', T.Trade>;
export type TradeDetailData = Api<'/api/trades/{trade_id}', 'get', T.TradeDetail>;
export type PreviewData = Api<'/api/trades/preview', 'post', T.Preview>;
export type StatusData = Api<'/api/status', 'get', T.Status>;
export type CancelData = { id: number; status: string };
export type StopMoveData = Api<'/api/trades/{trade_id}/stop', 'post', T.StopMove>;

/** What a preview answer is worth: the executor's own risk rules run by the gateway, or only
 * the arithmetic done in the browser (the risk checks then run at the executor). */
export type PreviewResult = PreviewData & { checkedBy: 'risk-checks' | 'local'; note?: string };

/** What the browser knows when it previews (used by a backend that computes it locally). */
export interface PreviewContext {
  quote: { bid: number | null; ask: number | null; last: number | null };
  buyingPower: number | null;
  marketOrders: boolean;
}

export interface Capabilities {
  /** Preview runs the executor's risk rules before submitting. */
  riskPreview: boolean;
  /** SMA9/VWAP crosses (signals view and chart markers). */
  signals: boolean;
  /** Health summary, services and the kill switch state in the status bar. */
  health: boolean;
  /** How many New York sessions the history navigation lists at most. */
  sessionsListed: number;
}

/** Polling periods (ms) of the stores; the live feed makes most of them a fallback. */
export interface Polling {
  status: number;
  orders: number;
  pnl: number;
  quotes: number;
  /** quotes while the live feed is not open */
  quotesWithoutFeed: number;
  chain: number;
  config: number;
}

export type LoginMethod = 'token' | 'password' | 'magic-link';

export interface AuthUser {
  id: string;
  email: string | null;
}

export interface AuthState {
  signedIn: boolean;
  user: AuthUser | null;
}

export interface AuthApi {
  readonly methods: readonly LoginMethod[];
  /** The current session, if any (the gateway's cookie; the stored Supabase session). */
  current(): Promise<AuthState>;
  /** gateway: the token printed by `make run` */
  loginWithToken?(token: string): Promise<void>;
  /** supabase: email + password */
  signInWithPassword?(email: string, password: string): Promise<void>;
  /** supabase: a one-time sign-in link mailed to `email`, back to `redirectTo` */
  sendMagicLink?(email: string, redirectTo: string): Promise<void>;
  logout(): Promise<void>;
  /** Sessions that change outside a call: a 401 from the gateway, a Supabase session that
   * expired, was signed out in another tab, or arrived through a magic link. */
  onChange(fn: (s: AuthState) => void): () => void;
  /** May the signed-in user trade? null: this backend does not say (the gateway's config
   * does, with trading_enabled). */
  isOperator(): Promise<boolean | null>;
}

/** An order's status changed (the gateway's WS `trade` message, Supabase's `trade` event). */
export interface TradeUpdate {
  id: number;
  status: string;
  symbol?: string;
  filled_quantity?: number | null;
  avg_fill_price?: number | null;
  error?: string | null;
  updated_at?: string | null;
}

export interface LiveHandlers {
  /** A committed message v1 (docs/indicators.md), with `degrade` from Supabase Realtime. */
  onCommitted(msg: CommittedMessage): void;
  onTrade(update: TradeUpdate): void;
  onState(state: ConnState, attempt: number): void;
  /** After a RE-connect, with the last row time seen (ms): refetch what was missed. */
  onBackfill(lastSeenTs: number | null): void;
}

export interface LiveConnection {
  stop(): void;
}

/** The gateway's operations panel (Schwab token, services, universe, kill switch, export). */
export interface OpsApi {
  token(): Promise<Api<'/api/ops/token', 'get', T.TokenInfo>>;
  authStart(): Promise<{ authorize_url: string; state: string }>;
  authComplete(redirectUrl: string): Promise<{ ok: boolean }>;
  pause(name: string): Promise<{ name: string; paused: boolean }>;
  resume(name: string): Promise<{ name: string; paused: boolean }>;
  universe(): Promise<Api<'/api/ops/universe', 'get', T.Universe>>;
  universeAdd(kind: 'equity' | 'option', symbol: string): Promise<T.Universe>;
  universeRemove(kind: 'equity' | 'option', symbol: string): Promise<unknown>;
  killSwitch(): Promise<Api<'/api/ops/kill-switch', 'get', T.KillSwitch>>;
  setKillSwitch(engaged: boolean, reason?: string): Promise<T.KillSwitch>;
  exportUrl(table: 'equity' | 'indicators' | 'options', session?: string | null): string;
  /** Strategies (the strategy service's rows), their P&L of a New York day, and actions. */
  strategies(): Promise<S.Strategies>;
  strategiesPnl(day: string): Promise<S.StrategyPnl>;
  strategyAction(id: string, action: S.StrategyAction): Promise<S.Strategy>;
}

export interface DataBackend {
  readonly kind: BackendKind;
  readonly caps: Capabilities;
  readonly polling: Polling;
  readonly auth: AuthApi;
  /** null: operations need the gateway */
  readonly ops: OpsApi | null;

  config(): Promise<ConfigData>;
  status(): Promise<StatusData>;
  quotes(tickers: readonly string[]): Promise<QuotesData>;

  /** The last `limit` candles of `session` (null: the latest with data); 1D: the last days
   * ending with it. */
  candles(ticker: string, tf: Tf, session: string | null, limit: number): Promise<CandlesData>;
  sessions(ticker: string): Promise<SessionsData>;
  signals(ticker: string, session: string | null): Promise<SignalsData>;
  /** Stream gaps still open or ended after `since` (ms), newest first. */
  gaps(since: number | undefined, limit: number): Promise<GapsData>;
  options(underlying: string): Promise<ChainData>;
  fills(symbol: string, session: string | null): Promise<FillsData>;

  pnl(): Promise<PnlData>;
  trades(filter: 'open' | 'all', limit: number): Promise<TradesData>;
  trade(id: number): Promise<TradeDetailData>;
  preview(req: T.TradeRequest, ctx: PreviewContext): Promise<PreviewResult>;
  submit(req: T.TradeRequest): Promise<TradeData>;
  cancel(id: number): Promise<CancelData>;
  /** Move a working STOP / STOP_LIMIT order's trigger (sets replace_stop_price). */
  moveStop(id: number, stopPrice: number): Promise<StopMoveData>;

  /** Start the live feed (committed messages and order updates) until stop(). */
  live(handlers: LiveHandlers): LiveConnection;
}
