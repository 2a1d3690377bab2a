#!/usr/bin/env node
// Finds secrets in text meant for browsers (a built bundle, a build-time variable): what a
// static site must never carry, since anyone can read it.
//
//   node scripts/secret-scan.mjs [dir ...]     (default: dist/) exit 1 when anything is found
//
// Looked for: Supabase service-role (or other privileged / user-session) JWTs, Supabase
// secret keys (sb_secret_...), PEM blocks (-----BEGIN ... private keys), AWS access keys,
// URLs with a password, password/secret/token literals, and the exact values of this
// machine's secrets: the gateway token (.data/gateway-token, GATEWAY_TOKEN) and every
// environment variable whose name says it is one. The publishable (anon) key is allowed.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const JWT = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g;
/** JWT roles a browser may hold in its bundle: the anon key. */
const PUBLIC_ROLES = new Set(['anon']);
const PATTERNS = [
  ['Supabase secret key', /sb_secret_[A-Za-z0-9_-]{8,}/g],
  ['PEM block (private key)', /-----BEGIN[ A-Z0-9]*-----/g],
  ['AWS access key id', /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g],
  ['AWS secret access key', /aws_?secret_?access_?key["']?\s*[:=]\s*["']?[A-Za-z0-9/+=]{40}/gi],
  ['URL with a password', /\b(?:postgres(?:ql)?|mysql|redis|rediss|amqp|mongodb(?:\+srv)?|https?):\/\/[^\s:@/'"`]+:[^\s@/'"`]{3,}@[^\s'"`]+/g],
  ['password or secret literal', /\b(?:password|passwd|secret|client_secret|app_secret|api_?key|private_?key|access_?token|refresh_?token|service_?role_?key)["']?\s*[:=]\s*["'`]([^"'`\s]{8,})["'`]/gi],
];
/** Environment variables whose values are secrets (by name). */
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|SERVICE_ROLE|API_KEY|ACCESS_KEY|DATABASE_URL|REDIS_URL|DSN)/i;
const ALLOWED_NAME = /^VITE_SUPABASE_ANON_KEY$|^npm_/;

function jwtPayload(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(Buffer.from(part, 'base64').toString('utf8'));
  } catch {
    return null;
  }
}

/** What kind of JWT `token` is, if it must not be public ('' when it may). */
export function privilegedJwt(token) {
  const p = jwtPayload(token);
  if (!p || typeof p !== 'object') return '';
  const role = typeof p.role === 'string' ? p.role : '';
  if (role && PUBLIC_ROLES.has(role)) return '';
  if (role === 'service_role' || role === 'supabase_admin') return `${role} JWT`;
  if (role === 'authenticated' || p.sub) return 'user session JWT';
  return role ? `JWT with role ${role}` : '';
}

/**
 * Findings in `text`: [{kind, match, index}]. `known` = exact secret values to look for
 * (each at least 8 characters), `allowed` = exact values that may appear (the anon key).
 */
export function scanText(text, { known = [], allowed = [] } = {}) {
  const out = [];
  const ok = new Set(allowed.filter(Boolean));
  for (const m of text.matchAll(JWT)) {
    const kind = ok.has(m[0]) ? '' : privilegedJwt(m[0]);
    if (kind) out.push({ kind, match: m[0], index: m.index });
  }
  for (const [kind, re] of PATTERNS) {
    for (const m of text.matchAll(re)) {
      if (ok.has(m[0]) || (m[1] && ok.has(m[1]))) continue;
      // a literal that is code, not a value: a template (`${key}`) or a snake_case name
      // (Realtime's `access_token:"access_token"`)
      if (m[1] && (m[1].includes('${') || /^[a-z]+(?:_[a-z]+)+$/.test(m[1]))) continue;
      out.push({ kind, match: m[0], index: m.index });
    }
  }
  for (const v of known) {
    if (!v || v.length < 8 || ok.has(v)) continue;
    let i = text.indexOf(v);
    while (i >= 0) {
      out.push({ kind: 'known secret value', match: v, index: i });
      i = text.indexOf(v, i + v.length);
    }
  }
  return out;
}

/** The secret values of this machine: the gateway token and secret-named env variables. */
export function knownSecrets(env = process.env, repoRoot = resolve(fileURLToPath(import.meta.url), '../../..')) {
  const vals = new Set();
  const tokenFile = join(repoRoot, '.data', 'gateway-token');
  if (existsSync(tokenFile)) vals.add(readFileSync(tokenFile, 'utf8').trim());
  for (const [k, v] of Object.entries(env)) {
    if (!v || ALLOWED_NAME.test(k) || !SECRET_NAME.test(k)) continue;
    const s = String(v).trim();
    if (s.length >= 8) vals.add(s);
    // a DSN's password alone
    const pw = /^[a-z][a-z0-9+.-]*:\/\/[^:@/]+:([^@/]+)@/i.exec(s);
    if (pw && pw[1].length >= 8) vals.add(decodeURIComponent(pw[1]));
  }
  return [...vals];
}

function files(dir) {
  const out = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

/** Findings in every text file under `dir`: [{file, kind, match, index}]. */
export function scanDir(dir, opts = {}) {
  const out = [];
  for (const f of files(dir)) {
    if (/\.(png|jpe?g|gif|webp|ico|woff2?|ttf|br|gz)$/i.test(f)) continue;
    const text = readFileSync(f, 'utf8');
    for (const x of scanText(text, opts)) out.push({ file: f, ...x });
  }
  return out;
}

/** A finding for a log: never the whole secret. */
export function redact(match) {
  return match.length <= 12 ? `${match.slice(0, 3)}…` : `${match.slice(0, 8)}…(${match.length} chars)`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dirs = process.argv.slice(2);
  if (!dirs.length) dirs.push(fileURLToPath(new URL('../dist/', import.meta.url)));
  const opts = { known: knownSecrets(), allowed: [process.env.VITE_SUPABASE_ANON_KEY ?? ''] };
  let n = 0;
  for (const d of dirs) {
    if (!existsSync(d)) {
      console.error(`secret-scan: ${d} does not exist (build first)`);
      process.exit(2);
    }
    for (const f of scanDir(d, opts)) {
      n++;
      console.error(`secret-scan: ${f.file}: ${f.kind}: ${redact(f.match)}`);
    }
  }
  console.log(n ? `secret-scan: ${n} finding(s)` : `secret-scan: clean (${dirs.join(', ')})`);
  process.exit(n ? 1 : 0);
}
