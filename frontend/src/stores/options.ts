// Option chain store: REST snapshot per underlying, patched by live option rows.
import { signal, type Signal } from '@preact/signals';
import type { Chain, Contract } from '../api/types';
import { backend } from '../backend';
import type { OptionItem } from '../lib/feed';

export const underlying = signal('');
export const chain = signal<Chain | null>(null);
export const chainError = signal('');
export const expiration = signal<string>('');
export const contracts = new Map<string, Signal<Contract & { changedAt?: number }>>();
/** Latest mark per option symbol (mid, else last), for P&L. */
export const optionMarks = signal<Map<string, number>>(new Map());

function mark(bid: number | null, ask: number | null, last: number | null): number | null {
  if (bid != null && ask != null && ask >= bid && bid > 0) return Math.round(((bid + ask) / 2) * 100) / 100;
  return last;
}

export async function loadChain(u: string): Promise<void> {
  if (!u) return;
  try {
    const c = await backend().options(u);
    if (underlying.value !== u) return;
    contracts.clear();
    const marks = new Map(optionMarks.value);
    for (const k of c.contracts) {
      contracts.set(k.ticker, signal(k));
      const m = mark(k.bid, k.ask, k.last_price);
      if (m != null) marks.set(k.ticker, m);
    }
    optionMarks.value = marks;
    chain.value = c;
    chainError.value = '';
    if (!c.expirations.includes(expiration.value)) expiration.value = c.expirations[0] ?? '';
  } catch (e) {
    chainError.value = (e as Error).message;
  }
}

export function applyOptionRows(rows: OptionItem[]): void {
  let marks: Map<string, number> | null = null;
  const t = Date.now();
  for (const r of rows) {
    const s = contracts.get(r.ticker);
    if (s) {
      const o = s.value;
      const changed = r.bid !== o.bid || r.ask !== o.ask || r.last !== o.last_price;
      s.value = {
        ...o,
        bid: r.bid ?? o.bid,
        ask: r.ask ?? o.ask,
        last_price: r.last ?? o.last_price,
        delta: r.delta ?? o.delta,
        implied_volatility: r.iv ?? o.implied_volatility,
        changedAt: changed ? t : o.changedAt,
      };
    }
    const m = mark(r.bid, r.ask, r.last);
    if (m != null && optionMarks.value.get(r.ticker) !== m) {
      marks ??= new Map(optionMarks.value);
      marks.set(r.ticker, m);
    }
  }
  if (marks) optionMarks.value = marks;
}
