// Auth + config + server status: the app's global state.
import { signal } from '@preact/signals';
import type { Config, Status } from '../api/types';
import { backend } from '../backend';
import { BackendError } from '../backend/errors';
import type { AuthState, AuthUser } from '../backend/types';

export const authed = signal<boolean | null>(null); // null = checking
export const loginError = signal<string>('');
/** The signed-in user (Supabase mode; the gateway's token has no user). */
export const user = signal<AuthUser | null>(null);
/** On the operators allow-list (Supabase mode); null: not known / not applicable. */
export const operator = signal<boolean | null>(null);
/** The address a magic link was mailed to (Supabase mode). */
export const magicLinkSentTo = signal<string>('');
export const config = signal<Config | null>(null);
export const status = signal<Status | null>(null);
export const statusError = signal<string>('');

/** `#login=<token>` in the fragment: log in with it, then remove it from the URL. */
export function takeFragmentToken(loc: Location, hist: History): string | null {
  const m = /(?:^#|&)login=([^&]+)/.exec(loc.hash);
  if (!m) return null;
  hist.replaceState(null, '', loc.pathname + loc.search);
  return decodeURIComponent(m[1]);
}

function loginMessage(e: unknown): string {
  if (e instanceof BackendError) {
    if (e.kind === 'rate_limited') return 'Too many attempts — wait and retry.';
    if (e.kind === 'unauthorized' && backend().kind === 'gateway') return 'Wrong token.';
  }
  return (e as Error).message;
}

/** A session that started or ended (a call here, or the backend saying so). */
export function applyAuth(s: AuthState): void {
  user.value = s.user;
  if (!s.signedIn) operator.value = null;
  authed.value = s.signedIn;
}

async function attempt(fn: () => Promise<void>): Promise<boolean> {
  loginError.value = '';
  try {
    await fn();
    return true;
  } catch (e) {
    loginError.value = loginMessage(e);
    if (authed.value == null) authed.value = false;
    return false;
  }
}

/** gateway: the token printed by `make run` */
export async function login(token: string): Promise<boolean> {
  const ok = await attempt(() => backend().auth.loginWithToken!(token.trim()));
  authed.value = ok;
  return ok;
}

/** supabase: email + password */
export async function signIn(email: string, password: string): Promise<boolean> {
  const ok = await attempt(async () => {
    await backend().auth.signInWithPassword!(email, password);
    applyAuth(await backend().auth.current());
  });
  return ok;
}

/** supabase: mail a one-time sign-in link back to this page */
export async function sendMagicLink(email: string, redirectTo: string): Promise<boolean> {
  magicLinkSentTo.value = '';
  const ok = await attempt(() => backend().auth.sendMagicLink!(email, redirectTo));
  if (ok) magicLinkSentTo.value = email.trim();
  return ok;
}

export async function checkSession(): Promise<void> {
  try {
    applyAuth(await backend().auth.current());
  } catch (e) {
    loginError.value = (e as Error).message;
    applyAuth({ signedIn: false, user: null });
  }
}

export async function logout(): Promise<void> {
  try {
    await backend().auth.logout();
  } finally {
    applyAuth({ signedIn: false, user: null });
  }
}

export async function loadConfig(): Promise<void> {
  const b = backend();
  const [c, op] = await Promise.all([b.config(), b.auth.isOperator()]);
  config.value = c;
  operator.value = op;
}

export async function pollStatus(): Promise<void> {
  try {
    status.value = await backend().status();
    statusError.value = '';
  } catch (e) {
    statusError.value = (e as Error).message;
  }
}
