// Candle buckets and live folding (no DOM).
//
// Each live equity item is one per-second row: `ts` is the start of the second and `volume` is
// what traded IN THAT SECOND so far. The open second is re-published by later flushes with a
// larger volume, so rows are keyed by (ticker, second) and REPLACE what was seen: a bucket's
// volume grows by the difference, never by the whole row again.
import { nyMidnight, nyParts, nyWallToMs } from './nytime';

export const TIMEFRAMES = ['1s', '1m', '5m', '15m', '1h', '1D'] as const;
export type Tf = (typeof TIMEFRAMES)[number];

const FIXED: Record<Exclude<Tf, '1D'>, number> = {
  '1s': 1_000,
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
};

export function tfMs(tf: Tf): number {
  return tf === '1D' ? 86_400_000 : FIXED[tf];
}

/** Start (ms) of the `tf` bucket holding `ms`, on New York boundaries. New York's offset from
 * UTC is a whole number of hours, so every bucket up to 1h is an epoch floor; 1h buckets are
 * computed on the wall clock anyway so a future half-hour zone cannot skew them. 1D is New York
 * midnight (23 or 25 hours long on DST days). */
export function bucketStart(ms: number, tf: Tf): number {
  if (tf === '1D') return nyMidnight(ms);
  if (tf === '1h') {
    const p = nyParts(ms);
    return nyWallToMs(p.year, p.month, p.day, p.hour);
  }
  const w = FIXED[tf];
  return Math.floor(ms / w) * w;
}

export interface Candle {
  t: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
}

export interface SecondRow {
  ts: number;
  price: number | null;
  volume: number | null;
}

/** Columnar candles as the gateway sends them. */
export interface CandleColumns {
  t: number[];
  o: (number | null)[];
  h: (number | null)[];
  l: (number | null)[];
  c: (number | null)[];
  v: (number | null)[];
}

export function columnsToCandles(cols: CandleColumns): Candle[] {
  const out: Candle[] = [];
  for (let i = 0; i < cols.t.length; i++) {
    const c = cols.c[i];
    if (c == null) continue;
    out.push({
      t: cols.t[i],
      o: cols.o[i] ?? c,
      h: cols.h[i] ?? c,
      l: cols.l[i] ?? c,
      c,
      v: cols.v[i] ?? 0,
    });
  }
  return out;
}

/** The candles of one ticker at one timeframe: stored history plus the forming candle. */
export class CandleBook {
  readonly tf: Tf;
  candles: Candle[] = [];
  /** volume already counted per second (ms) — for replace-not-add. */
  private seen = new Map<number, number>();
  /** last price per second already applied (for the close of re-published seconds). */
  private lastTs = -Infinity;

  constructor(tf: Tf) {
    this.tf = tf;
  }

  /** Replace history with what the server returned. Seconds already seen live stay "counted":
   * the server's rows are committed before the live message that carried them. */
  setHistory(candles: Candle[], seenBefore?: ReadonlyMap<number, number>): void {
    this.candles = candles.slice().sort((a, b) => a.t - b.t);
    // Seconds seen live before the request are committed, so inside these candles already:
    // a later re-publish of the open second then adds only its growth.
    if (seenBefore) for (const [s, v] of seenBefore) if (v > (this.seen.get(s) ?? 0)) this.seen.set(s, v);
    const last = this.candles[this.candles.length - 1];
    this.lastTs = last ? Math.max(this.lastTs, last.t) : this.lastTs;
    this.trim();
  }

  /** Merge a backfill: every bucket from the first returned one on is replaced. */
  mergeBackfill(candles: Candle[]): void {
    if (!candles.length) return;
    const sorted = candles.slice().sort((a, b) => a.t - b.t);
    const from = sorted[0].t;
    const keep = this.candles.filter((c) => c.t < from);
    this.candles = keep.concat(sorted);
    this.trim();
  }

  lastBucket(): number | null {
    const c = this.candles[this.candles.length - 1];
    return c ? c.t : null;
  }

  /** Fold one per-second row; returns the candle it changed (or null if ignored). */
  apply(row: SecondRow): Candle | null {
    if (row.price == null || !Number.isFinite(row.price)) return null;
    const sec = Math.floor(row.ts / 1000) * 1000;
    const vol = row.volume ?? 0;
    const prev = this.seen.get(sec) ?? 0;
    const delta = vol > prev ? vol - prev : 0;
    if (vol > prev) this.seen.set(sec, vol);
    const t = bucketStart(sec, this.tf);
    const n = this.candles.length;
    const last = n ? this.candles[n - 1] : null;
    if (!last || t > last.t) {
      const c: Candle = { t, o: row.price, h: row.price, l: row.price, c: row.price, v: delta };
      this.candles.push(c);
      this.lastTs = sec;
      this.trim();
      return c;
    }
    // Same or older bucket: find it (usually the last).
    let c: Candle | null = null;
    for (let i = n - 1; i >= 0 && i >= n - 4; i--) {
      if (this.candles[i].t === t) {
        c = this.candles[i];
        break;
      }
      if (this.candles[i].t < t) break;
    }
    if (!c) return null;
    c.v += delta;
    if (row.price > c.h) c.h = row.price;
    if (row.price < c.l) c.l = row.price;
    if (sec >= this.lastTs) {
      c.c = row.price;
      this.lastTs = sec;
    }
    return c;
  }

  /** Forget per-second bookkeeping older than the previous bucket. */
  private trim(): void {
    const n = this.candles.length;
    if (n < 2 || this.seen.size < 4096) return;
    const floor = this.candles[n - 2].t;
    for (const k of this.seen.keys()) if (k < floor) this.seen.delete(k);
  }
}

/** Buckets to refetch after a reconnect: those since the last one held, plus margin. */
export function backfillLimit(lastBucket: number | null, now: number, tf: Tf, max = 2000): number {
  if (lastBucket == null) return max;
  return Math.min(max, Math.max(2, Math.ceil((now - lastBucket) / tfMs(tf)) + 2));
}

/** Latest volume per (ticker, second) seen live, for the last `keepMs` (default 2 min). */
export class RecentSeconds {
  private by = new Map<string, Map<number, number>>();
  constructor(private readonly keepMs = 120_000) {}
  apply(ticker: string, ts: number, volume: number | null): void {
    let m = this.by.get(ticker);
    if (!m) this.by.set(ticker, (m = new Map()));
    const sec = Math.floor(ts / 1000) * 1000;
    const v = volume ?? 0;
    if (v > (m.get(sec) ?? 0)) m.set(sec, v);
    if (m.size > 256) for (const k of m.keys()) if (k < sec - this.keepMs) m.delete(k);
  }
  snapshot(ticker: string): Map<number, number> {
    return new Map(this.by.get(ticker) ?? []);
  }
}

/** Session volume from per-second rows, replace-not-add (for the watchlist's volume). */
export class SecondVolume {
  private seen = new Map<number, number>();
  total: number;
  constructor(base = 0) {
    this.total = base;
  }
  /** Reset to a server total; seconds seen so far are taken as already counted in it. */
  reset(base: number): void {
    this.total = base;
  }
  apply(ts: number, volume: number | null): number {
    const sec = Math.floor(ts / 1000) * 1000;
    const v = volume ?? 0;
    const prev = this.seen.get(sec) ?? 0;
    if (v > prev) {
      this.total += v - prev;
      this.seen.set(sec, v);
      if (this.seen.size > 600) {
        for (const k of this.seen.keys()) if (k < sec - 300_000) this.seen.delete(k);
      }
    }
    return this.total;
  }
}
