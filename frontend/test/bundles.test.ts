// Both production bundles, built here into temporary directories (vite build alone, ~1-2 s
// each, in temporary directories: --bypass-lock, as they share nothing with dist/): the gateway build holds no supabase-js and stays in its size budget, the Supabase
// build holds supabase-js in a chunk of its own and pins its project in a CSP, neither holds
// a secret (a planted one is found), and a Supabase build without its project fails clearly.
// frontend/dist, when `make frontend` built it, is scanned too.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knownSecrets, scanDir } from '../scripts/secret-scan.mjs';
import { SERVICE_ROLE } from './jwt';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const vite = join(root, 'node_modules/vite/bin/vite.js');
const tmp = mkdtempSync(join(tmpdir(), 'sd-bundles-'));
const SB = { VITE_BACKEND: 'supabase', VITE_SUPABASE_URL: 'https://abcdefghijklmnop.supabase.co', VITE_SUPABASE_ANON_KEY: 'sb_publishable_bundleTestOnly_0123456789' };
/** Markers of supabase-js (its Realtime socket path, PostgREST and GoTrue internals). */
const SUPABASE_JS = [/realtime\/v1/, /phx_join/, /GoTrueClient|gotrue/i, /PostgrestQueryBuilder|PostgrestFilterBuilder|postgrest/i];

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // not vitest's NODE_ENV=test either: that builds a development bundle
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VITE_') && !k.startsWith('VITEST') && k !== 'NODE_ENV' && k !== 'TEST') env[k] = v;
  return { ...env, ...extra };
}

async function build(name: string, env: Record<string, string>): Promise<string> {
  const out = join(tmp, name);
  await run(process.execPath, [vite, 'build', '--outDir', out, '--emptyOutDir', '--logLevel', 'error', '--bypass-lock'], { cwd: root, env: cleanEnv(env), timeout: 60_000 });
  return out;
}

function jsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...jsFiles(p));
    else if (p.endsWith('.js')) out.push(p);
  }
  return out;
}

const gz = (files: string[]) => files.reduce((s, f) => s + gzipSync(readFileSync(f), { level: 9 }).length, 0);

let gatewayDir = '';
let supabaseDir = '';
beforeAll(async () => {
  [gatewayDir, supabaseDir] = await Promise.all([build('gateway', {}), build('supabase', SB)]);
}, 90_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('gateway bundle', () => {
  it('has no supabase-js at all: one JS chunk, none of its code', () => {
    const js = jsFiles(gatewayDir);
    expect(js).toHaveLength(1);
    const text = readFileSync(js[0], 'utf8');
    for (const re of SUPABASE_JS) expect(text).not.toMatch(re);
    expect(text).not.toContain(SB.VITE_SUPABASE_URL);
  });

  it('stays near its size: JS + CSS gzipped under 90 KB (82.6 KB before the Supabase backend)', () => {
    const css = readdirSync(join(gatewayDir, 'assets'))
      .filter((f) => f.endsWith('.css'))
      .map((f) => join(gatewayDir, 'assets', f));
    expect(gz([...jsFiles(gatewayDir), ...css])).toBeLessThan(90 * 1024);
  });
});

describe('supabase bundle', () => {
  it('loads supabase-js in its own chunk and pins the project in a CSP meta', () => {
    const js = jsFiles(supabaseDir);
    expect(js.length).toBeGreaterThanOrEqual(2);
    const withSb = js.filter((f) => SUPABASE_JS.every((re) => re.test(readFileSync(f, 'utf8'))));
    expect(withSb).toHaveLength(1);
    const html = readFileSync(join(supabaseDir, 'index.html'), 'utf8');
    expect(html).toContain('http-equiv="Content-Security-Policy"');
    expect(html).toContain('https://abcdefghijklmnop.supabase.co wss://abcdefghijklmnop.supabase.co');
    // no inline script: script-src 'self' holds
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(gz(js)).toBeLessThan(200 * 1024);
  });
});

describe('no secrets in the bundles', () => {
  const opts = () => ({ known: knownSecrets(), allowed: [SB.VITE_SUPABASE_ANON_KEY] });

  it('neither build carries one', () => {
    expect(scanDir(gatewayDir, opts())).toEqual([]);
    expect(scanDir(supabaseDir, opts())).toEqual([]);
  });

  it('the dist that `make frontend` built carries none', () => {
    const dist = join(root, 'dist');
    if (!existsSync(dist)) return; // not built here: the two builds above are the check
    expect(scanDir(dist, opts())).toEqual([]);
  });

  it('a secret planted in a built bundle is found', () => {
    const copy = join(tmp, 'planted');
    cpSync(supabaseDir, copy, { recursive: true });
    const f = jsFiles(copy)[0];
    writeFileSync(f, `${readFileSync(f, 'utf8')}\nconst leaked="${SERVICE_ROLE}";`);
    const found = scanDir(copy, opts());
    expect(found.map((x) => x.kind)).toEqual(['service_role JWT']);
    expect(found[0].file).toBe(f);
  });

  it('a Supabase build without its URL or key fails with a clear message', async () => {
    const err = await build('nourl', { VITE_BACKEND: 'supabase', VITE_SUPABASE_ANON_KEY: SB.VITE_SUPABASE_ANON_KEY }).catch((e: { stderr?: string }) => e);
    expect(String((err as { stderr?: string }).stderr)).toContain('VITE_SUPABASE_URL is not set');
    const err2 = await build('secretkey', { ...SB, VITE_SUPABASE_ANON_KEY: SERVICE_ROLE }).catch((e: { stderr?: string }) => e);
    expect(String((err2 as { stderr?: string }).stderr)).toContain('service_role JWT');
  }, 30_000);
});
