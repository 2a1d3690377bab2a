/// <reference types="vite/client" />
// Build-time settings (vite.config.ts checks them; frontend/README.md lists them).
interface ImportMetaEnv {
  /** 'gateway' (default) or 'supabase' */
  readonly VITE_BACKEND: string;
  readonly VITE_SUPABASE_URL?: string;
  /** the publishable (anon) key: never a secret or service_role key */
  readonly VITE_SUPABASE_ANON_KEY?: string;
  readonly VITE_TICKERS?: string;
  readonly VITE_OPTION_UNDERLYINGS?: string;
  readonly VITE_TRADING_MODE?: string;
  readonly VITE_MARKET_ORDERS?: string;
}
