// Trade ticket: preview (risk checks) BEFORE submit, explicit confirm, a second one in live mode.
// Without the gateway (Supabase mode) the preview is the browser's arithmetic and says that
// the executor runs the risk checks. Order types and attached exits: lib/orderticket.ts; the
// request is made once, at preview (exit offsets priced then), and that request is what the
// confirmation shows and what is sent.
import { useEffect, useRef, useState } from 'preact/hooks';
import { INSTRUCTIONS, type Instruction, type OrderType, type TradeRequest } from '../api/types';
import { BackendError, NOT_OPERATOR_MESSAGE } from '../backend/errors';
import type { PreviewResult } from '../backend/types';
import { describe, notionalPrice, problems } from '../lib/orderticket';
import { buyingPowerAfter, orderNotional } from '../lib/pnl';
import { quoteSignal } from '../stores/market';
import { contracts } from '../stores/options';
import { config, operator, status } from '../stores/session';
import { closeTicket, pnl, previewOrder, showToast, submitOrder, ticket, toRequest, type TicketState } from '../stores/trading';
import { cls, fmtMoney, fmtNum } from './format';
import { ExitFields, PriceField, StopFields } from './TicketFields';

const EQUITY_INSTR: Instruction[] = ['BUY', 'SELL'];
const TYPES: [OrderType, string][] = [
  ['LIMIT', 'Limit'],
  ['MARKET', 'Market'],
  ['STOP', 'Stop'],
  ['STOP_LIMIT', 'Stop limit'],
  ['TRAILING_STOP', 'Trailing stop'],
];
const OPTION_INSTR: Instruction[] = ['BUY_TO_OPEN', 'SELL_TO_CLOSE', 'SELL_TO_OPEN', 'BUY_TO_CLOSE'];

type Stage = 'edit' | 'confirm' | 'confirm2' | 'submitting';

function refPrice(t: TicketState): { bid: number | null; ask: number | null; last: number | null } {
  if (t.asset_type === 'OPTION') {
    const c = contracts.get(t.symbol)?.value;
    return { bid: c?.bid ?? null, ask: c?.ask ?? null, last: c?.last_price ?? null };
  }
  const q = quoteSignal(t.symbol).value;
  return { bid: q.bid, ask: q.ask, last: q.last };
}

/** The ticket's inputs (not whether it is open): what a preview answer belongs to. */
function ticketKey(t: TicketState): string {
  const { open: _open, ...rest } = t;
  return JSON.stringify(rest);
}

