import { describe, expect, it } from 'vitest';
import { CandleBook, TIMEFRAMES, bucketStart, columnsToCandles, type Tf } from '../src/lib/candles';
import { nyDate, nyWallToMs } from '../src/lib/nytime';

const T0 = nyWallToMs(2026, 3, 6, 10, 0); // Fri 10:00 New York (EST)

describe('bucketStart', () => {
  it('aligns intraday buckets', () => {
    const t = T0 + 7 * 60_000 + 31_400; // 10:07:31.4
    expect(bucketStart(t, '1s')).toBe(T0 + 7 * 60_000 + 31_000);
    expect(bucketStart(t, '1m')).toBe(T0 + 7 * 60_000);
    expect(bucketStart(t, '5m')).toBe(T0 + 5 * 60_000);
    expect(bucketStart(t, '15m')).toBe(T0);
    expect(bucketStart(t, '1h')).toBe(T0);
  });
  it('1D starts at New York midnight, not UTC midnight', () => {
    // 21:30 New York on Mar 6 is already Mar 7 in UTC.
    const late = nyWallToMs(2026, 3, 6, 21, 30);
    expect(new Date(late).toISOString().slice(0, 10)).toBe('2026-03-07');
    expect(bucketStart(late, '1D')).toBe(nyWallToMs(2026, 3, 6, 0, 0));
    expect(new Date(bucketStart(late, '1D')).toISOString()).toBe('2026-03-06T05:00:00.000Z');
    expect(nyDate(late)).toBe('2026-03-06');
  });
  it('1D and 1h follow daylight saving', () => {
    // DST begins Sun 2026-03-08: Monday midnight is 04:00Z, not 05:00Z.
    const mon = nyWallToMs(2026, 3, 9, 9, 45);
    expect(new Date(bucketStart(mon, '1D')).toISOString()).toBe('2026-03-09T04:00:00.000Z');
    expect(new Date(bucketStart(mon, '1h')).toISOString()).toBe('2026-03-09T13:00:00.000Z');
    // Fall back: Sun 2026-11-01 is 25 hours long; Monday midnight is 05:00Z.
    const nov = nyWallToMs(2026, 11, 2, 0, 30);
    expect(new Date(bucketStart(nov, '1D')).toISOString()).toBe('2026-11-02T05:00:00.000Z');
    const sunLate = nyWallToMs(2026, 11, 1, 23, 59);
    expect(new Date(bucketStart(sunLate, '1D')).toISOString()).toBe('2026-11-01T04:00:00.000Z');
  });
});

