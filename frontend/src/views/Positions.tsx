import { livePositions, liveTotals, pnl, pnlError } from '../stores/trading';
import { openTicket } from '../stores/trading';
import { cls, fmtMoney, fmtNum } from './format';

const sign = (x: number | null | undefined) => (x == null ? '' : x > 0 ? 'up' : x < 0 ? 'down' : '');

export function Positions() {
  const p = pnl.value;
  const ps = livePositions.value;
  const t = liveTotals.value;
  const b = p?.balances;
  return (
    <section class="panel" data-testid="positions">
      <h2>Positions &amp; P&amp;L</h2>
      {pnlError.value && <p class="err">{pnlError.value}</p>}
      <div class="scroll-y">
        <table class="grid">
          <thead>
            <tr>
              <th>Symbol</th>
              <th class="num">Qty</th>
              <th class="num hide-xs">Avg</th>
              <th class="num">Mark</th>
              <th class="num">Unrl</th>
              <th class="num">Day</th>
            </tr>
          </thead>
          <tbody>
            {ps.map((x) => (
              <tr
                key={x.symbol}
                data-testid={`pos-${x.symbol}`}
                onClick={() =>
                  openTicket({
                    symbol: x.symbol,
                    asset_type: x.asset_type === 'OPTION' ? 'OPTION' : 'EQUITY',
                    instruction: x.asset_type === 'OPTION' ? (x.quantity > 0 ? 'SELL_TO_CLOSE' : 'BUY_TO_CLOSE') : x.quantity > 0 ? 'SELL' : 'BUY',
                    quantity: Math.abs(x.quantity),
                    limit_price: x.mark,
                  })
                }
              >
                <td class="sym">{x.symbol}</td>
                <td class="num">{x.quantity}</td>
                <td class="num hide-xs">{fmtNum(x.average_price)}</td>
                <td class="num">{fmtNum(x.mark)}</td>
                <td class={cls('num', sign(x.unrealized))} data-testid={`pos-unrealized-${x.symbol}`}>
                  {fmtNum(x.unrealized)}
                </td>
                <td class={cls('num', sign(x.day_pnl))}>{fmtNum(x.day_pnl)}</td>
              </tr>
            ))}
            {!ps.length && (
              <tr>
                <td colSpan={6} class="muted">
                  no positions
                </td>
              </tr>
            )}
          </tbody>
          <tfoot>
            <tr>
              <th>Total</th>
              <td />
              <td class="hide-xs" />
              <td class="num">{fmtMoney(t.market_value)}</td>
              <td class={cls('num', sign(t.unrealized))} data-testid="pnl-unrealized">
                {fmtNum(t.unrealized)}
              </td>
              <td class={cls('num', sign(t.day_pnl))} data-testid="pnl-day">
                {fmtNum(t.day_pnl)}
              </td>
            </tr>
          </tfoot>
        </table>
      </div>
      <dl class="balances">
        <dt>Realized today</dt>
        <dd class={sign(p?.realized_today)} data-testid="pnl-realized">
          {fmtMoney(p?.realized_today)}
        </dd>
        <dt>Cash</dt>
        <dd>{fmtMoney(b?.cash)}</dd>
        <dt>Buying power</dt>
        <dd data-testid="pnl-bp">{fmtMoney(b?.buying_power)}</dd>
        <dt>Liquidation</dt>
        <dd>{fmtMoney(b?.liquidation_value)}</dd>
      </dl>
    </section>
  );
}
