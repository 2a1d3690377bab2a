// Staleness (no DOM): data is stale when the market is open and nothing new arrived for
// more than STALE_MS. The clock is injected so tests pin time.
export const STALE_MS = 3_000;

export type Clock = () => number;

export class Freshness {
  private last: number | null = null;
  constructor(private readonly clock: Clock, private readonly limitMs = STALE_MS) {}

  /** Record a data update (a live message with rows, or a quote refresh). */
  touch(at: number = this.clock()): void {
    if (this.last == null || at > this.last) this.last = at;
  }

  lastUpdate(): number | null {
    return this.last;
  }

  /** Milliseconds since the last update (null before the first). */
  age(): number | null {
    return this.last == null ? null : Math.max(0, this.clock() - this.last);
  }

  /** Stale only matters while the market is open; a closed market is quiet by nature. */
  isStale(marketOpen: boolean): boolean {
    if (!marketOpen) return false;
    const a = this.age();
    return a == null || a > this.limitMs;
  }
}

export function formatAge(ms: number | null): string {
  if (ms == null) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min`;
  return `${Math.floor(ms / 3_600_000)} h`;
}
