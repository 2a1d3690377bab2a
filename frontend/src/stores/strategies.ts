// Strategies (the gateway's alone, like operations): rows, open alerts, P&L per strategy of
// a New York day, and the enable / disable / flatten actions.
import { signal } from '@preact/signals';
import type { Strategies, StrategyAction, StrategyPnl } from '../api/strategies';
import { backend } from '../backend';
import type { OpsApi } from '../backend/types';
import { nyDate } from '../lib/nytime';

export const strategies = signal<Strategies | null>(null);
export const strategyPnl = signal<StrategyPnl | null>(null);
export const pnlDay = signal<string>(nyDate(Date.now()));
export const strategiesError = signal('');

export const available = (): boolean => backend().ops != null;
const ops = (): OpsApi => backend().ops as OpsApi;

export async function refresh(): Promise<void> {
  if (!available()) return;
  const [s, p] = await Promise.allSettled([ops().strategies(), ops().strategiesPnl(pnlDay.value)]);
  if (s.status === 'fulfilled') strategies.value = s.value;
  if (p.status === 'fulfilled') strategyPnl.value = p.value;
  const failed = [s, p].find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  strategiesError.value = failed ? (failed.reason as Error).message : '';
}

export async function act(id: string, action: StrategyAction): Promise<void> {
  strategiesError.value = '';
  try {
    await ops().strategyAction(id, action);
  } catch (e) {
    strategiesError.value = (e as Error).message;
  }
  await refresh();
}

export async function showDay(day: string): Promise<void> {
  pnlDay.value = day;
  await refresh();
}
