// The US equity market's sessions on the New York clock, for a backend that has no server to
// ask (Supabase mode). Weekdays only; exchange holidays and early closes are NOT known here
// (the gateway's /api/status uses the shared market calendar), so a holiday shows as open.
import { nyParts, nyWeekday } from './nytime';

export type MarketSession = 'pre' | 'regular' | 'post' | 'closed';

export const PRE_OPEN_MIN = 4 * 60;
export const OPEN_MIN = 9 * 60 + 30;
export const CLOSE_MIN = 16 * 60;
export const POST_CLOSE_MIN = 20 * 60;

export function marketSession(ms: number): MarketSession {
  const wd = nyWeekday(ms);
  if (wd === 0 || wd === 6) return 'closed';
  const p = nyParts(ms);
  const m = p.hour * 60 + p.minute;
  if (m < PRE_OPEN_MIN) return 'closed';
  if (m < OPEN_MIN) return 'pre';
  if (m < CLOSE_MIN) return 'regular';
  if (m < POST_CLOSE_MIN) return 'post';
  return 'closed';
}

/** Minute of the New York day (0..1439) of `ms`. */
export function nyMinute(ms: number): number {
  const p = nyParts(ms);
  return p.hour * 60 + p.minute;
}
