// The ticket's order logic: inputs per order type, what blocks a preview, the request each
// type becomes, and attached exits given as an offset converted to prices before sending.
import { describe, expect, it } from 'vitest';
import { describe as describeOrder, entryPrice, exitPrice, fields, NO_EXIT, notionalPrice, problems, toRequest, type OrderInput } from '../src/lib/orderticket';
import { localPreview } from '../src/backend/supabase/trading';

const Q = { bid: 99.98, ask: 100.02, last: 100 };
const base: OrderInput = {
  symbol: 'SPY',
  asset_type: 'EQUITY',
  instruction: 'BUY',
  quantity: 10,
  order_type: 'LIMIT',
  limit_price: 100,
  stop_price: null,
  trail_type: 'VALUE',
  trail_offset: null,
  stop_trigger: null,
  take_profit: NO_EXIT,
  stop_loss: NO_EXIT,
};
const t = (p: Partial<OrderInput>): OrderInput => ({ ...base, ...p });

describe('fields per order type', () => {
  it('shows each type its own inputs; exits only for opening MARKET / LIMIT entries', () => {
    expect(fields(t({ order_type: 'MARKET' }))).toEqual({ limit: false, stop: false, trail: false, trigger: false, exits: true });
    expect(fields(t({ order_type: 'LIMIT' }))).toEqual({ limit: true, stop: false, trail: false, trigger: false, exits: true });
    expect(fields(t({ order_type: 'STOP' }))).toEqual({ limit: false, stop: true, trail: false, trigger: true, exits: false });
    expect(fields(t({ order_type: 'STOP_LIMIT' }))).toEqual({ limit: true, stop: true, trail: false, trigger: true, exits: false });
    expect(fields(t({ order_type: 'TRAILING_STOP' }))).toEqual({ limit: false, stop: false, trail: true, trigger: true, exits: false });
    // closing instructions cannot carry a bracket; SELL_TO_OPEN (a short) can
    expect(fields(t({ instruction: 'SELL' })).exits).toBe(false);
    expect(fields(t({ asset_type: 'OPTION', instruction: 'SELL_TO_CLOSE' })).exits).toBe(false);
    expect(fields(t({ asset_type: 'OPTION', instruction: 'SELL_TO_OPEN' })).exits).toBe(true);
  });

  it('names what is missing before a preview', () => {
    expect(problems(base, Q)).toEqual([]);
    expect(problems(t({ order_type: 'STOP' }), Q)).toEqual(['stop price missing']);
    expect(problems(t({ order_type: 'STOP_LIMIT', limit_price: null }), Q)).toEqual(['limit price missing', 'stop price missing']);
    expect(problems(t({ order_type: 'TRAILING_STOP' }), Q)).toEqual(['trail amount missing']);
    expect(problems(t({ order_type: 'TRAILING_STOP', trail_type: 'PERCENT', trail_offset: 150 }), Q)).toEqual(['a trail in percent is below 100']);
    expect(problems(t({ take_profit: { on: true, mode: 'offset', value: null } }), Q)).toEqual(['take-profit offset missing']);
    expect(problems(t({ order_type: 'MARKET', stop_loss: { on: true, mode: 'offset', value: 1 } }), { bid: null, ask: null, last: null })).toEqual(['stop-loss: no entry price to offset from (no quote yet)']);
    expect(problems(t({ quantity: 1.5, symbol: ' ' }), Q)).toEqual(['symbol missing', 'quantity must be a whole number above 0']);
    // an exit switched off does not count, nor do a stop type's exits
    expect(problems(t({ take_profit: { on: false, mode: 'price', value: null } }), Q)).toEqual([]);
  });
});

