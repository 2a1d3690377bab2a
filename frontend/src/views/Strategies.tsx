// Strategies: mode and state of each, enable / disable / flatten (confirmed first), and the
// P&L per strategy of a New York day (average cost over the fills, as `streamdesk report`).
import { useEffect } from 'preact/hooks';
import { act, available, pnlDay, refresh, showDay, strategies, strategiesError, strategyPnl } from '../stores/strategies';

export function StrategiesView() {
  useEffect(() => {
    void refresh();
    const iv = setInterval(() => void refresh(), 5000);
    return () => clearInterval(iv);
  }, []);
  const s = strategies.value?.strategies ?? [];
  const p = strategyPnl.value?.strategies ?? [];
  return (
    <section class="panel" data-testid="strategies">
      <h2>Strategies</h2>
      {!available() && <p class="muted">needs the gateway</p>}
      {strategiesError.value && <p class="err">{strategiesError.value}</p>}
      <table class="grid">
        <tbody>
          {s.map((x) => (
            <tr data-testid={`strategy-${x.id}`}>
              <td class="sym">{x.id}</td>
              <td>{x.mode.toUpperCase()}</td>
              <td data-testid={`strategy-state-${x.id}`}>
                {x.enabled ? 'on' : 'off'} <span class="muted">{x.disabled_reason}</span>
              </td>
              <td>
                <button data-testid={`strategy-toggle-${x.id}`} onClick={() => void act(x.id, x.enabled ? 'disable' : 'enable')}>
                  {x.enabled ? 'Disable' : 'Enable'}
                </button>
                <button data-testid={`strategy-flatten-${x.id}`} onClick={() => confirm(`Flatten ${x.id}: cancel, close at market, disable?`) && void act(x.id, 'flatten')}>
                  Flatten
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>
        P&amp;L <input type="date" value={pnlDay.value} onChange={(e) => void showDay((e.target as HTMLInputElement).value)} />
      </h2>
      <table class="grid" data-testid="strategy-pnl">
        <tbody>
          {p.map((r) => (
            <tr data-testid={`strategy-pnl-${r.strategy}`}>
              <td class="sym">{r.strategy}</td>
              <td class="num">{r.fills}</td>
              <td class="num">{r.realized}</td>
              <td class="num">{r.unrealized ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
