// Response types typed locally from the contract (/tmp/sd-contract.md) for the routes whose
// OpenAPI schema is still untyped. `Api<path, method, Local>` picks the generated type as soon
// as the gateway documents it, so a changed API then breaks `npm run build`.
import type { paths } from './schema';

type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : unknown;
type Ok<Op> = Op extends { responses: infer R }
  ? R extends { 200: infer A }
    ? JsonOf<A>
    : R extends { 201: infer B }
      ? JsonOf<B>
      : unknown
  : unknown;
type Gen<P extends string, M extends string> = P extends keyof paths
  ? M extends keyof paths[P]
    ? Ok<paths[P][M]>
    : unknown
  : unknown;
/** True for what openapi-typescript emits for an undocumented body (`unknown`, `{[k]: unknown}`,
 * `unknown[]`, `Record<string, never>`). */
type Untyped<G> = unknown extends G
  ? true
  : G extends readonly (infer E)[]
    ? Untyped<E>
    : string extends keyof G
      ? unknown extends G[keyof G]
        ? true
        : false
      : G extends Record<string, never>
        ? true
        : false;
/** The generated type, unless it is still untyped (then the local one). */
export type Api<P extends string, M extends string, Local> = Untyped<Gen<P, M>> extends true ? Local : Gen<P, M>;

export interface Config {
  tickers: string[];
  option_underlyings: string[];
  trading_mode: 'paper' | 'live' | string;
  trading_enabled: boolean;
  kill_switch: boolean;
  market_orders: boolean;
  version?: string;
}

export interface Quote {
  bid: number | null;
  ask: number | null;
  last: number | null;
  ts: number | null;
  volume: number | null;
  prev_close: number | null;
  sma9: number | null;
  vwap: number | null;
}

export interface Candles {
  ticker: string;
  tf: string;
  session: string | null;
  t: number[];
  o: (number | null)[];
  h: (number | null)[];
  l: (number | null)[];
  c: (number | null)[];
  v: (number | null)[];
  sma9: (number | null)[];
  vwap: (number | null)[];
}

export interface Sessions {
  ticker: string;
  sessions: string[];
}

export interface Cross {
  t: number;
  price: number;
  direction: 'up' | 'down' | string;
}

export interface Signals {
  ticker: string;
  session: string | null;
  crosses: Cross[];
}

export interface Gap {
  id: number;
  source: string;
  started_at: string;
  ended_at: string | null;
  symbols: string[] | null;
  reason: string | null;
}

export interface Contract {
  ticker: string;
  ts: number | string | null;
  option_type: 'CALL' | 'PUT' | string;
  strike_price: number;
  expiration_date: string;
  last_price: number | null;
  bid: number | null;
  ask: number | null;
  delta: number | null;
  gamma: number | null;
  theta: number | null;
  vega: number | null;
  implied_volatility: number | null;
  open_interest: number | null;
  underlying_price: number | null;
}

export interface Chain {
  underlying: string;
  underlying_price: number | null;
  expirations: string[];
  contracts: Contract[];
}

export interface FillMark {
  trade_id: number;
  t: number;
  instruction: string;
  quantity: number;
  price: number;
}

export interface Position {
  symbol: string;
  asset_type: string;
  quantity: number;
  average_price: number | null;
  mark: number | null;
  market_value: number | null;
  unrealized: number | null;
  day_pnl: number | null;
}

export interface Pnl {
  positions: Position[];
  realized_today: number;
  unrealized_total: number;
  day_pnl_total: number;
  balances: { cash: number | null; buying_power: number | null; liquidation_value: number | null } | null;
}

export const INSTRUCTIONS = ['BUY', 'SELL', 'BUY_TO_OPEN', 'SELL_TO_CLOSE', 'SELL_TO_OPEN', 'BUY_TO_CLOSE'] as const;
export type Instruction = (typeof INSTRUCTIONS)[number];

export const ORDER_TYPES = ['MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT', 'TRAILING_STOP'] as const;
export type OrderType = (typeof ORDER_TYPES)[number];
export type TrailType = 'VALUE' | 'PERCENT';
export const STOP_TRIGGERS = ['LAST', 'BID', 'ASK', 'MARK'] as const;
export type StopTrigger = (typeof STOP_TRIGGERS)[number];

/** The request columns of a `trades` row (docs/order-types.md): a bracket is a MARKET or
 * LIMIT entry with take_profit_price and/or stop_loss_price. */
export interface TradeRequest {
  symbol: string;
  asset_type: 'EQUITY' | 'OPTION';
  instruction: Instruction;
  quantity: number;
  order_type: OrderType;
  limit_price?: number | null;
  duration?: string;
  stop_price?: number | null;
  trail_type?: TrailType | null;
  trail_offset?: number | null;
  stop_trigger?: StopTrigger | null;
  take_profit_price?: number | null;
  stop_loss_price?: number | null;
}

export interface Trade {
  id: number;
  created_at: string;
  symbol: string;
  asset_type: string;
  instruction: string;
  quantity: number;
  order_type: string;
  limit_price: number | string | null;
  duration?: string | null;
  status: string;
  broker_order_id?: string | null;
  filled_quantity: number | string | null;
  avg_fill_price: number | string | null;
  error: string | null;
  updated_at: string | null;
  stop_price?: number | string | null;
  trail_type?: string | null;
  trail_offset?: number | string | null;
  stop_trigger?: string | null;
  take_profit_price?: number | string | null;
  stop_loss_price?: number | string | null;
  /** a bracket leg's entry row */
  parent_id?: number | null;
  /** single | entry | take_profit | stop_loss */
  leg?: string;
  /** the broker's own status word (AWAITING_PARENT_ORDER…) */
  broker_status?: string | null;
}

export interface StopMove {
  id: number;
  status: string;
  stop_price: number | null;
  replace_stop_price: number;
}

export interface TradeEvent {
  id?: number;
  /** whose event: an entry's history carries its legs' too */
  trade_id?: number;
  at?: string;
  created_at?: string;
  status?: string;
  from_status?: string | null;
  to_status?: string | null;
  detail?: unknown;
  [k: string]: unknown;
}

export interface TradeDetail extends Trade {
  events: TradeEvent[];
}

export interface Violation {
  code: string;
  reason: string;
}

export interface Preview {
  ok: boolean;
  violations: Violation[];
  notional: number | null;
  buying_power: number | null;
  buying_power_after: number | null;
  quote: { bid: number | null; ask: number | null; last: number | null; ts: number | null } | null;
}

export interface Status {
  now: number | string;
  market: { open: boolean; session: 'regular' | 'pre' | 'post' | 'closed' | string; next_change_at: string | null };
  kill_switch: boolean;
  health: { status: string; components: Record<string, unknown> } | null;
  services: { name: string; alive: boolean; age_s: number | null; paused: boolean | null; counters: Record<string, unknown> }[];
}

export interface TokenInfo {
  exists: boolean;
  created_at: string | null;
  age_s: number | null;
  refresh_expires_in_s: number | null;
  access_expires_in_s: number | null;
}

export interface Universe {
  equities: string[];
  option_underlyings: string[];
}

export interface KillSwitch {
  engaged: boolean;
  reason: string | null;
  changed_at: string | null;
}
