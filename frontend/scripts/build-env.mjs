// Build-time settings check (called by vite.config.ts, so `vite build` and the dev server
// refuse a bad configuration before anything is bundled): VITE_BACKEND is gateway|supabase;
// a Supabase build needs VITE_SUPABASE_URL and VITE_SUPABASE_ANON_KEY, and that key must be
// the publishable (anon) one, never a secret or service_role key; no VITE_ variable (all of
// them may end up in the bundle) may hold a secret.
import { privilegedJwt, scanText } from './secret-scan.mjs';

export class BuildEnvError extends Error {}

function fail(msg) {
  throw new BuildEnvError(`\n\nStreamDesk build configuration: ${msg}\n(see frontend/README.md, "Backends")\n`);
}

/** Returns `{backend, origin}` (origin: the Supabase project's, for the CSP) or throws. */
export function checkBuildEnv(env, command = 'build') {
  const backend = env.VITE_BACKEND || 'gateway';
  if (backend !== 'gateway' && backend !== 'supabase') fail(`VITE_BACKEND=${JSON.stringify(backend)}: use "gateway" (default) or "supabase".`);
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('VITE_') || k === 'VITE_SUPABASE_ANON_KEY' || !v) continue;
    const found = scanText(String(v));
    if (found.length) fail(`${k} holds what looks like a secret (${found[0].kind}); VITE_ variables are public, they are compiled into the bundle.`);
  }
  if (backend === 'gateway') return { backend, origin: null };

  const url = (env.VITE_SUPABASE_URL ?? '').trim();
  const key = (env.VITE_SUPABASE_ANON_KEY ?? '').trim();
  if (!url) fail('VITE_SUPABASE_URL is not set. A Supabase build (VITE_BACKEND=supabase) needs the project URL, e.g. VITE_SUPABASE_URL=https://<project-ref>.supabase.co');
  if (!key) fail('VITE_SUPABASE_ANON_KEY is not set. A Supabase build needs the project\'s publishable (anon) key: Project Settings -> API Keys.');
  let u;
  try {
    u = new URL(url);
  } catch {
    fail(`VITE_SUPABASE_URL=${JSON.stringify(url)} is not a URL (expected https://<project-ref>.supabase.co).`);
  }
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  if (u.protocol !== 'https:' && !(local && u.protocol === 'http:')) fail(`VITE_SUPABASE_URL must be https:// (http only for a local Supabase on 127.0.0.1), got ${u.protocol}`);
  if (u.username || u.password) fail('VITE_SUPABASE_URL must not carry credentials.');
  if (key.startsWith('sb_secret_')) fail('VITE_SUPABASE_ANON_KEY is a SECRET key (sb_secret_...). Only the publishable key (sb_publishable_...) or the legacy anon JWT may be in a browser bundle; the secret key bypasses row-level security.');
  const kind = key.startsWith('eyJ') ? privilegedJwt(key) : '';
  if (kind) fail(`VITE_SUPABASE_ANON_KEY is a ${kind}, not the anon key. A service_role key bypasses row-level security: never put it in a browser bundle.`);
  if (!key.startsWith('sb_publishable_') && !key.startsWith('eyJ')) fail('VITE_SUPABASE_ANON_KEY does not look like a Supabase key (sb_publishable_... or the legacy anon JWT eyJ...).');
  void command;
  return { backend, origin: u.origin };
}
