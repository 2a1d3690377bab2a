// vercel.json's headers: the CSP allows only the page's own scripts and styles (plus the
// hash of the chart library's one inline <style>), Supabase's https/wss origins for data,
// no framing; the SPA rewrite leaves /assets alone.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chartStyleHashes, supabaseCsp } from '../scripts/csp.mjs';

const vercel = JSON.parse(readFileSync(new URL('../vercel.json', import.meta.url), 'utf8'));
const all = vercel.headers.find((h: { source: string }) => h.source === '/(.*)').headers as { key: string; value: string }[];
const header = (k: string) => all.find((h) => h.key.toLowerCase() === k.toLowerCase())?.value ?? '';
const directives = (csp: string) => Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));

describe('vercel.json', () => {
  const csp = directives(header('Content-Security-Policy'));

  it('CSP: self only for scripts (no inline), styles by hash, data from Supabase alone, no framing', () => {
    expect(csp['default-src']).toEqual(["'self'"]);
    expect(csp['script-src']).toEqual(["'self'"]);
    expect(csp['style-src']).toEqual(["'self'", ...chartStyleHashes()]);
    expect(csp['connect-src']).toEqual(["'self'", 'https://*.supabase.co', 'wss://*.supabase.co']);
    expect(csp['frame-ancestors']).toEqual(["'none'"]);
    expect(csp['object-src']).toEqual(["'none'"]);
    expect(csp['base-uri']).toEqual(["'none'"]);
    expect(JSON.stringify(csp)).not.toMatch(/unsafe-inline|unsafe-eval|\*'|\s\*\s/);
  });

  it('the other security headers', () => {
    expect(header('X-Frame-Options')).toBe('DENY');
    expect(header('X-Content-Type-Options')).toBe('nosniff');
    expect(header('Referrer-Policy')).toBe('no-referrer');
    expect(header('Strict-Transport-Security')).toMatch(/max-age=\d{8}/);
    expect(header('Permissions-Policy')).toContain('camera=()');
  });

  it('builds the Supabase bundle and rewrites every path but /assets to index.html', () => {
    expect(vercel.buildCommand).toBe('npm run build:supabase');
    expect(vercel.outputDirectory).toBe('dist');
    expect(vercel.rewrites).toEqual([{ source: '/((?!assets/).*)', destination: '/index.html' }]);
  });

  it('the build-time meta CSP pins the project and has the same style hash', () => {
    const m = directives(supabaseCsp('https://abcdefghijklmnop.supabase.co'));
    expect(m['connect-src']).toEqual(["'self'", 'https://abcdefghijklmnop.supabase.co', 'wss://abcdefghijklmnop.supabase.co']);
    expect(m['style-src']).toEqual(csp['style-src']);
    expect(m['script-src']).toEqual(["'self'"]);
  });
});