export function Ticket() {
  const t = ticket.value;
  const cfg = config.value;
  const [stage, setStage] = useState<Stage>('edit');
  const [pv, setPv] = useState<{ key: string; req: TradeRequest; p: PreviewResult } | null>(null);
  const [previewing, setPreviewing] = useState(false);
  const [err, setErr] = useState('');
  const first = useRef<HTMLSelectElement>(null);
  const live = cfg?.trading_mode === 'live';
  const kill = status.value?.kill_switch ?? cfg?.kill_switch ?? false;

  useEffect(() => {
    if (t.open) first.current?.focus();
  }, [t.open]);

  if (!t.open) return null;
  const set = (p: Partial<TicketState>) => {
    if (stage !== 'edit') setStage('edit');
    ticket.value = { ...ticket.value, ...p };
  };
  // The risk answer shown is only valid for exactly the ticket it was asked about (and the
  // exits' offsets were priced with the quote of that moment).
  const key = ticketKey(t);
  const preview = pv && pv.key === key ? pv.p : null;
  const confirming = preview?.ok && (stage === 'confirm' || stage === 'confirm2' || stage === 'submitting');
  const ref = refPrice(t);
  const buy = t.instruction.startsWith('BUY');
  const px = notionalPrice(t, ref);
  const notional = px != null ? orderNotional(t.quantity, px, t.asset_type) : null;
  const bp = pnl.value?.balances?.buying_power ?? null;
  const bpAfter = notional != null ? buyingPowerAfter(bp, notional, t.instruction) : null;
  const instrs = t.asset_type === 'OPTION' ? OPTION_INSTR : EQUITY_INSTR;
  const missing = problems(t, ref);
  const valid = missing.length === 0;

  async function doPreview() {
    setPreviewing(true);
    setErr('');
    setStage('edit');
    const r = refPrice(ticket.value);
    const body = toRequest(ticket.value, r);
    const k = ticketKey(ticket.value);
    try {
      const p = await previewOrder(body, { quote: r, buyingPower: pnl.value?.balances?.buying_power ?? null, marketOrders: cfg?.market_orders ?? false });
      setPv({ key: k, req: body, p });
    } catch (e) {
      setErr((e as Error).message);
    } finally {
      setPreviewing(false);
    }
  }
  async function doSubmit() {
    if (live && stage === 'confirm') {
      setStage('confirm2');
      return;
    }
    if (!pv) return;
    setStage('submitting');
    try {
      const tr = await submitOrder(pv.req);
      // The ticket closes so the blotter is in reach; the answer stays as a toast.
      setPv(null);
      setStage('edit');
      showToast(`Order #${tr.id} ${tr.status}: ${tr.instruction} ${tr.quantity} ${tr.symbol}`);
      closeTicket();
    } catch (e) {
      const kind = e instanceof BackendError ? e.kind : 'error';
      if (kind === 'not_operator') operator.value = false;
      setErr(kind === 'not_operator' ? NOT_OPERATOR_MESSAGE : kind === 'forbidden' ? `Refused: ${(e as Error).message}` : (e as Error).message);
      setStage('edit');
    }
  }

  return (
    <div class="ticket-dock">
      <form class={cls('ticket', buy ? 'buy' : 'sell')} data-testid="ticket" onSubmit={(e) => e.preventDefault()} aria-label="Trade ticket">
        <header>
          <strong>Ticket</strong>
          <span class={cls('mode', live ? 'mode-live' : 'mode-paper')} data-testid="ticket-mode">
            {live ? 'LIVE' : 'PAPER'}
          </span>
          {kill && <span class="badge kill">KILL SWITCH</span>}
          <button type="button" class="x" onClick={closeTicket} data-testid="ticket-close" aria-label="Close">
            ×
          </button>
        </header>
        <div class="row">
          <label>
            Type
            <select
              data-testid="ticket-asset"
              value={t.asset_type}
              onChange={(e) => {
                const a = (e.target as HTMLSelectElement).value as 'EQUITY' | 'OPTION';
                set({ asset_type: a, instruction: a === 'OPTION' ? (buy ? 'BUY_TO_OPEN' : 'SELL_TO_CLOSE') : buy ? 'BUY' : 'SELL' });
              }}
            >
              <option value="EQUITY">Equity</option>
              <option value="OPTION">Option</option>
            </select>
          </label>
          <label class="grow">
            Symbol
            <input data-testid="ticket-symbol" value={t.symbol} onInput={(e) => set({ symbol: (e.target as HTMLInputElement).value.toUpperCase() })} spellcheck={false} />
          </label>
        </div>
        <div class="row">
          <label class="grow">
            Instruction
            <select ref={first} data-testid="ticket-instruction" value={t.instruction} onChange={(e) => set({ instruction: (e.target as HTMLSelectElement).value as Instruction })}>
              {INSTRUCTIONS.filter((i) => instrs.includes(i)).map((i) => (
                <option value={i}>{i}</option>
              ))}
            </select>
          </label>
          <label>
            Order
            <select data-testid="ticket-order-type" value={t.order_type} onChange={(e) => set({ order_type: (e.target as HTMLSelectElement).value as OrderType })}>
              {TYPES.map(([v, label]) => (
                <option value={v} disabled={v === 'MARKET' && (cfg ? !cfg.market_orders : false)}>
                  {label}
                </option>
              ))}
            </select>
          </label>
        </div>
        <div class="row">
          <label>
            Qty
            <input data-testid="ticket-qty" type="number" min={1} step={1} value={t.quantity} onInput={(e) => set({ quantity: Math.floor(Number((e.target as HTMLInputElement).value) || 0) })} />
          </label>
          {t.order_type === 'LIMIT' && <PriceField label="Limit" testid="ticket-price" value={t.limit_price} assetType={t.asset_type} start={ref.last} onChange={(v) => set({ limit_price: v })} />}
        </div>
        <StopFields t={t} set={set} q={ref} />
        <ExitFields t={t} set={set} q={ref} />
        <div class="quote-line muted" data-testid="ticket-quote">
          bid {fmtNum(ref.bid)} · ask {fmtNum(ref.ask)} · last {fmtNum(ref.last)}
        </div>
        <dl class="est">
          <dt>Notional</dt>
          <dd data-testid="ticket-notional">{fmtMoney(preview?.notional ?? notional)}</dd>
          <dt>Buying power</dt>
          <dd>{fmtMoney(preview?.buying_power ?? bp)}</dd>
          <dt>After</dt>
          <dd data-testid="ticket-bp-after">{fmtMoney(preview?.buying_power_after ?? bpAfter)}</dd>
        </dl>
        {!valid && t.symbol && (
          <p class="muted hint" data-testid="ticket-problems">
            {missing.join(' · ')}
          </p>
        )}
        {operator.value === false && (
          <p class="err" data-testid="ticket-not-operator">
            {NOT_OPERATOR_MESSAGE}
          </p>
        )}
        {preview && (
          <div data-testid="ticket-preview-result" data-checked-by={preview.checkedBy} class={cls('preview', preview.ok ? (preview.checkedBy === 'local' ? 'warn' : 'ok') : 'bad')}>
            {preview.ok ? (preview.checkedBy === 'local' ? 'Computed here, not risk-checked.' : 'Risk checks passed.') : preview.checkedBy === 'local' ? 'This order cannot go:' : 'Risk checks refuse this order:'}
            {pv && (pv.req.take_profit_price != null || pv.req.stop_loss_price != null) && (
              <p class="note" data-testid="ticket-preview-exits">
                Exits: {pv.req.take_profit_price != null ? `take-profit ${fmtNum(pv.req.take_profit_price)}` : ''}
                {pv.req.take_profit_price != null && pv.req.stop_loss_price != null ? ' · ' : ''}
                {pv.req.stop_loss_price != null ? `stop-loss ${fmtNum(pv.req.stop_loss_price)}` : ''}
              </p>
            )}
            {preview.note && (
              <p class="note" data-testid="ticket-preview-note">
                {preview.note}
              </p>
            )}
            {!preview.ok && (
              <ul data-testid="ticket-violations">
                {preview.violations.map((v) => (
                  <li data-code={v.code}>
                    <code>{v.code}</code> {v.reason}
                  </li>
                ))}
              </ul>
            )}
          </div>
        )}
        {err && (
          <p class="err" data-testid="ticket-error">
            {err}
          </p>
        )}
        {confirming && stage === 'confirm2' && (
          <p class="warn" data-testid="ticket-live-warning">
            LIVE account: this sends a real order to Schwab. Press confirm again.
          </p>
        )}
        {confirming && pv && (
          <p class="confirm-line" data-testid="ticket-summary">
            {describe(pv.req)} — {live ? 'LIVE account' : 'paper account'}
          </p>
        )}
        <footer>
          {confirming ? (
            <>
              <button type="button" onClick={() => setStage('edit')} data-testid="ticket-back">
                Back
              </button>
              {stage === 'confirm2' ? (
                <button type="button" data-testid="ticket-confirm-live" class="primary danger" onClick={doSubmit}>
                  Send LIVE order
                </button>
              ) : (
                <button type="button" data-testid="ticket-confirm" class={cls('primary', buy ? 'buy' : 'sell')} disabled={stage === 'submitting' || kill} onClick={doSubmit}>
                  {stage === 'submitting' ? 'Sending…' : `Confirm ${t.instruction}`}
                </button>
              )}
            </>
          ) : (
            <>
              <button type="button" data-testid="ticket-preview" disabled={!valid || previewing} onClick={doPreview}>
                {previewing ? 'Checking…' : 'Preview'}
              </button>
              <button
                type="button"
                data-testid="ticket-submit"
                class={cls('primary', buy ? 'buy' : 'sell')}
                disabled={!preview?.ok || kill || operator.value === false}
                title={!preview ? 'Preview first: the risk checks answer before anything is sent' : ''}
                onClick={() => setStage('confirm')}
              >
                Submit…
              </button>
            </>
          )}
        </footer>
      </form>
    </div>
  );
}
