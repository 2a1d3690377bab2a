// The one module that imports supabase-js: it exists only in a Supabase build (loaded by
// backend/index.ts behind the compile-time VITE_BACKEND), so a gateway build has none of it.
import { createClient } from '@supabase/supabase-js';
import type { SbClient } from './client';
import { SupabaseBackend } from './backend';
import { parseSettings } from './settings';

export function createSupabaseBackend(): SupabaseBackend {
  const settings = parseSettings({
    VITE_SUPABASE_URL: import.meta.env.VITE_SUPABASE_URL,
    VITE_SUPABASE_ANON_KEY: import.meta.env.VITE_SUPABASE_ANON_KEY,
    VITE_TICKERS: import.meta.env.VITE_TICKERS,
    VITE_OPTION_UNDERLYINGS: import.meta.env.VITE_OPTION_UNDERLYINGS,
    VITE_TRADING_MODE: import.meta.env.VITE_TRADING_MODE,
    VITE_MARKET_ORDERS: import.meta.env.VITE_MARKET_ORDERS,
  });
  const client = createClient(settings.url, settings.anonKey, {
    auth: { flowType: 'pkce', persistSession: true, autoRefreshToken: true, detectSessionInUrl: true },
  });
  // The query builder's generics are too deep for a structural check of the whole client
  // (TS2589); auth and Realtime are checked here, the PostgREST half by its tests.
  const checked: Pick<SbClient, 'auth' | 'realtime' | 'channel' | 'removeChannel'> = {
    auth: client.auth,
    realtime: client.realtime,
    channel: (topic, opts) => client.channel(topic, opts),
    removeChannel: (ch) => client.removeChannel(ch as Parameters<typeof client.removeChannel>[0]),
  };
  void checked;
  const sb = client as unknown as SbClient;
  return new SupabaseBackend(sb, settings);
}
