// The gateway data backend: our FastAPI gateway on the page's own origin (REST /api, live
// feed /ws, the HttpOnly session cookie). The behaviour the dashboard had before the
// interface existed, moved behind it unchanged.
import { api, ApiError, exportUrl, setUnauthorizedHandler } from '../api/client';
import { LiveFeed, type SocketLike } from '../lib/feed';
import type { AuthApi, AuthState, DataBackend, LiveConnection, LiveHandlers, OpsApi } from './types';

const SIGNED_OUT: AuthState = { signedIn: false, user: null };
const SIGNED_IN: AuthState = { signedIn: true, user: null };

function gatewayAuth(): AuthApi {
  const listeners = new Set<(s: AuthState) => void>();
  // A 401 anywhere (but the login call itself) means the session is gone.
  setUnauthorizedHandler(() => {
    for (const fn of listeners) fn(SIGNED_OUT);
  });
  return {
    methods: ['token'],
    async current() {
      try {
        await api.session();
        return SIGNED_IN;
      } catch (e) {
        // A gateway without /api/session: fall back to a cheap authenticated call.
        if (e instanceof ApiError && e.status === 404) {
          try {
            await api.config();
            return SIGNED_IN;
          } catch {
            /* fallthrough */
          }
        }
        return SIGNED_OUT;
      }
    },
    async loginWithToken(token) {
      await api.login(token.trim());
    },
    async logout() {
      await api.logout();
    },
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    async isOperator() {
      return null; // the gateway's token is the operator; /api/config says whether trading is on
    },
  };
}

const ops: OpsApi = {
  token: api.token,
  authStart: api.authStart,
  authComplete: api.authComplete,
  pause: api.pause,
  resume: api.resume,
  universe: api.universe,
  universeAdd: api.universeAdd,
  universeRemove: api.universeRemove,
  killSwitch: api.killSwitch,
  setKillSwitch: api.setKillSwitch,
  exportUrl,
  strategies: api.strategies,
  strategiesPnl: api.strategiesPnl,
  strategyAction: api.strategyAction,
};

function live(h: LiveHandlers): LiveConnection {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const feed = new LiveFeed(
    { url, socket: (u) => new WebSocket(u) as unknown as SocketLike },
    {
      onCommitted: h.onCommitted,
      onTrade: (m) => h.onTrade({ id: m.id, status: m.status }),
      onState: h.onState,
      onBackfill: h.onBackfill,
    },
  );
  feed.start();
  return { stop: () => feed.stop() };
}

export function createGatewayBackend(): DataBackend {
  return {
    kind: 'gateway',
    caps: { riskPreview: true, signals: true, health: true, sessionsListed: 1000 },
    polling: { status: 2000, orders: 2000, pnl: 3000, quotes: 10_000, quotesWithoutFeed: 2000, chain: 30_000, config: 60_000 },
    auth: gatewayAuth(),
    ops,
    config: () => api.config(),
    status: () => api.status(),
    quotes: () => api.quotes(),
    candles: (ticker, tf, session, limit) => api.candles(ticker, tf, session, limit),
    sessions: (ticker) => api.sessions(ticker),
    signals: (ticker, session) => api.signals(ticker, session),
    gaps: (since, limit) => api.gaps(since, limit),
    options: (u) => api.options(u),
    fills: (symbol, session) => api.fills(symbol, session),
    pnl: () => api.pnl(),
    trades: (filter, limit) => api.trades(filter, limit),
    trade: (id) => api.trade(id),
    preview: async (req) => ({ ...(await api.preview(req)), checkedBy: 'risk-checks' as const }),
    submit: (req) => api.submit(req),
    cancel: (id) => api.cancel(id),
    moveStop: (id, stopPrice) => api.moveStop(id, stopPrice),
    live,
  };
}
