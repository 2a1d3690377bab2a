import { useLayoutEffect, useRef } from 'preact/hooks';
import { quoteSignal, selected, tickers } from '../stores/market';
import { change } from '../lib/pnl';
import { cls, fmtNum, fmtSigned, fmtVol } from './format';

/** A cell that flashes for 500 ms when its value moves: a class added and removed again — two
 * paints, no per-frame animation work (a CSS animation kept the compositor busy every frame). */
function Flash({ at, dir, testid, text }: { at: number; dir: number; testid: string; text: string }) {
  const ref = useRef<HTMLSpanElement>(null);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el || !at) return;
    const c = dir > 0 ? 'flash-up' : 'flash-down';
    el.classList.remove('flash-up', 'flash-down');
    el.classList.add(c);
    const h = setTimeout(() => el.classList.remove(c), 500);
    return () => clearTimeout(h);
  }, [at]);
  return (
    <span ref={ref} data-testid={testid} class="cell">
      {text}
    </span>
  );
}

function Row({ t }: { t: string }) {
  const q = quoteSignal(t).value;
  const ch = change(q.last, q.prev_close);
  const spread = q.bid != null && q.ask != null ? q.ask - q.bid : null;
  const sign = ch.abs == null ? '' : ch.abs > 0 ? 'up' : ch.abs < 0 ? 'down' : '';
  return (
    <tr
      data-testid={`wl-${t}`}
      class={cls(selected.value === t && 'sel')}
      onClick={() => (selected.value = t)}
      tabIndex={0}
      onKeyDown={(e) => e.key === 'Enter' && (selected.value = t)}
    >
      <th scope="row">{t}</th>
      <td class="num">
        <Flash at={q.changedAt} dir={q.dir} testid={`wl-last-${t}`} text={fmtNum(q.last)} />
      </td>
      <td class={cls('num', sign)} data-testid={`wl-chg-${t}`}>
        {fmtSigned(ch.abs)}
      </td>
      <td class={cls('num', sign)} data-testid={`wl-pct-${t}`}>
        {ch.pct == null ? '—' : `${fmtSigned(ch.pct)}%`}
      </td>
      <td class="num hide-sm" data-testid={`wl-vol-${t}`}>{fmtVol(q.volume)}</td>
      <td class="num hide-sm">{fmtNum(q.sma9)}</td>
      <td class="num hide-sm">{fmtNum(q.vwap)}</td>
      <td class="num hide-xs">{fmtNum(spread)}</td>
    </tr>
  );
}

export function Watchlist() {
  return (
    <section class="panel" data-testid="watchlist">
      <h2>Watchlist</h2>
      <table class="grid wl">
        <thead>
          <tr>
            <th>Sym</th>
            <th class="num">Last</th>
            <th class="num">Chg</th>
            <th class="num">%</th>
            <th class="num hide-sm">Vol</th>
            <th class="num hide-sm">SMA9</th>
            <th class="num hide-sm">VWAP</th>
            <th class="num hide-xs">Sprd</th>
          </tr>
        </thead>
        <tbody>
          {tickers.value.map((t) => (
            <Row key={t} t={t} />
          ))}
        </tbody>
      </table>
    </section>
  );
}
