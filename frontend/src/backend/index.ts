// The data backend of this build. `VITE_BACKEND` is a compile-time constant (vite.config.ts
// defines it), so the branch not taken is dead code and its dynamic import is never emitted:
// a gateway build holds no supabase-js at all (test/bundles.test.ts checks the chunks).
import { createGatewayBackend } from './gateway';
import type { BackendKind, DataBackend } from './types';

export const BACKEND: BackendKind = import.meta.env.VITE_BACKEND === 'supabase' ? 'supabase' : 'gateway';

let current: DataBackend | null = null;

/** The loaded backend (after `loadBackend()`; tests inject one with `setBackend`). */
export function backend(): DataBackend {
  if (!current) throw new Error('data backend not loaded');
  return current;
}

export function setBackend(b: DataBackend | null): void {
  current = b;
}

export async function loadBackend(): Promise<DataBackend> {
  if (current) return current;
  if (import.meta.env.VITE_BACKEND === 'supabase') {
    const { createSupabaseBackend } = await import('./supabase/create');
    current = createSupabaseBackend();
  } else {
    current = createGatewayBackend();
  }
  return current;
}
