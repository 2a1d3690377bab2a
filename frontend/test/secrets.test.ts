// The secret scanner (scripts/secret-scan.mjs) finds what it must, passes what a bundle may
// hold, and the build-settings check (scripts/build-env.mjs) refuses a secret key. Every
// "secret" here is assembled at run time, so the repository holds none.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkBuildEnv } from '../scripts/build-env.mjs';
import { knownSecrets, privilegedJwt, redact, scanDir, scanText } from '../scripts/secret-scan.mjs';
import { ANON, jwt, SERVICE_ROLE } from './jwt';

const SECRET_KEY = ['sb', 'secret', 'AbCdEf0123456789xyz'].join('_');
const PEM = `${'-'.repeat(5)}BEGIN PRIVATE KEY${'-'.repeat(5)}\nMIIE\n`;
const AWS = `${'AKIA'}${'Q'.repeat(4)}${'7'.repeat(4)}ZZZZWXYZ`;

const kinds = (text: string, opts?: Parameters<typeof scanText>[1]) => scanText(text, opts).map((f) => f.kind);

describe('secret scanner', () => {
  it('finds service-role and user-session JWTs, not the anon key', () => {
    expect(privilegedJwt(SERVICE_ROLE)).toBe('service_role JWT');
    expect(privilegedJwt(ANON)).toBe('');
    expect(privilegedJwt(jwt({ sub: 'u', role: 'authenticated' }))).toBe('user session JWT');
    expect(kinds(`const k="${SERVICE_ROLE}";`)).toEqual(['service_role JWT']);
    expect(kinds(`createClient(u,"${ANON}")`)).toEqual([]);
  });

  it('finds Supabase secret keys, PEM private keys, AWS keys, URLs with passwords, secret literals', () => {
    expect(kinds(`x="${SECRET_KEY}"`)).toEqual(['Supabase secret key']);
    expect(kinds(PEM)).toEqual(['PEM block (private key)']);
    expect(kinds(`id:"${AWS}"`)).toEqual(['AWS access key id']);
    expect(kinds(`aws_secret_access_key = "${'a1B2'.repeat(10)}"`)).toContain('AWS secret access key');
    expect(kinds('db="postgresql://postgres:' + 'hunter2hunter2' + '@db.example.com:5432/postgres"')).toEqual(['URL with a password']);
    expect(kinds(`{password:"${'correct-horse'}"}`)).toEqual(['password or secret literal']);
  });

  it('finds the exact values of known secrets (the gateway token) and redacts in reports', () => {
    const tok = 'gw-' + 'x9'.repeat(20);
    expect(kinds(`a${tok}b`, { known: [tok] })).toEqual(['known secret value']);
    expect(kinds('nothing here', { known: [tok] })).toEqual([]);
    expect(redact(tok)).not.toContain(tok.slice(8));
  });

  it('takes secret-named environment variables and the token file as known secrets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-scan-'));
    try {
      const vals = knownSecrets({ GATEWAY_TOKEN: 'tok-' + 'a'.repeat(20), DATABASE_URL: 'postgresql://u:' + 'pw-long-enough' + '@h/db', HOME: '/root', VITE_SUPABASE_ANON_KEY: 'sb_publishable_zzzzzzzz' }, dir);
      expect(vals).toContain('tok-' + 'a'.repeat(20));
      expect(vals).toContain('pw-long-enough');
      expect(vals).not.toContain('/root');
      expect(vals.some((v) => v.startsWith('sb_publishable_'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes ordinary bundle text: the login form, supabase-js parameter names', () => {
    expect(kinds('input type="password" autocomplete="current-password"; signInWithPassword({email:e,password:t}); n.password=""')).toEqual([]);
    // realtime-js and supabase-js code: a name as its own value, a template of a variable
    expect(kinds('{join:`phx_join`,access_token:`access_token`}; h={apikey:`${this.supabaseKey}`}')).toEqual([]);
  });

  it('scans every text file of a directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-scan-'));
    try {
      writeFileSync(join(dir, 'a.js'), 'console.log(1)');
      writeFileSync(join(dir, 'b.js'), `const k="${SERVICE_ROLE}"`);
      writeFileSync(join(dir, 'index.html'), PEM);
      const found = scanDir(dir);
      expect(found.map((f) => [f.file.slice(dir.length + 1), f.kind]).sort()).toEqual([
        ['b.js', 'service_role JWT'],
        ['index.html', 'PEM block (private key)'],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('build settings', () => {
  const ok = { VITE_BACKEND: 'supabase', VITE_SUPABASE_URL: 'https://abcdefghijklmnop.supabase.co', VITE_SUPABASE_ANON_KEY: 'sb_publishable_abc123' };

  it('gateway builds need nothing; Supabase builds their project URL and key', () => {
    expect(checkBuildEnv({})).toEqual({ backend: 'gateway', origin: null });
    expect(checkBuildEnv(ok)).toEqual({ backend: 'supabase', origin: 'https://abcdefghijklmnop.supabase.co' });
    expect(checkBuildEnv({ ...ok, VITE_SUPABASE_ANON_KEY: ANON }).backend).toBe('supabase');
    expect(() => checkBuildEnv({ ...ok, VITE_SUPABASE_URL: '' })).toThrow(/VITE_SUPABASE_URL is not set/);
    expect(() => checkBuildEnv({ ...ok, VITE_SUPABASE_ANON_KEY: undefined })).toThrow(/VITE_SUPABASE_ANON_KEY is not set/);
    expect(() => checkBuildEnv({ VITE_BACKEND: 'firebase' })).toThrow(/VITE_BACKEND/);
  });

  it('refuses a secret or service_role key, plain http to a remote host, and secrets in any VITE_ variable', () => {
    expect(() => checkBuildEnv({ ...ok, VITE_SUPABASE_ANON_KEY: SECRET_KEY })).toThrow(/SECRET key/);
    expect(() => checkBuildEnv({ ...ok, VITE_SUPABASE_ANON_KEY: SERVICE_ROLE })).toThrow(/service_role JWT/);
    expect(() => checkBuildEnv({ ...ok, VITE_SUPABASE_URL: 'http://abcdefghijklmnop.supabase.co' })).toThrow(/https/);
    expect(checkBuildEnv({ ...ok, VITE_SUPABASE_URL: 'http://127.0.0.1:54321' }).origin).toBe('http://127.0.0.1:54321');
    expect(() => checkBuildEnv({ ...ok, VITE_EXTRA: SERVICE_ROLE })).toThrow(/VITE_EXTRA holds what looks like a secret/);
    expect(() => checkBuildEnv({ VITE_DB: 'postgresql://u:' + 'longpassword' + '@h/db' })).toThrow(/VITE_DB/);
  });
});