describe('request', () => {
  it('sends only the fields its type takes, on the tick', () => {
    const r = toRequest(t({ order_type: 'STOP_LIMIT', stop_price: 95.004, limit_price: 94.896, stop_trigger: 'BID', trail_offset: 3, take_profit: { on: true, mode: 'price', value: 110 } }), Q);
    expect(r).toEqual({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 10, order_type: 'STOP_LIMIT', limit_price: 94.9, stop_price: 95, stop_trigger: 'BID', duration: 'DAY' });
    expect(toRequest(t({ order_type: 'STOP', stop_price: 101, limit_price: 100 }), Q)).toMatchObject({ order_type: 'STOP', stop_price: 101, limit_price: null });
    expect(toRequest(t({ order_type: 'MARKET', stop_trigger: 'ASK' }), Q)).not.toHaveProperty('stop_trigger');
    const pct = toRequest(t({ instruction: 'SELL', order_type: 'TRAILING_STOP', trail_type: 'PERCENT', trail_offset: 2.345 }), Q);
    expect(pct).toEqual({ symbol: 'SPY', asset_type: 'EQUITY', instruction: 'SELL', quantity: 10, order_type: 'TRAILING_STOP', limit_price: null, trail_type: 'PERCENT', trail_offset: 2.35, duration: 'DAY' });
    expect(toRequest(t({ order_type: 'TRAILING_STOP', trail_offset: 1.234 }), Q).trail_offset).toBe(1.23);
  });

  it('converts exit offsets to prices on the right side of the entry', () => {
    // long LIMIT entry at 100: take-profit above, stop-loss below
    const long = t({ take_profit: { on: true, mode: 'offset', value: 2.5 }, stop_loss: { on: true, mode: 'offset', value: 1.25 } });
    expect(toRequest(long, Q)).toMatchObject({ order_type: 'LIMIT', limit_price: 100, take_profit_price: 102.5, stop_loss_price: 98.75 });
    // a MARKET entry's offsets are from the touch it would take (ask for a buy)
    expect(toRequest({ ...long, order_type: 'MARKET', limit_price: null }, Q)).toMatchObject({ take_profit_price: 102.52, stop_loss_price: 98.77, limit_price: null });
    // a short (SELL_TO_OPEN) from the bid: take-profit below, stop-loss above
    const short = t({ asset_type: 'OPTION', symbol: 'SPY   261218C00500000', instruction: 'SELL_TO_OPEN', order_type: 'LIMIT', limit_price: 2.5, take_profit: { on: true, mode: 'offset', value: 1 }, stop_loss: { on: true, mode: 'offset', value: 1 } });
    expect(toRequest(short, Q)).toMatchObject({ take_profit_price: 1.5, stop_loss_price: 3.5 });
    // prices given as prices are kept (on the tick); an offset through zero is no price
    expect(exitPrice('take_profit', t({ take_profit: { on: true, mode: 'price', value: 105.004 } }), Q)).toBe(105);
    expect(exitPrice('stop_loss', t({ stop_loss: { on: true, mode: 'offset', value: 150 } }), Q)).toBeNull();
    // exits are dropped where the type cannot carry them
    expect(toRequest({ ...long, instruction: 'SELL' }, Q)).not.toHaveProperty('take_profit_price');
    expect(toRequest({ ...long, take_profit: { ...long.take_profit, on: false } }, Q)).not.toHaveProperty('take_profit_price');
  });

  it('prices the entry and the notional as the risk rules count them', () => {
    expect(entryPrice(t({ order_type: 'MARKET', instruction: 'SELL' }), Q)).toBe(99.98);
    expect(entryPrice(t({ order_type: 'MARKET' }), { bid: null, ask: null, last: 100.5 })).toBe(100.5);
    expect(notionalPrice(t({ order_type: 'STOP', stop_price: 101 }), Q)).toBe(101);
    expect(notionalPrice(t({ order_type: 'STOP_LIMIT', stop_price: 101, limit_price: 101.5 }), Q)).toBe(101.5);
    expect(notionalPrice(t({ instruction: 'SELL', order_type: 'STOP_LIMIT', stop_price: 95, limit_price: 94.5 }), Q)).toBe(94.5);
    expect(notionalPrice(t({ instruction: 'SELL', order_type: 'TRAILING_STOP', trail_offset: 1 }), Q)).toBe(99.98);
  });

  it('describes what the confirmation sends', () => {
    expect(describeOrder(toRequest(t({ take_profit: { on: true, mode: 'offset', value: 2 }, stop_loss: { on: true, mode: 'price', value: 98 } }), Q))).toBe('BUY 10 SPY @ 100.00 LIMIT · TP 102.00 · SL 98.00 DAY');
    expect(describeOrder(toRequest(t({ instruction: 'SELL', order_type: 'STOP_LIMIT', stop_price: 95, limit_price: 94.9, stop_trigger: 'BID' }), Q))).toBe('SELL 10 SPY STOP 95.00 LIMIT 94.90 on BID DAY');
    expect(describeOrder(toRequest(t({ instruction: 'SELL', order_type: 'TRAILING_STOP', trail_type: 'PERCENT', trail_offset: 2 }), Q))).toBe('SELL 10 SPY TRAILING 2% DAY');
  });
});

describe('preview without the gateway (Supabase mode)', () => {
  const ctx = { quote: Q, buyingPower: 100_000, marketOrders: false };
  it('refuses for sure what the browser can see: missing prices, a stop on the wrong side, crossed exits', () => {
    const codes = (r: Parameters<typeof localPreview>[0]) => localPreview(r, ctx, true).violations.map((v) => v.code);
    expect(codes(toRequest(t({ order_type: 'STOP', stop_price: 99 }), Q))).toEqual(['stop_side']);
    expect(codes(toRequest(t({ instruction: 'SELL', order_type: 'STOP', stop_price: 95 }), Q))).toEqual([]);
    expect(codes({ ...toRequest(base, Q), order_type: 'STOP_LIMIT', stop_price: null })).toEqual(['stop_price']);
    expect(codes({ ...toRequest(base, Q), order_type: 'TRAILING_STOP', limit_price: null })).toEqual(['trail']);
    expect(codes(toRequest(t({ take_profit: { on: true, mode: 'price', value: 99 }, stop_loss: { on: true, mode: 'price', value: 101 } }), Q))).toEqual(['bracket_sides', 'bracket_sides']);
    const stop = localPreview(toRequest(t({ instruction: 'SELL', order_type: 'STOP', stop_price: 95 }), Q), ctx, true);
    expect(stop.notional).toBe(950);
  });
});
