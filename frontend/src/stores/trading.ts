// Ticket, orders and P&L stores.
import { computed, signal } from '@preact/signals';
import type { Pnl, Preview, StopMove, Trade, TradeDetail, TradeRequest } from '../api/types';
import { backend } from '../backend';
import type { PreviewContext, PreviewResult, TradeData, TradeUpdate } from '../backend/types';
import { NO_EXIT, toRequest as orderRequest, type ExitInput, type OrderInput, type RefQuote } from '../lib/orderticket';
import { reprice, totals, type PositionView } from '../lib/pnl';
import { quotes } from './market';
import { optionMarks } from './options';

export interface TicketState extends OrderInput {
  open: boolean;
}

export const ticket = signal<TicketState>({
  open: false,
  symbol: '',
  asset_type: 'EQUITY',
  instruction: 'BUY',
  quantity: 1,
  order_type: 'LIMIT',
  limit_price: null,
  stop_price: null,
  trail_type: 'VALUE',
  trail_offset: null,
  stop_trigger: null,
  take_profit: NO_EXIT,
  stop_loss: NO_EXIT,
});

/** An exit given as a price belongs to the symbol it was typed for; an offset travels. */
const carried = (x: ExitInput): ExitInput => (x.mode === 'price' ? { ...x, value: null } : x);

export function openTicket(patch: Partial<TicketState>): void {
  const cur = ticket.value;
  const other = patch.symbol !== undefined && patch.symbol !== cur.symbol;
  const reset = other ? { stop_price: null, take_profit: carried(cur.take_profit), stop_loss: carried(cur.stop_loss) } : {};
  ticket.value = { ...cur, ...reset, ...patch, open: true };
}
export function closeTicket(): void {
  ticket.value = { ...ticket.value, open: false };
}

/** The request the ticket becomes (lib/orderticket.ts), exits' offsets priced with `q`. */
export function toRequest(t: OrderInput, q?: RefQuote): TradeRequest {
  return orderRequest(t, q);
}

export const orderFilter = signal<'open' | 'all'>('all');
export const orders = signal<Trade[]>([]);
export const ordersError = signal('');
export const selectedOrder = signal<TradeDetail | null>(null);

export async function refreshOrders(): Promise<void> {
  try {
    orders.value = await backend().trades(orderFilter.value, 100);
    ordersError.value = '';
    const sel = selectedOrder.value;
    if (sel) {
      const row = orders.value.find((o) => o.id === sel.id);
      if (row && (row.status !== sel.status || row.updated_at !== sel.updated_at)) void showOrder(sel.id);
    }
  } catch (e) {
    ordersError.value = (e as Error).message;
  }
}

export async function showOrder(id: number | null): Promise<void> {
  if (id == null) {
    selectedOrder.value = null;
    return;
  }
  try {
    selectedOrder.value = await backend().trade(id);
  } catch (e) {
    ordersError.value = (e as Error).message;
  }
}

/** A stop line dropped on the chart, waiting for the user's confirmation. */
export const stopMove = signal<{ id: number; symbol: string; from: number; to: number; error?: string; sending?: boolean } | null>(null);

/** Ask for a working stop to move (the executor replaces the broker order); once: a failure
 * is shown, never retried. */
export async function moveStop(id: number, stopPrice: number): Promise<StopMove> {
  const r = await backend().moveStop(id, stopPrice);
  void refreshOrders();
  return r;
}

export async function cancelOrder(id: number): Promise<void> {
  try {
    await backend().cancel(id);
  } catch (e) {
    ordersError.value = `cancel #${id}: ${(e as Error).message}`;
  }
  await refreshOrders();
}

export const pnl = signal<Pnl | null>(null);
export const pnlError = signal('');

export async function refreshPnl(): Promise<void> {
  try {
    pnl.value = await backend().pnl();
    pnlError.value = '';
  } catch (e) {
    pnlError.value = (e as Error).message;
  }
}

/** Server positions repriced with live marks (equity last; option mid, else last). */
export const livePositions = computed<PositionView[]>(() => {
  const p = pnl.value;
  if (!p) return [];
  return p.positions.map((pos) => {
    let mark: number | null = null;
    if (pos.asset_type === 'OPTION') mark = optionMarks.value.get(pos.symbol) ?? null;
    else mark = quotes.get(pos.symbol)?.value.last ?? null;
    return reprice(pos, mark);
  });
});

export const liveTotals = computed(() => totals(livePositions.value));

export const toast = signal<{ text: string; at: number } | null>(null);
let toastTimer: ReturnType<typeof setTimeout> | undefined;
export function showToast(text: string, ms = 12_000): void {
  toast.value = { text, at: Date.now() };
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (toast.value = null), ms);
}

export const lastPreview = signal<Preview | null>(null);

/** The answer to "may this order go?" before submitting: the executor's risk rules (gateway)
 * or the browser's arithmetic (Supabase mode: the executor checks when it picks it up). */
export function previewOrder(req: TradeRequest, ctx: PreviewContext): Promise<PreviewResult> {
  return backend().preview(req, ctx);
}

/** Send the order (once: a failure is shown, never retried). */
export async function submitOrder(req: TradeRequest): Promise<TradeData> {
  const tr = await backend().submit(req);
  void refreshOrders();
  return tr;
}

/** A live status change of one order: patched into the blotter at once, then re-read. */
export function applyTradeUpdate(u: TradeUpdate): void {
  const list = orders.value;
  const i = list.findIndex((o) => o.id === u.id);
  if (i >= 0) {
    const o = list[i];
    const next: Trade = {
      ...o,
      status: u.status,
      filled_quantity: u.filled_quantity ?? o.filled_quantity,
      avg_fill_price: u.avg_fill_price ?? o.avg_fill_price,
      error: u.error !== undefined ? u.error : o.error,
      updated_at: u.updated_at ?? o.updated_at,
    };
    orders.value = [...list.slice(0, i), next, ...list.slice(i + 1)];
  }
  void refreshOrders();
  void refreshPnl();
}
