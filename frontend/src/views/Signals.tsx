import { crosses, signalsAvailable, signalsSession } from '../stores/chart';
import { selected } from '../stores/market';
import { nyClock, nyDate } from '../lib/nytime';
import { fmtNum } from './format';

export function SignalsView() {
  if (!signalsAvailable()) {
    return (
      <section class="panel" data-testid="signals">
        <h2>Signals</h2>
        <p class="muted" data-testid="signals-unavailable">
          SMA9/VWAP crosses need the gateway (it finds them in a whole session of per-second indicators); the chart still shows both lines.
        </p>
      </section>
    );
  }
  const xs = crosses.value;
  const today = nyDate(Date.now());
  const todays = xs.filter((x) => nyDate(x.t) === today).length;
  return (
    <section class="panel" data-testid="signals">
      <h2>
        Signals <span class="muted">SMA9 × VWAP · {selected.value} · {signalsSession.value ?? ''}</span>
      </h2>
      <p>
        Today: <strong data-testid="signals-today">{todays}</strong> crosses
      </p>
      <ol class="signals scroll-y">
        {xs
          .slice()
          .reverse()
          .map((x) => (
            <li class={x.direction === 'up' ? 'up' : 'down'}>
              <time>{nyClock(x.t)}</time> {x.direction === 'up' ? '▲ up' : '▼ down'} @ {fmtNum(x.price)}
            </li>
          ))}
        {!xs.length && <li class="muted">no crosses</li>}
      </ol>
    </section>
  );
}
