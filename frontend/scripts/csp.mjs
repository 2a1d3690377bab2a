// The Content-Security-Policy of a Supabase build (a <meta> pinned to the project) and the
// one inline style the page needs: lightweight-charts inserts a <style> for the TradingView
// attribution logo, allowed by its hash rather than by 'unsafe-inline'. The hash is read from
// the installed lightweight-charts, so an upgrade that changes the CSS changes it here too
// (test/csp.test.ts checks that vercel.json carries the same one).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** 'sha256-...' sources of the <style> texts lightweight-charts inserts. */
export function chartStyleHashes() {
  const file = fileURLToPath(new URL('../node_modules/lightweight-charts/dist/lightweight-charts.production.mjs', import.meta.url));
  const src = readFileSync(file, 'utf8');
  const out = [];
  for (const m of src.matchAll(/createElement\("style"\),this\.[\w$]+\.innerText="((?:[^"\\]|\\.)*)"/g)) {
    out.push(`'sha256-${createHash('sha256').update(JSON.parse(`"${m[1]}"`)).digest('base64')}'`);
  }
  if (!out.length) throw new Error('csp: no <style> text found in lightweight-charts (its code changed: update scripts/csp.mjs)');
  return out;
}

/** The meta CSP of a Supabase build for the project at `origin` (https://<ref>.supabase.co). */
export function supabaseCsp(origin) {
  const ws = origin.replace(/^https:/, 'wss:').replace(/^http:/, 'ws:');
  return [
    "default-src 'self'",
    "script-src 'self'",
    `style-src 'self' ${chartStyleHashes().join(' ')}`,
    "img-src 'self'",
    `connect-src 'self' ${origin} ${ws}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}
