// Build-time settings of a Supabase build (VITE_*; vite.config.ts refuses a build without the
// URL and key, or with a secret key). Parsed by a pure function so tests need no env.

export interface SupabaseSettings {
  url: string;
  /** the publishable (anon) key: safe in a browser, row-level security decides */
  anonKey: string;
  /** the watchlist; tickers seen in the live feed are added (the universe table is the
   * services' own, not readable through the API) */
  tickers: string[];
  optionUnderlyings: string[];
  /** what the VM's executor runs; unknown to the browser, so a build says it (default live:
   * the extra confirmation is the safe side) */
  tradingMode: 'paper' | 'live';
  /** the executor's RISK_ALLOW_MARKET_ORDERS (default off, as there) */
  marketOrders: boolean;
}

type Env = Partial<Record<string, string | undefined>>;

function list(v: string | undefined, dflt: string[]): string[] {
  if (v == null || v.trim() === '') return dflt;
  return v
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
}

export function parseSettings(env: Env): SupabaseSettings {
  const url = (env.VITE_SUPABASE_URL ?? '').trim().replace(/\/+$/, '');
  const anonKey = (env.VITE_SUPABASE_ANON_KEY ?? '').trim();
  return {
    url,
    anonKey,
    tickers: list(env.VITE_TICKERS, ['SPY', 'QQQ', 'AAPL', 'MSFT', 'NVDA']),
    optionUnderlyings: list(env.VITE_OPTION_UNDERLYINGS, ['SPY']),
    tradingMode: (env.VITE_TRADING_MODE ?? '').trim().toLowerCase() === 'paper' ? 'paper' : 'live',
    marketOrders: /^(1|true|yes|on)$/i.test((env.VITE_MARKET_ORDERS ?? '').trim()),
  };
}
