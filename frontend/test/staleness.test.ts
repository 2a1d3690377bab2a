import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Freshness, formatAge } from '../src/lib/staleness';

describe('Freshness', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-03-06T15:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('turns stale after 3 s without updates while the market is open', () => {
    const f = new Freshness(() => Date.now());
    expect(f.isStale(true)).toBe(true); // nothing yet
    f.touch();
    vi.advanceTimersByTime(3000);
    expect(f.age()).toBe(3000);
    expect(f.isStale(true)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(f.isStale(true)).toBe(true);
    expect(f.isStale(false)).toBe(false); // closed market: quiet is normal
    f.touch();
    expect(f.isStale(true)).toBe(false);
  });

  it('works with an injected clock and ignores older touches', () => {
    let now = 1000;
    const f = new Freshness(() => now);
    f.touch(5000);
    f.touch(2000);
    now = 6000;
    expect(f.age()).toBe(1000);
    expect(formatAge(f.age())).toBe('1.0 s');
    expect(formatAge(null)).toBe('—');
  });
});
