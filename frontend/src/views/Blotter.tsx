import { cancelOrder, orderFilter, orders, ordersError, refreshOrders, selectedOrder, showOrder } from '../stores/trading';
import type { TradeEvent } from '../api/types';
import { brokerHint, legLabel, nestOrders, priceText } from '../lib/orders';
import { cls, fmtNum, num } from './format';

const OPEN = new Set(['pending', 'submitting', 'working', 'cancel_requested', 'unknown', 'partially_filled', 'accepted']);
const CANCELLABLE = new Set(['pending', 'working', 'partially_filled', 'accepted']);

function time(s: string | null | undefined): string {
  if (!s) return '';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleTimeString('en-US', { timeZone: 'America/New_York', hour12: false });
}

function evText(ev: TradeEvent, own: number): string {
  const st = ev.to_status ?? ev.status ?? '';
  const from = ev.from_status ? `${ev.from_status} → ` : '';
  const det = ev.detail == null ? '' : typeof ev.detail === 'string' ? ev.detail : JSON.stringify(ev.detail);
  const why = typeof ev.reason === 'string' && ev.reason ? ` · ${ev.reason}` : '';
  // an entry's history carries its legs' events: say whose
  const whose = ev.trade_id != null && ev.trade_id !== own ? `#${ev.trade_id} ` : '';
  return `${whose}${from}${st}${why}${det ? ` · ${det}` : ''}`;
}

export function Blotter() {
  const sel = selectedOrder.value;
  return (
    <section class="panel" data-testid="blotter">
      <h2>
        Orders
        <span class="seg">
          {(['open', 'all'] as const).map((f) => (
            <button
              data-testid={`blotter-filter-${f}`}
              class={orderFilter.value === f ? 'on' : ''}
              onClick={() => {
                orderFilter.value = f;
                void refreshOrders();
              }}
            >
              {f}
            </button>
          ))}
        </span>
      </h2>
      {ordersError.value && <p class="err">{ordersError.value}</p>}
      <div class="scroll-y">
        <table class="grid">
          <thead>
            <tr>
              <th>#</th>
              <th>Side</th>
              <th>Symbol</th>
              <th class="num">Qty</th>
              <th class="num hide-xs">Px</th>
              <th>Status</th>
              <th class="num hide-xs">Fill</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {nestOrders(orders.value).map(({ order: o, depth, orphan }) => {
              const hint = brokerHint(o);
              const leg = legLabel(o);
              return (
                <tr
                  key={o.id}
                  data-testid={`order-${o.id}`}
                  data-leg={o.leg ?? 'single'}
                  data-parent={o.parent_id ?? undefined}
                  class={cls(sel?.id === o.id && 'sel', depth === 1 && 'leg')}
                  onClick={() => void showOrder(sel?.id === o.id ? null : o.id)}
                >
                  <td>
                    {depth === 1 ? <span class="leg-mark">↳ </span> : null}
                    {o.id}
                    {leg && (
                      <span class="leg-tag" data-testid={`order-leg-${o.id}`} title={orphan ? `leg of #${o.parent_id}` : undefined}>
                        {orphan ? `${leg} of #${o.parent_id}` : leg}
                      </span>
                    )}
                  </td>
                  <td class={o.instruction.startsWith('BUY') ? 'up' : 'down'}>{o.instruction}</td>
                  <td class="sym">{o.symbol}</td>
                  <td class="num">{o.quantity}</td>
                  <td class="num hide-xs" data-testid={`order-price-${o.id}`}>
                    {priceText(o)}
                  </td>
                  <td>
                    <span data-testid={`order-status-${o.id}`} class={cls('st', `st-${o.status}`)} title={o.error ?? o.broker_status ?? ''}>
                      {o.status}
                    </span>
                    {hint && (
                      <div class="reason muted" data-testid={`order-broker-${o.id}`}>
                        {hint}
                      </div>
                    )}
                    {o.error && (
                      <div class="reason" data-testid={`order-reason-${o.id}`}>
                        {o.error}
                      </div>
                    )}
                  </td>
                  <td class="num hide-xs">{num(o.filled_quantity) ? `${num(o.filled_quantity)}@${fmtNum(num(o.avg_fill_price))}` : ''}</td>
                  <td>
                    {CANCELLABLE.has(o.status) && (
                      <button
                        data-testid={`order-cancel-${o.id}`}
                        class="small"
                        title={o.leg === 'entry' ? 'Cancels the entry and its exits (or, once filled, the exits still working)' : undefined}
                        onClick={(e) => {
                          e.stopPropagation();
                          void cancelOrder(o.id);
                        }}
                      >
                        Cancel
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
            {!orders.value.length && (
              <tr>
                <td colSpan={8} class="muted">
                  {orderFilter.value === 'open' ? 'no open orders' : 'no orders'}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {sel && (
        <div class="timeline" data-testid="order-events">
          <strong>
            #{sel.id} {sel.instruction} {sel.quantity} {sel.symbol} — {sel.status}
            {OPEN.has(sel.status) ? ' (open)' : ''}
          </strong>
          <ol>
            {(sel.events ?? []).map((ev) => (
              <li>
                <time>{time((ev.at ?? ev.created_at) as string | undefined)}</time> {evText(ev, sel.id)}
              </li>
            ))}
          </ol>
        </div>
      )}
    </section>
  );
}
