// Chart selection state (timeframe, session) shared by the chart and history views, and the
// chart's reads (candles, fills, gaps, signals).
import { signal } from '@preact/signals';
import type { Cross, FillMark, Gap } from '../api/types';
import { backend } from '../backend';
import type { CandlesData } from '../backend/types';
import type { Tf } from '../lib/candles';

export const tf = signal<Tf>('1m');
/** null = the latest session (live). */
export const session = signal<string | null>(null);
export const sessions = signal<string[]>([]);
/** bumped to reload the chart with the same selection (e.g. clicking the current timeframe) */
export const reload = signal(0);
export function pickTf(t: Tf): void {
  if (tf.value === t) reload.value++;
  else tf.value = t;
}
export const crosses = signal<Cross[]>([]);
export const signalsSession = signal<string | null>(null);

let sessionsFor = '';
/** The sessions of `ticker`; the previous ticker's list is dropped at once, so previous/next
 * stay disabled until the right list is in. */
export async function loadSessions(ticker: string): Promise<void> {
  sessionsFor = ticker;
  sessions.value = [];
  try {
    const r = await backend().sessions(ticker);
    if (sessionsFor === ticker) sessions.value = r.sessions;
  } catch {
    /* stays empty */
  }
}

export function shownSession(): string | null {
  return session.value ?? sessions.value[sessions.value.length - 1] ?? null;
}

export function isLive(): boolean {
  const s = sessions.value;
  return session.value == null || session.value === s[s.length - 1];
}

export function stepSession(dir: 1 | -1): void {
  const list = sessions.value;
  if (!list.length) return;
  const cur = shownSession();
  let j: number;
  const i = cur ? list.indexOf(cur) : -1;
  if (i >= 0) j = i + dir;
  else if (cur == null) j = list.length - 1;
  else if (dir < 0) j = list.filter((d) => d < cur).length - 1; // last session before the picked day
  else j = list.findIndex((d) => d > cur); // first session after it
  if (j < 0) j = dir < 0 ? 0 : list.length - 1;
  j = Math.min(list.length - 1, Math.max(0, j));
  session.value = j === list.length - 1 ? null : list[j];
}

/** The backend computes SMA9/VWAP crosses (the gateway does; Supabase mode does not). */
export function signalsAvailable(): boolean {
  return backend().caps.signals;
}

export async function loadSignals(ticker: string, sess: string | null): Promise<void> {
  if (!signalsAvailable()) {
    crosses.value = [];
    signalsSession.value = sess;
    return;
  }
  try {
    const r = await backend().signals(ticker, sess);
    crosses.value = r.crosses;
    signalsSession.value = r.session;
  } catch {
    crosses.value = [];
  }
}

/** The last `limit` candles of `sess` (null: the latest session). */
export function fetchCandles(ticker: string, t: Tf, sess: string | null, limit: number): Promise<CandlesData> {
  return backend().candles(ticker, t, sess, limit);
}

/** The user's fills on `ticker` in `sess` and the stream gaps since `since` (ms), for the
 * chart's markers; a failed read is no markers, not an error. */
export async function fetchMarkers(ticker: string, sess: string | null, since: number | null): Promise<{ fills: FillMark[]; gaps: Gap[] }> {
  const b = backend();
  const [fills, gaps] = await Promise.all([
    b.fills(ticker, sess).catch(() => [] as FillMark[]),
    since != null ? b.gaps(since, 200).catch(() => [] as Gap[]) : Promise.resolve([] as Gap[]),
  ]);
  return { fills, gaps };
}
