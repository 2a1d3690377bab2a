import type { Signal } from '@preact/signals';
import type { Contract } from '../api/types';
import { chain, chainError, contracts, expiration, underlying } from '../stores/options';
import { config } from '../stores/session';
import { openTicket, pnl } from '../stores/trading';
import { roundToTick, tickSize } from '../lib/ticks';
import { cls, fmtNum } from './format';

function pick(c: Contract, side: 'bid' | 'ask') {
  const px = side === 'bid' ? c.bid : c.ask;
  const held = pnl.value?.positions.find((p) => p.symbol === c.ticker)?.quantity ?? 0;
  const instruction = side === 'ask' ? (held < 0 ? 'BUY_TO_CLOSE' : 'BUY_TO_OPEN') : held > 0 ? 'SELL_TO_CLOSE' : 'SELL_TO_OPEN';
  openTicket({
    symbol: c.ticker,
    asset_type: 'OPTION',
    instruction,
    order_type: 'LIMIT',
    limit_price: px == null ? null : roundToTick(px, tickSize(px, 'OPTION')),
    quantity: 1,
  });
}

function Side({ s, put }: { s?: Signal<Contract>; put?: boolean }) {
  if (!s) {
    const empty = [<td />, <td />, <td class="hide-sm" />, <td class="hide-sm" />, <td class="hide-md" />, <td class="hide-md" />, <td class="hide-md" />, <td class="hide-md" />, <td class="hide-md" />];
    return <>{put ? empty : empty.reverse()}</>;
  }
  const c = s.value;
  const cells = [
    <td class="num click" data-testid={`chain-bid-${c.ticker}`} onClick={() => pick(c, 'bid')} title="Sell at bid">
      {fmtNum(c.bid)}
    </td>,
    <td class="num click" data-testid={`chain-ask-${c.ticker}`} onClick={() => pick(c, 'ask')} title="Buy at ask">
      {fmtNum(c.ask)}
    </td>,
    <td class="num hide-sm">{fmtNum(c.last_price)}</td>,
    <td class="num hide-sm">{c.implied_volatility == null ? '—' : (c.implied_volatility * (c.implied_volatility < 5 ? 100 : 1)).toFixed(1)}</td>,
    <td class="num hide-md" data-testid={`chain-delta-${c.ticker}`}>{fmtNum(c.delta, 3)}</td>,
    <td class="num hide-md">{fmtNum(c.gamma, 4)}</td>,
    <td class="num hide-md">{fmtNum(c.theta, 3)}</td>,
    <td class="num hide-md">{fmtNum(c.vega, 3)}</td>,
    <td class="num hide-md">{c.open_interest ?? '—'}</td>,
  ];
  return <>{put ? cells : cells.reverse()}</>;
}

const HEAD = ['Bid', 'Ask', 'Last', 'IV%', 'Δ', 'Γ', 'Θ', 'Vega', 'OI'];
const HIDE = ['', '', 'hide-sm', 'hide-sm', 'hide-md', 'hide-md', 'hide-md', 'hide-md', 'hide-md'];

export function ChainView() {
  const cfg = config.value;
  const ch = chain.value;
  const exp = expiration.value;
  const list = ch?.contracts.filter((c) => c.expiration_date === exp) ?? [];
  const strikes = [...new Set(list.map((c) => c.strike_price))].sort((a, b) => a - b);
  const up = ch?.underlying_price ?? null;
  let atm: number | null = null;
  if (up != null) for (const k of strikes) if (atm == null || Math.abs(k - up) < Math.abs(atm - up)) atm = k;
  const byKey = new Map<string, Signal<Contract>>();
  for (const c of list) byKey.set(`${c.option_type[0]}${c.strike_price}`, contracts.get(c.ticker)!);
  const heads = HEAD.map((h, i) => <th class={cls('num', HIDE[i])}>{h}</th>);
  return (
    <section class="panel" data-testid="chain">
      <h2>
        Options{' '}
        <select value={underlying.value} onChange={(e) => (underlying.value = (e.target as HTMLSelectElement).value)} data-testid="chain-underlying">
          {(cfg?.option_underlyings ?? []).map((u) => (
            <option value={u}>{u}</option>
          ))}
        </select>{' '}
        <span class="muted">{up != null ? `@ ${fmtNum(up)}` : ''}</span>
      </h2>
      {chainError.value && <p class="err">{chainError.value}</p>}
      <div class="tabs" role="tablist">
        {(ch?.expirations ?? []).map((d) => (
          <button role="tab" aria-selected={d === exp} class={d === exp ? 'on' : ''} data-testid={`chain-exp-${d}`} onClick={() => (expiration.value = d)}>
            {d.slice(5)}
          </button>
        ))}
      </div>
      <div class="scroll-x">
        <table class="grid chain">
          <thead>
            <tr>
              {[...heads].reverse()}
              <th class="strike">Strike</th>
              {heads}
            </tr>
            <tr class="sub">
              <th colSpan={9}>CALLS</th>
              <th />
              <th colSpan={9}>PUTS</th>
            </tr>
          </thead>
          <tbody>
            {strikes.map((k) => (
              <tr key={k} class={cls(k === atm && 'atm')} data-testid={k === atm ? 'chain-atm' : undefined}>
                <Side s={byKey.get(`C${k}`)} />
                <td class="strike">{k}</td>
                <Side s={byKey.get(`P${k}`)} put />
              </tr>
            ))}
            {!strikes.length && (
              <tr>
                <td colSpan={19} class="muted">
                  no contracts
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
