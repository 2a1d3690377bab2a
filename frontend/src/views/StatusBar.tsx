import { backend } from '../backend';
import { conn, connAttempt, degrade, freshness, now } from '../stores/market';
import { config, status, statusError } from '../stores/session';
import { formatAge } from '../lib/staleness';
import { nyClock } from '../lib/nytime';
import { cls } from './format';

export function StatusBar() {
  void now.value; // re-render twice a second for the age and the clock
  const st = status.value;
  const cfg = config.value;
  const open = st?.market.open ?? false;
  const age = freshness.age();
  const stale = freshness.isStale(open);
  const kill = st?.kill_switch ?? cfg?.kill_switch ?? false;
  // Without the gateway (Supabase mode) there is no health summary nor kill-switch state to
  // read; the market session is the New York clock's (no holidays).
  const full = backend().caps.health;
  const health = full ? (st?.health?.status ?? (statusError.value ? 'unreachable' : '—')) : 'n/a';
  const c = conn.value;
  const dg = degrade.value;
  return (
    <footer class="statusbar" data-testid="statusbar">
      <span data-testid="status-conn" data-state={c} class={cls('pill', c === 'open' ? 'ok' : c === 'closed' ? 'bad' : 'warn')}>
        {c === 'open' ? 'live' : c === 'reconnecting' ? `reconnecting${connAttempt.value ? ` (${connAttempt.value})` : ''}` : c}
      </span>
      {stale ? (
        <span data-testid="status-stale" class="pill bad blink" role="alert">
          STALE {formatAge(age)}
        </span>
      ) : (
        <span data-testid="status-age" class="pill ok">
          data {formatAge(age)}
        </span>
      )}
      {dg > 0 && (
        <span data-testid="status-degrade" data-level={dg} class="pill warn" title="The writer reduces what it broadcasts to stay inside the Supabase plan's Realtime quotas (docs/supabase.md)">
          degraded feed (level {dg})
        </span>
      )}
      <span data-testid="status-market" data-open={open ? 'true' : 'false'} class={cls('pill', open ? 'ok' : 'muted')} title={full ? '' : 'from the New York clock: exchange holidays are not known here'}>
        market {st ? (open ? 'open' : st.market.session === 'closed' ? 'closed' : st.market.session) : '?'}
      </span>
      <span data-testid="status-health" class={cls('pill', health === 'ok' ? 'ok' : health === 'degraded' ? 'warn' : health === '—' || health === 'n/a' ? 'muted' : 'bad')} title={full ? '' : 'the health summary needs the gateway'}>
        health {health}
      </span>
      {full ? (
        <span data-testid="status-kill" data-engaged={kill ? 'true' : 'false'} class={cls('pill', kill ? 'bad' : 'muted')}>
          {kill ? 'KILL SWITCH ON' : 'kill switch off'}
        </span>
      ) : (
        <span data-testid="status-kill" data-engaged="unknown" class="pill muted" title="the kill switch is read by the executor; its state needs the gateway">
          kill switch: at the executor
        </span>
      )}
      <span class="pill clock" data-testid="ny-clock" title="New York time">
        NY {nyClock(Date.now())}
      </span>
      <span class="spacer" />
      <a href="https://www.tradingview.com/" target="_blank" rel="noopener" class="tv">
        Charts by TradingView
      </a>
    </footer>
  );
}
