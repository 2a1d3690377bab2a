// Operations (the gateway's alone): Schwab token + re-auth, services pause/resume, the
// streamed universe, the kill switch, CSV export links. `available()` is false without the
// gateway (Supabase mode): the panel then says operations need it.
import { signal } from '@preact/signals';
import type { KillSwitch, TokenInfo, Universe } from '../api/types';
import { backend } from '../backend';
import type { OpsApi } from '../backend/types';
import { loadConfig, pollStatus } from './session';

export const token = signal<TokenInfo | null>(null);
export const universe = signal<Universe | null>(null);
export const kill = signal<KillSwitch | null>(null);
export const opsError = signal('');

export function available(): boolean {
  return backend().ops != null;
}

function ops(): OpsApi {
  const o = backend().ops;
  if (!o) throw new Error('operations need the gateway');
  return o;
}

/** Run an operation; its error is shown in the panel. */
export async function run(fn: () => Promise<unknown>): Promise<void> {
  opsError.value = '';
  try {
    await fn();
  } catch (e) {
    opsError.value = (e as Error).message;
  }
}

export async function refresh(): Promise<void> {
  if (!available()) return;
  const o = ops();
  const [t, u, k] = await Promise.allSettled([o.token(), o.universe(), o.killSwitch()]);
  if (t.status === 'fulfilled') token.value = t.value;
  if (u.status === 'fulfilled') universe.value = u.value;
  if (k.status === 'fulfilled') kill.value = k.value;
}

export const startAuth = () => ops().authStart();
export async function completeAuth(redirectUrl: string): Promise<void> {
  await ops().authComplete(redirectUrl);
  await refresh();
}
export async function setPaused(name: string, paused: boolean): Promise<void> {
  await (paused ? ops().pause(name) : ops().resume(name));
  await pollStatus();
}
export async function addToUniverse(kind: 'equity' | 'option', symbol: string): Promise<void> {
  universe.value = await ops().universeAdd(kind, symbol);
  await loadConfig();
}
export async function removeFromUniverse(kind: 'equity' | 'option', symbol: string): Promise<void> {
  await ops().universeRemove(kind, symbol);
  universe.value = await ops().universe();
  await loadConfig();
}
export async function setKillSwitch(engaged: boolean, reason?: string): Promise<void> {
  kill.value = await ops().setKillSwitch(engaged, reason);
  await pollStatus();
}
export function exportUrl(table: 'equity' | 'indicators' | 'options', session: string | null): string {
  return ops().exportUrl(table, session);
}