describe('CandleBook folding', () => {
  for (const tf of TIMEFRAMES) {
    it(`replaces a re-published second instead of adding it (${tf})`, () => {
      const b = new CandleBook(tf as Tf);
      const s = T0 + 12_000;
      b.apply({ ts: s, price: 100, volume: 10 });
      b.apply({ ts: s, price: 101, volume: 25 }); // same second, volume so far 25
      b.apply({ ts: s, price: 100.5, volume: 25 }); // duplicate flush
      const c = b.candles[b.candles.length - 1];
      expect(c.v).toBe(25);
      expect(c.o).toBe(100);
      expect(c.h).toBe(101);
      expect(c.c).toBe(100.5);
      b.apply({ ts: s + 1000, price: 99, volume: 5 });
      const last = b.candles[b.candles.length - 1];
      if (tf === '1s') {
        expect(b.candles).toHaveLength(2);
        expect(last).toEqual({ t: s + 1000, o: 99, h: 99, l: 99, c: 99, v: 5 });
      } else {
        expect(b.candles).toHaveLength(1);
        expect(last).toEqual({ t: bucketStart(s, tf as Tf), o: 100, h: 101, l: 99, c: 99, v: 30 });
      }
    });
  }

  it('opens a new bucket at the boundary (1m) and folds onto stored history', () => {
    const b = new CandleBook('1m');
    b.setHistory([{ t: T0, o: 10, h: 11, l: 9, c: 10.5, v: 1000 }]);
    b.apply({ ts: T0 + 59_000, price: 11.5, volume: 7 });
    expect(b.candles[0]).toEqual({ t: T0, o: 10, h: 11.5, l: 9, c: 11.5, v: 1007 });
    b.apply({ ts: T0 + 60_000, price: 11.4, volume: 3 });
    expect(b.candles).toHaveLength(2);
    expect(b.candles[1]).toEqual({ t: T0 + 60_000, o: 11.4, h: 11.4, l: 11.4, c: 11.4, v: 3 });
    // A late re-publish of the previous bucket's last second still lands there, by difference.
    b.apply({ ts: T0 + 59_000, price: 11.5, volume: 9 });
    expect(b.candles[0].v).toBe(1009);
    expect(b.candles[1].c).toBe(11.4); // a late second never moves the newer close
  });

  it('history loaded after live rows keeps them counted (no double add)', () => {
    const b = new CandleBook('5m');
    b.apply({ ts: T0 + 1000, price: 50, volume: 100 });
    // the server's candle already includes that committed second
    b.setHistory([{ t: T0, o: 49, h: 50, l: 48, c: 50, v: 900 }]);
    b.apply({ ts: T0 + 1000, price: 50, volume: 120 });
    expect(b.candles[0].v).toBe(920);
  });

  it('1D folds a whole session into one candle, next NY day into the next', () => {
    const b = new CandleBook('1D');
    b.apply({ ts: nyWallToMs(2026, 3, 6, 9, 30), price: 20, volume: 1 });
    b.apply({ ts: nyWallToMs(2026, 3, 6, 15, 59), price: 22, volume: 2 });
    b.apply({ ts: nyWallToMs(2026, 3, 6, 19, 30), price: 21, volume: 3 }); // after hours, still Mar 6 in NY
    expect(b.candles).toHaveLength(1);
    expect(b.candles[0]).toMatchObject({ o: 20, h: 22, l: 20, c: 21, v: 6 });
    b.apply({ ts: nyWallToMs(2026, 3, 9, 9, 30), price: 23, volume: 4 });
    expect(b.candles).toHaveLength(2);
  });

  it('mergeBackfill replaces from the first returned bucket on', () => {
    const b = new CandleBook('1m');
    b.setHistory([
      { t: T0, o: 1, h: 1, l: 1, c: 1, v: 1 },
      { t: T0 + 60_000, o: 2, h: 2, l: 2, c: 2, v: 2 },
    ]);
    b.mergeBackfill([
      { t: T0 + 60_000, o: 2, h: 3, l: 2, c: 3, v: 9 },
      { t: T0 + 120_000, o: 3, h: 3, l: 3, c: 3, v: 1 },
    ]);
    expect(b.candles.map((c) => c.v)).toEqual([1, 9, 1]);
  });

  it('ignores rows without a price', () => {
    const b = new CandleBook('1m');
    expect(b.apply({ ts: T0, price: null, volume: 5 })).toBeNull();
    expect(b.candles).toHaveLength(0);
  });

  it('columnsToCandles skips empty buckets', () => {
    expect(
      columnsToCandles({ t: [1, 2], o: [1, null], h: [2, null], l: [0.5, null], c: [1.5, null], v: [10, null] }),
    ).toEqual([{ t: 1, o: 1, h: 2, l: 0.5, c: 1.5, v: 10 }]);
  });
});

import { SecondVolume } from '../src/lib/candles';
describe('SecondVolume', () => {
  it('adds only the growth of a re-published second', () => {
    const s = new SecondVolume(1000);
    s.apply(T0, 10);
    s.apply(T0 + 400, 15); // same second
    s.apply(T0 + 1000, 5);
    expect(s.total).toBe(1020);
    s.apply(T0, 12); // smaller re-publish never subtracts
    expect(s.total).toBe(1020);
  });
});

import { RecentSeconds, backfillLimit } from '../src/lib/candles';
describe('loading history while live', () => {
  it('seconds seen before the request are not counted twice', () => {
    const recent = new RecentSeconds();
    recent.apply('SPY', T0 + 5000, 40); // the open second, provisional
    const b = new CandleBook('1m');
    b.setHistory([{ t: T0, o: 1, h: 1, l: 1, c: 1, v: 500 }], recent.snapshot('SPY')); // includes those 40
    b.apply({ ts: T0 + 5000, price: 1, volume: 55 }); // re-published: +15 only
    expect(b.candles[0].v).toBe(515);
  });
  it('backfill asks for the buckets since the last one held', () => {
    expect(backfillLimit(T0, T0 + 10 * 60_000 + 5, '1m')).toBe(13);
    expect(backfillLimit(T0, T0 + 1000, '1h')).toBe(3); // the held bucket, the next, one spare
    expect(backfillLimit(null, T0, '1s')).toBe(2000);
    expect(backfillLimit(T0 - 86_400_000, T0, '1s')).toBe(2000);
  });
});
