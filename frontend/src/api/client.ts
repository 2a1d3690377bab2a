// The one place that talks HTTP to the gateway: same origin, cookie session. Used only by the
// gateway data backend (backend/gateway.ts).
import { BackendError, kindOfStatus } from '../backend/errors';
import type * as T from './types';
import type { Api } from './types';
import type { Strategies, Strategy, StrategyAction, StrategyPnl } from './strategies';

export class ApiError extends BackendError {
  constructor(
    status: number,
    readonly body: unknown,
  ) {
    super(kindOfStatus(status), describe(status, body), status, body);
  }
}

function describe(status: number, body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (Array.isArray(b.reasons) && b.reasons.length) return b.reasons.map((r) => (r && typeof r === 'object' && 'reason' in r ? String(r.reason) : String(r))).join('; ');
    if (typeof b.error === 'string') return b.error;
    if (typeof b.detail === 'string') return b.detail;
    if (Array.isArray(b.detail)) return b.detail.map((d) => (d && typeof d === 'object' && 'msg' in d ? String(d.msg) : String(d))).join('; ');
  }
  return `HTTP ${status}`;
}

let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

async function req<R>(method: string, path: string, body?: unknown): Promise<R> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' } : { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new BackendError('unavailable', `gateway unreachable: ${(e as Error).message}`, 0);
  }
  if (res.status === 204) return undefined as R;
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    if (res.status === 401 && path !== '/api/login') onUnauthorized();
    throw new ApiError(res.status, data);
  }
  return data as R;
}

const q = (params: Record<string, string | number | null | undefined>): string => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') s.set(k, String(v));
  const str = s.toString();
  return str ? `?${str}` : '';
};
const e = encodeURIComponent;

export const api = {
  login: (token: string) => req<void>('POST', '/api/login', { token }),
  logout: () => req<void>('POST', '/api/logout'),
  session: () => req<{ authenticated: boolean }>('GET', '/api/session'),
  config: () => req<Api<'/api/config', 'get', T.Config>>('GET', '/api/config'),
  quotes: () => req<Api<'/api/quotes', 'get', Record<string, T.Quote>>>('GET', '/api/quotes'),
  candles: (ticker: string, tf: string, session?: string | null, limit?: number) =>
    req<Api<'/api/candles/{ticker}', 'get', T.Candles>>('GET', `/api/candles/${e(ticker)}${q({ tf, session, limit })}`),
  sessions: (ticker: string) => req<Api<'/api/sessions/{ticker}', 'get', T.Sessions>>('GET', `/api/sessions/${e(ticker)}`),
  signals: (ticker: string, session?: string | null) =>
    req<Api<'/api/signals/{ticker}', 'get', T.Signals>>('GET', `/api/signals/${e(ticker)}${q({ session })}`),
  gaps: (since?: number, limit = 200) => req<Api<'/api/gaps', 'get', T.Gap[]>>('GET', `/api/gaps${q({ since, limit })}`),
  options: (u: string) => req<Api<'/api/options/{underlying}', 'get', T.Chain>>('GET', `/api/options/${e(u)}`),
  fills: (symbol: string, session?: string | null) =>
    req<Api<'/api/fills/{symbol}', 'get', T.FillMark[]>>('GET', `/api/fills/${e(symbol)}${q({ session })}`),
  pnl: () => req<Api<'/api/pnl', 'get', T.Pnl>>('GET', '/api/pnl'),
  trades: (status: 'open' | 'all', limit = 100) => req<Api<'/api/trades', 'get', T.Trade[]>>('GET', `/api/trades${q({ status, limit })}`),
  trade: (id: number) => req<Api<'/api/trades/{trade_id}', 'get', T.TradeDetail>>('GET', `/api/trades/${id}`),
  preview: (body: T.TradeRequest) => req<Api<'/api/trades/preview', 'post', T.Preview>>('POST', '/api/trades/preview', body),
  submit: (body: T.TradeRequest) => req<Api<'/api/trades', 'post', T.Trade>>('POST', '/api/trades', body),
  cancel: (id: number) => req<{ id: number; status: string }>('POST', `/api/trades/${id}/cancel`),
  moveStop: (id: number, stop_price: number) => req<Api<'/api/trades/{trade_id}/stop', 'post', T.StopMove>>('POST', `/api/trades/${id}/stop`, { stop_price }),
  status: () => req<Api<'/api/status', 'get', T.Status>>('GET', '/api/status'),
  token: () => req<Api<'/api/ops/token', 'get', T.TokenInfo>>('GET', '/api/ops/token'),
  authStart: () => req<{ authorize_url: string; state: string }>('POST', '/api/ops/auth/start'),
  authComplete: (redirect_url: string) => req<{ ok: boolean }>('POST', '/api/ops/auth/complete', { redirect_url }),
  pause: (name: string) => req<{ name: string; paused: boolean }>('POST', `/api/ops/services/${e(name)}/pause`),
  resume: (name: string) => req<{ name: string; paused: boolean }>('POST', `/api/ops/services/${e(name)}/resume`),
  universe: () => req<Api<'/api/ops/universe', 'get', T.Universe>>('GET', '/api/ops/universe'),
  universeAdd: (kind: 'equity' | 'option', symbol: string) => req<T.Universe>('POST', '/api/ops/universe', { kind, symbol }),
  universeRemove: (kind: 'equity' | 'option', symbol: string) => req<unknown>('DELETE', `/api/ops/universe/${kind}/${e(symbol)}`),
  killSwitch: () => req<Api<'/api/ops/kill-switch', 'get', T.KillSwitch>>('GET', '/api/ops/kill-switch'),
  setKillSwitch: (engaged: boolean, reason?: string) => req<T.KillSwitch>('POST', '/api/ops/kill-switch', { engaged, reason }),
  strategies: () => req<Strategies>('GET', '/api/strategies'),
  strategiesPnl: (day: string) => req<StrategyPnl>('GET', `/api/strategies/pnl${q({ day })}`),
  strategyAction: (id: string, action: StrategyAction) => req<Strategy>('POST', `/api/strategies/${e(id)}/${action}`),
};

export function exportUrl(table: 'equity' | 'indicators' | 'options', session?: string | null): string {
  return `/api/export/${table}.csv${q({ session })}`;
}
