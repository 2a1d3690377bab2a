// Auth + config + server status: the app's global state.
import { signal } from '@preact/signals';
import { api, ApiError } from '../api/client';
import type { Config, Status } from '../api/types';

export const authed = signal<boolean | null>(null); // null = checking
export const loginError = signal<string>('');
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

export async function login(token: string): Promise<boolean> {
  loginError.value = '';
  try {
    await api.login(token.trim());
    authed.value = true;
    return true;
  } catch (e) {
    const err = e as ApiError;
    loginError.value = err.status === 429 ? 'Too many attempts — wait and retry.' : err.status === 401 ? 'Wrong token.' : err.message;
    authed.value = false;
    return false;
  }
}

export async function checkSession(): Promise<void> {
  try {
    await api.session();
    authed.value = true;
  } catch (e) {
    // A gateway without /api/session yet: fall back to a cheap authenticated call.
    if (e instanceof ApiError && e.status === 404) {
      try {
        await api.config();
        authed.value = true;
        return;
      } catch {
        /* fallthrough */
      }
    }
    authed.value = false;
  }
}

export async function logout(): Promise<void> {
  try {
    await api.logout();
  } finally {
    authed.value = false;
  }
}

export async function loadConfig(): Promise<void> {
  config.value = await api.config();
}

export async function pollStatus(): Promise<void> {
  try {
    status.value = await api.status();
    statusError.value = '';
  } catch (e) {
    statusError.value = (e as Error).message;
  }
}
