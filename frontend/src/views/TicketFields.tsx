// The ticket's inputs that depend on the order type (limit, stop, trail, trigger) and the
// attached exits; what each type shows is lib/orderticket.ts's `fields`.
import { useState } from 'preact/hooks';
import { STOP_TRIGGERS, type StopTrigger } from '../api/types';
import { exitPrice, fields, type ExitInput, type OrderInput, type RefQuote } from '../lib/orderticket';
import { roundToTick, stepPrice, tickSize } from '../lib/ticks';
import { fmtNum } from './format';

type Set = (p: Partial<OrderInput>) => void;

/** A price with − / + tick steps; typed text kept while focused, put on the tick on blur. */
export function PriceField(props: { label: string; testid: string; value: number | null; assetType: string; start: number | null; onChange: (v: number | null) => void; grow?: boolean }) {
  const [text, setText] = useState<string | null>(null);
  const { value, assetType, onChange, testid } = props;
  const tick = tickSize(value ?? props.start ?? 0, assetType);
  const from = value ?? props.start ?? 0;
  return (
    <label class={props.grow === false ? undefined : 'grow'}>
      {props.label} ({tick.toFixed(2)})
      <span class="stepper">
        <button type="button" data-testid={`${testid}-down`} onClick={() => onChange(stepPrice(from, -1, assetType))}>
          −
        </button>
        <input
          data-testid={testid}
          type="number"
          min={0}
          step={tick}
          value={text ?? value ?? ''}
          onInput={(e) => {
            const txt = (e.target as HTMLInputElement).value;
            const v = Number(txt);
            setText(txt);
            onChange(txt !== '' && Number.isFinite(v) && v > 0 ? v : null);
          }}
          onBlur={() => {
            setText(null);
            if (value != null) onChange(roundToTick(value, tickSize(value, assetType)));
          }}
        />
        <button type="button" data-testid={`${testid}-up`} onClick={() => onChange(stepPrice(from, 1, assetType))}>
          +
        </button>
      </span>
    </label>
  );
}

function NumberField(props: { label: string; testid: string; value: number | null; step: number; onChange: (v: number | null) => void }) {
  return (
    <label>
      {props.label}
      <input
        data-testid={props.testid}
        type="number"
        min={0}
        step={props.step}
        value={props.value ?? ''}
        onInput={(e) => {
          const v = Number((e.target as HTMLInputElement).value);
          props.onChange(Number.isFinite(v) && v > 0 ? v : null);
        }}
      />
    </label>
  );
}

/** Stop, stop-limit and trailing inputs (the limit of a LIMIT order is the ticket's own). */
export function StopFields({ t, set, q }: { t: OrderInput; set: Set; q: RefQuote }) {
  const f = fields(t);
  if (!f.trigger) return null;
  return (
    <>
      {f.stop && (
        <div class="row">
          <PriceField label="Stop" testid="ticket-stop" value={t.stop_price} assetType={t.asset_type} start={q.last} onChange={(v) => set({ stop_price: v })} />
          {f.limit && <PriceField label="Limit" testid="ticket-price" value={t.limit_price} assetType={t.asset_type} start={t.stop_price ?? q.last} onChange={(v) => set({ limit_price: v })} />}
        </div>
      )}
      <div class="row">
        {f.trail && (
          <>
            <label>
              Trail by
              <select data-testid="ticket-trail-type" value={t.trail_type} onChange={(e) => set({ trail_type: (e.target as HTMLSelectElement).value as OrderInput['trail_type'] })}>
                <option value="VALUE">amount ($)</option>
                <option value="PERCENT">percent (%)</option>
              </select>
            </label>
            <NumberField label={t.trail_type === 'PERCENT' ? 'Trail %' : 'Trail $'} testid="ticket-trail-offset" value={t.trail_offset} step={t.trail_type === 'PERCENT' ? 0.1 : 0.01} onChange={(v) => set({ trail_offset: v })} />
          </>
        )}
        <label>
          Trigger on
          <select data-testid="ticket-stop-trigger" value={t.stop_trigger ?? 'LAST'} onChange={(e) => set({ stop_trigger: (e.target as HTMLSelectElement).value as StopTrigger })}>
            {STOP_TRIGGERS.map((s) => (
              <option value={s}>{s.toLowerCase()}</option>
            ))}
          </select>
        </label>
      </div>
    </>
  );
}

function ExitRow({ kind, t, set, q }: { kind: 'take_profit' | 'stop_loss'; t: OrderInput; set: Set; q: RefQuote }) {
  const x = kind === 'take_profit' ? t.take_profit : t.stop_loss;
  const put = (p: Partial<ExitInput>) => set({ [kind]: { ...x, ...p } } as Partial<OrderInput>);
  const id = kind === 'take_profit' ? 'ticket-tp' : 'ticket-sl';
  const price = exitPrice(kind, t, q);
  return (
    <div class="row exit-row">
      <label class="check">
        <input type="checkbox" data-testid={`${id}-on`} checked={x.on} onChange={(e) => put({ on: (e.target as HTMLInputElement).checked })} />
        {kind === 'take_profit' ? 'Take-profit' : 'Stop-loss'}
      </label>
      {x.on && (
        <>
          <label>
            by
            <select data-testid={`${id}-mode`} value={x.mode} onChange={(e) => put({ mode: (e.target as HTMLSelectElement).value as ExitInput['mode'], value: null })}>
              <option value="price">price</option>
              <option value="offset">offset from entry</option>
            </select>
          </label>
          <NumberField label={x.mode === 'price' ? 'Price' : 'Offset $'} testid={id} value={x.value} step={tickSize(price ?? x.value ?? 0, t.asset_type)} onChange={(v) => put({ value: v })} />
          {x.mode === 'offset' && (
            <span class="muted exit-px" data-testid={`${id}-price`}>
              → {fmtNum(price)}
            </span>
          )}
        </>
      )}
    </div>
  );
}

/** "Attach take-profit / stop-loss": for MARKET / LIMIT entries that open a position. */
export function ExitFields({ t, set, q }: { t: OrderInput; set: Set; q: RefQuote }) {
  if (!fields(t).exits) return null;
  return (
    <fieldset class="exits" data-testid="ticket-exits">
      <legend>Attach exits (bracket)</legend>
      <ExitRow kind="take_profit" t={t} set={set} q={q} />
      <ExitRow kind="stop_loss" t={t} set={set} q={q} />
    </fieldset>
  );
}
