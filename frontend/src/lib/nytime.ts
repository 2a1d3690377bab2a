// New York calendar helpers (no DOM). Markets run on America/New_York wall-clock time.
export const NY_TZ = 'America/New_York';

const partsFmt = new Intl.DateTimeFormat('en-US', {
  timeZone: NY_TZ,
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

export interface NyParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export function nyParts(ms: number): NyParts {
  const out: Record<string, number> = {};
  for (const p of partsFmt.formatToParts(new Date(ms))) {
    if (p.type !== 'literal') out[p.type] = Number(p.value);
  }
  return {
    year: out.year,
    month: out.month,
    day: out.day,
    hour: out.hour === 24 ? 0 : out.hour,
    minute: out.minute,
    second: out.second,
  };
}

/** Offset of New York from UTC at instant `ms`, in ms (e.g. -4h in summer, -5h in winter). */
export function nyOffsetMs(ms: number): number {
  const p = nyParts(ms);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The instant of New York wall-clock `y-m-d h:mi` (DST-aware). */
export function nyWallToMs(y: number, m: number, d: number, h = 0, mi = 0): number {
  const guess = Date.UTC(y, m - 1, d, h, mi);
  // Two passes settle the offset even next to a DST switch.
  let t = guess - nyOffsetMs(guess);
  t = guess - nyOffsetMs(t);
  return t;
}

/** New York date `YYYY-MM-DD` of instant `ms`. */
export function nyDate(ms: number): string {
  const p = nyParts(ms);
  return `${p.year}-${pad(p.month)}-${pad(p.day)}`;
}

/** Instant of New York midnight starting the day that contains `ms`. */
export function nyMidnight(ms: number): number {
  const p = nyParts(ms);
  return nyWallToMs(p.year, p.month, p.day);
}

export function nyClock(ms: number): string {
  const p = nyParts(ms);
  return `${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`;
}

/** Shift an instant so a UTC-rendering chart shows New York wall-clock time (seconds). */
export function chartTime(ms: number): number {
  return Math.floor((ms + nyOffsetMs(ms)) / 1000);
}

/** Inverse of chartTime (approximate within an hour of a DST switch). */
export function fromChartTime(sec: number): number {
  const ms = sec * 1000;
  return ms - nyOffsetMs(ms - nyOffsetMs(ms));
}

export function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** [New York midnight of `day` (YYYY-MM-DD), the next New York midnight) in ms. */
export function nySessionBounds(day: string): [number, number] {
  const [y, m, d] = day.split('-').map(Number);
  return [nyWallToMs(y, m, d), nyWallToMs(y, m, d + 1)];
}

/** Day of the week of New York date of `ms`: 0 = Sunday. */
export function nyWeekday(ms: number): number {
  const p = nyParts(ms);
  return new Date(Date.UTC(p.year, p.month - 1, p.day)).getUTCDay();
}
