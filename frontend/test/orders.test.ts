// Orders as the blotter and the chart show them: legs nested under their entry, the price
// column, the broker's words, price lines and the drag from a pixel to a price.
import { describe, expect, it } from 'vitest';
import type { Trade } from '../src/api/types';
import { brokerHint, dragPrice, lineAt, nestOrders, priceLines, priceText } from '../src/lib/orders';

let n = 0;
function tr(p: Partial<Trade>): Trade {
  return { id: ++n, created_at: '', symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 1, order_type: 'LIMIT', limit_price: 100, status: 'working', filled_quantity: 0, avg_fill_price: null, error: null, updated_at: '', leg: 'single', parent_id: null, ...p };
}

describe('blotter nesting', () => {
  it('puts legs under their entry, take-profit first, newest orders first', () => {
    const entry = tr({ id: 10, leg: 'entry' });
    const single = tr({ id: 14 });
    const sl = tr({ id: 12, leg: 'stop_loss', parent_id: 10, order_type: 'STOP', stop_price: 95, instruction: 'SELL' });
    const tp = tr({ id: 11, leg: 'take_profit', parent_id: 10, instruction: 'SELL' });
    const older = tr({ id: 5 });
    const rows = nestOrders([single, sl, tp, entry, older]);
    expect(rows.map((r) => [r.order.id, r.depth, r.orphan])).toEqual([
      [14, 0, false],
      [10, 0, false],
      [11, 1, false],
      [12, 1, false],
      [5, 0, false],
    ]);
  });

  it('keeps a leg whose entry is not listed (filter "open", entry filled) as an orphan', () => {
    const rows = nestOrders([tr({ id: 21, leg: 'stop_loss', parent_id: 20 }), tr({ id: 22, leg: 'take_profit', parent_id: 20 })]);
    expect(rows.map((r) => [r.order.id, r.depth, r.orphan])).toEqual([
      [21, 1, true],
      [22, 1, true],
    ]);
    expect(nestOrders([])).toEqual([]);
  });

  it('shows each type price and the broker word of a waiting leg', () => {
    expect(priceText(tr({ order_type: 'MARKET', limit_price: null }))).toBe('MKT');
    expect(priceText(tr({ limit_price: '100.5' }))).toBe('100.50');
    expect(priceText(tr({ order_type: 'STOP', stop_price: 95, limit_price: null }))).toBe('STP 95.00');
    expect(priceText(tr({ order_type: 'STOP_LIMIT', stop_price: 95, limit_price: 94.9 }))).toBe('STP 95.00 LMT 94.90');
    expect(priceText(tr({ order_type: 'TRAILING_STOP', trail_type: 'PERCENT', trail_offset: 2, stop_price: null }))).toBe('TRAIL 2%');
    expect(priceText(tr({ order_type: 'TRAILING_STOP', trail_type: 'VALUE', trail_offset: 1, stop_price: 98.1 }))).toBe('TRAIL $1.00 (98.10)');
    expect(brokerHint(tr({ broker_status: 'AWAITING_PARENT_ORDER' }))).toBe('awaiting parent');
    expect(brokerHint(tr({ broker_status: 'WORKING' }))).toBe('');
    expect(brokerHint(tr({ broker_status: 'PENDING_ACTIVATION' }))).toBe('pending activation');
    expect(brokerHint(tr({ broker_status: 'QUEUED' }))).toBe('queued');
    expect(brokerHint(tr({ broker_status: null }))).toBe('');
  });
});

describe('chart price lines', () => {
  const list = [
    tr({ id: 1, order_type: 'STOP', stop_price: 95, limit_price: null, instruction: 'SELL' }),
    tr({ id: 2, order_type: 'STOP_LIMIT', stop_price: 96, limit_price: 95.5, instruction: 'SELL', leg: 'single' }),
    tr({ id: 3, order_type: 'TRAILING_STOP', stop_price: 97, trail_type: 'VALUE', trail_offset: 1, limit_price: null, instruction: 'SELL' }),
    tr({ id: 4, order_type: 'LIMIT', limit_price: 105, leg: 'take_profit', parent_id: 9, instruction: 'SELL' }),
    tr({ id: 5, order_type: 'STOP', stop_price: 94, leg: 'stop_loss', parent_id: 9, instruction: 'SELL' }),
    tr({ id: 6, order_type: 'STOP', stop_price: 90, status: 'filled' }),
    tr({ id: 7, order_type: 'STOP', stop_price: 390, symbol: 'QQQ' }),
    tr({ id: 8, order_type: 'LIMIT', limit_price: 99 }),
    tr({ id: 10, order_type: 'TRAILING_STOP', stop_price: null, trail_type: 'PERCENT', trail_offset: 1 }),
  ];

  it('one line per working stop / take-profit of the shown symbol; stops and stop-limits draggable', () => {
    expect(priceLines(list, 'SPY').map((l) => [l.id, l.kind, l.price, l.draggable, l.title])).toEqual([
      [1, 'stop', 95, true, 'STP #1'],
      [2, 'stop_limit', 96, true, 'STP #2'],
      [3, 'trailing', 97, false, 'TRAIL #3'],
      [4, 'take_profit', 105, false, 'TP #4'],
      [5, 'stop', 94, true, 'SL #5'],
    ]);
    expect(priceLines(list, 'QQQ').map((l) => l.id)).toEqual([7]);
    expect(priceLines(list, 'MSFT')).toEqual([]);
  });

  // a price scale of 2 px per cent: y = (110 - price) * 200 (110 at the top)
  const toY = (p: number) => (110 - p) * 200;
  const toPrice = (y: number) => 110 - y / 200;

  it('picks the draggable line under the pointer, within a few pixels', () => {
    const lines = priceLines(list, 'SPY');
    expect(lineAt(toY(95), lines, toY)?.id).toBe(1);
    expect(lineAt(toY(95) + 5, lines, toY)?.id).toBe(1);
    expect(lineAt(toY(95) + 7, lines, toY)).toBeNull();
    expect(lineAt(toY(97), lines, toY)).toBeNull(); // a trailing stop moves by itself
    expect(lineAt(toY(105), lines, toY)).toBeNull(); // the take-profit is not a stop
    // the nearer of two close lines wins; a line off the scale is never hit
    expect(lineAt(toY(94) - 1, lines, (p) => (p === 95 ? toY(94) - 3 : toY(p)))?.id).toBe(5);
    expect(lineAt(0, lines, () => null)).toBeNull();
  });

  it('maps a drop to a price on the tick, never at or below 0, null off the scale', () => {
    expect(dragPrice(toY(96.5), toPrice, 0.01)).toBe(96.5);
    expect(dragPrice(toY(96.5) + 3, toPrice, 0.01)).toBe(96.49);
    expect(dragPrice(toY(96.5) + 1, toPrice, 0.01)).toBe(96.5);
    expect(dragPrice(toY(0.5) + 150, toPrice, 0.01)).toBeNull();
    expect(dragPrice(10, () => null, 0.01)).toBeNull();
    expect(dragPrice(10, () => Number.NaN, 0.01)).toBeNull();
    expect(dragPrice(0, () => 3.0749, 0.05)).toBe(3.05);
  });
});
