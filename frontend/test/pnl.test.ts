import { describe, expect, it } from 'vitest';
import { buyingPowerAfter, change, orderNotional, realizedAvgCost, reprice, totals } from '../src/lib/pnl';
import { roundToTick, stepPrice, tickSize } from '../src/lib/ticks';

describe('P&L', () => {
  it('reprices an equity position with a live mark', () => {
    const p = reprice({ symbol: 'AAPL', asset_type: 'EQUITY', quantity: 10, average_price: 100, mark: 101, day_pnl: 5 }, 102.5);
    expect(p.market_value).toBe(1025);
    expect(p.unrealized).toBe(25);
    expect(p.day_pnl).toBe(20); // 5 + (102.5 - 101) * 10
  });
  it('options use the 100 multiplier, shorts gain when the mark falls', () => {
    const p = reprice({ symbol: 'AAPL  260320C00100000', asset_type: 'OPTION', quantity: -2, average_price: 3.5, mark: 3.5, day_pnl: 0 }, 3.0);
    expect(p.market_value).toBe(-600);
    expect(p.unrealized).toBe(100);
    expect(p.day_pnl).toBe(100);
  });
  it('keeps the server figures without a mark', () => {
    const p = reprice({ symbol: 'X', asset_type: 'EQUITY', quantity: 1, average_price: 1, mark: null, unrealized: 3, day_pnl: 1 }, null);
    expect(p.unrealized).toBe(3);
  });
  it('totals sum and round', () => {
    const t = totals([
      { symbol: 'A', asset_type: 'EQUITY', quantity: 1, average_price: 1, mark: 1, market_value: 0.1, unrealized: 0.2, day_pnl: 0.1 },
      { symbol: 'B', asset_type: 'EQUITY', quantity: 1, average_price: 1, mark: 1, market_value: 0.2, unrealized: null, day_pnl: 0.2 },
    ]);
    expect(t).toEqual({ market_value: 0.3, unrealized: 0.2, day_pnl: 0.3 });
  });
  it('realized with average cost across a flip', () => {
    const r = realizedAvgCost([
      { instruction: 'BUY', quantity: 10, price: 100 },
      { instruction: 'BUY', quantity: 10, price: 110 },
      { instruction: 'SELL', quantity: 5, price: 120 }, // +75
      { instruction: 'SELL', quantity: 20, price: 100 }, // closes 15 at -5 => -75, opens short 5 @100
    ]);
    expect(r.realized).toBe(0);
    expect(r.quantity).toBe(-5);
    expect(r.average).toBe(100);
    const o = realizedAvgCost(
      [
        { instruction: 'SELL_TO_OPEN', quantity: 1, price: 2 },
        { instruction: 'BUY_TO_CLOSE', quantity: 1, price: 1.5 },
      ],
      100,
    );
    expect(o.realized).toBe(50);
  });
  it('notional and buying power after', () => {
    expect(orderNotional(3, 2.05, 'OPTION')).toBe(615);
    expect(buyingPowerAfter(1000, 615, 'BUY_TO_OPEN')).toBe(385);
    expect(buyingPowerAfter(1000, 615, 'SELL')).toBe(1000);
    expect(buyingPowerAfter(null, 1, 'BUY')).toBeNull();
  });
  it('change vs previous close', () => {
    expect(change(105, 100)).toEqual({ abs: 5, pct: 5 });
    expect(change(105, null)).toEqual({ abs: null, pct: null });
  });
});

describe('ticks', () => {
  it('options step 0.05 at $3 and above', () => {
    expect(tickSize(2.99, 'OPTION')).toBe(0.01);
    expect(tickSize(3, 'OPTION')).toBe(0.05);
    expect(tickSize(300, 'EQUITY')).toBe(0.01);
    expect(stepPrice(3.0, 1, 'OPTION')).toBe(3.05);
    expect(stepPrice(3.0, -1, 'OPTION')).toBe(2.99);
    expect(stepPrice(100.1, 1, 'EQUITY')).toBe(100.11);
    expect(roundToTick(3.07, 0.05)).toBe(3.05);
    expect(stepPrice(0, -1, 'EQUITY')).toBe(0);
  });
});

import { toRequest } from '../src/stores/trading';
import { NO_EXIT } from '../src/lib/orderticket';
describe('ticket request', () => {
  it('rounds the limit to the tick and drops it for market orders', () => {
    const rest = { stop_price: null, trail_type: 'VALUE' as const, trail_offset: null, stop_trigger: null, take_profit: NO_EXIT, stop_loss: NO_EXIT };
    const base = { open: true, symbol: 'SPY   261218C00500000', asset_type: 'OPTION' as const, instruction: 'BUY_TO_OPEN' as const, quantity: 2, order_type: 'LIMIT' as const, limit_price: 3.07, ...rest };
    expect(toRequest(base)).toEqual({ symbol: base.symbol, asset_type: 'OPTION', instruction: 'BUY_TO_OPEN', quantity: 2, order_type: 'LIMIT', limit_price: 3.05, duration: 'DAY' });
    expect(toRequest({ ...base, limit_price: 2.333 }).limit_price).toBe(2.33);
    expect(toRequest({ ...base, order_type: 'MARKET' }).limit_price).toBeNull();
  });
});
