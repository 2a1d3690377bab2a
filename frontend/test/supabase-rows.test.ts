import { describe, expect, it } from 'vitest';
import { barsToCandles, buildCandles, chainFromRows, committedFromPayload, parseTs, pnlFromRows, secondsToCandles, tradeFromRow, tradeUpdateFromPayload, type Bar } from '../src/backend/supabase/rows';

// 2026-03-10 is a Tuesday in New York summer time (UTC-4): 09:30 New York = 13:30 UTC.
const T = (hhmmss: string) => Date.parse(`2026-03-10T${hhmmss}Z`);
const pg = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');

describe('row mapping', () => {
  it('parses PostgREST timestamps with microseconds', () => {
    expect(parseTs('2026-03-10T13:30:00.123456+00:00')).toBe(T('13:30:00.123'));
    expect(parseTs('2026-03-10T13:30:00+00:00')).toBe(T('13:30:00'));
    expect(parseTs('2026-03-10 09:30:00-04:00')).toBe(T('13:30:00'));
  });

  it('per-second rows -> 1s candles with the same second indicators, oldest first', () => {
    const secs = [
      { timestamp: pg(T('13:30:02')), price: 101, volume: 30 },
      { timestamp: pg(T('13:30:01')), price: 100.5, volume: '20' },
    ];
    const ind = [{ timestamp: pg(T('13:30:01')), sma9: 100.1, vwap: 100.2 }];
    const c = secondsToCandles('SPY', '2026-03-10', secs, ind);
    expect(c.t).toEqual([T('13:30:01'), T('13:30:02')]);
    expect(c.o).toEqual([100.5, 101]);
    expect(c.h).toEqual(c.o);
    expect(c.c).toEqual(c.o);
    expect(c.v).toEqual([20, 30]);
    expect(c.sma9).toEqual([100.1, null]);
    expect(c.vwap).toEqual([100.2, null]);
    expect(c.session).toBe('2026-03-10');
  });

  it('builds candles from per-second rows: New York buckets, a re-published second replaces', () => {
    const rows = [
      { ts: T('13:30:59'), price: 10, volume: 5 },
      { ts: T('13:30:00'), price: 11, volume: 1 },
      { ts: T('13:30:30'), price: 9, volume: 2 },
      { ts: T('13:31:00'), price: 12, volume: 3 },
      { ts: T('13:31:00'), price: 12.5, volume: 4 }, // the open second again, later: replaces
    ];
    const m1 = buildCandles(rows, '1m');
    expect(m1).toEqual([
      { t: T('13:30:00'), o: 11, h: 11, l: 9, c: 10, v: 8 },
      { t: T('13:31:00'), o: 12.5, h: 12.5, l: 12.5, c: 12.5, v: 4 },
    ]);
    const m5 = buildCandles(rows, '5m');
    expect(m5).toEqual([{ t: T('13:30:00'), o: 11, h: 12.5, l: 9, c: 12.5, v: 12 }]);
    // 1h buckets start on the New York hour
    expect(buildCandles(rows, '1h')[0].t).toBe(T('13:00:00'));
  });

  const bar = (hhmm: string, o: number, h: number, l: number, c: number, v: number, vwap: number | null = c): Bar => ({ t: T(`${hhmm}:00`), o, h, l, c, v, vwap });

  it('rolls 1-minute bars up with OHLCV, SMA9 from the last 9 closes (prior bars included)', () => {
    const bars = [bar('13:30', 1, 2, 0.5, 1.5, 10), bar('13:31', 1.5, 3, 1, 2, 20), bar('13:32', 2, 2.5, 1.8, 2.2, 5), bar('13:35', 2.2, 2.4, 2, 2.1, 7)];
    const prior = [1, 1, 1, 1, 1, 1, 1, 1, 9]; // the oldest is beyond the window: 8 are kept
    const m1 = barsToCandles('SPY', '1m', '2026-03-10', bars, 2000, prior);
    expect(m1.t).toEqual([T('13:30:00'), T('13:31:00'), T('13:32:00'), T('13:35:00')]);
    // window at 13:30: prior's last 8 (1,1,1,1,1,1,1,9) + 1.5
    expect(m1.sma9[0]).toBeCloseTo((7 + 9 + 1.5) / 9, 10);
    expect(m1.sma9[1]).toBeCloseTo((6 + 9 + 1.5 + 2) / 9, 10);
    const m5 = barsToCandles('SPY', '5m', '2026-03-10', bars, 2000, prior);
    expect(m5.t).toEqual([T('13:30:00'), T('13:35:00')]);
    expect([m5.o[0], m5.h[0], m5.l[0], m5.c[0], m5.v[0]]).toEqual([1, 3, 0.5, 2.2, 35]);
    // a bucket carries the values its last minute ends with
    expect(m5.sma9[0]).toBeCloseTo(m1.sma9[2]!, 10);
    // without prior bars there is no SMA9 until 9 closes exist
    expect(barsToCandles('SPY', '1m', null, bars, 2000).sma9).toEqual([null, null, null, null]);
    // limit keeps the last buckets
    expect(barsToCandles('SPY', '1m', null, bars, 2).t).toEqual([T('13:32:00'), T('13:35:00')]);
  });

  it('session VWAP from the bars: null before 09:30, cumulative in the session, kept after 16:00', () => {
    const bars = [
      bar('13:00', 5, 5, 5, 5, 100, 5), // 09:00 New York: pre-market
      bar('13:30', 10, 10, 10, 10, 10, 10),
      bar('13:31', 20, 20, 20, 20, 30, 20),
      bar('20:00', 50, 50, 50, 50, 1000, 50), // 16:00 New York: after the close
    ];
    const c = barsToCandles('SPY', '1m', '2026-03-10', bars, 2000);
    expect(c.vwap[0]).toBeNull();
    expect(c.vwap[1]).toBe(10);
    expect(c.vwap[2]).toBeCloseTo((10 * 10 + 20 * 30) / 40, 10);
    expect(c.vwap[3]).toBeCloseTo(c.vwap[2]!, 10);
  });

  it('1D candles are New York dates', () => {
    const day2 = Date.parse('2026-03-11T14:00:00Z');
    const bars: Bar[] = [bar('13:30', 1, 2, 1, 2, 5), bar('19:59', 2, 4, 1.5, 3, 5), { t: day2, o: 3, h: 3, l: 2, c: 2.5, v: 1, vwap: 2.5 }];
    const d = barsToCandles('SPY', '1D', '2026-03-11', bars, 365);
    expect(d.t).toEqual([Date.parse('2026-03-10T04:00:00Z'), Date.parse('2026-03-11T04:00:00Z')]);
    expect([d.o[0], d.h[0], d.l[0], d.c[0], d.v[0]]).toEqual([1, 4, 1, 3, 10]);
  });

  it('option rows -> the chain: newest per contract, expired ones dropped, sorted', () => {
    const row = (ticker: string, ts: number, type: string, strike: number, exp: string, bid: number, up = 500) => ({
      ticker,
      timestamp: pg(ts),
      option_type: type,
      strike_price: strike,
      expiration_date: exp,
      last_price: bid + 0.05,
      bid,
      ask: bid + 0.1,
      delta: 0.5,
      gamma: 0.01,
      theta: -0.1,
      vega: 0.2,
      implied_volatility: 0.3,
      open_interest: 10,
      underlying_price: up,
    });
    const rows = [
      row('SPY   260320P00500000', T('14:00:02'), 'PUT', 500, '2026-03-20', 2.0, 501),
      row('SPY   260320C00500000', T('14:00:01'), 'CALL', 500, '2026-03-20', 3.0),
      row('SPY   260320C00500000', T('14:00:00'), 'CALL', 500, '2026-03-20', 2.9),
      row('SPY   260313C00495000', T('14:00:00'), 'CALL', 495, '2026-03-13', 6.0),
      row('SPY   260309C00490000', T('14:00:00'), 'CALL', 490, '2026-03-09', 9.0), // expired
    ];
    const ch = chainFromRows('SPY', rows);
    expect(ch.contracts.map((c) => c.ticker)).toEqual(['SPY   260313C00495000', 'SPY   260320C00500000', 'SPY   260320P00500000']);
    expect(ch.contracts[1].bid).toBe(3.0);
    expect(ch.contracts[1].ts).toBe(T('14:00:01'));
    expect(ch.expirations).toEqual(['2026-03-13', '2026-03-20']);
    expect(ch.underlying_price).toBe(501);
  });

  it('trade rows: numeric columns (PostgREST numeric) as numbers', () => {
    const t = tradeFromRow({ id: 7, created_at: 'c', symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: '10', order_type: 'LIMIT', limit_price: '500.25', duration: 'DAY', status: 'filled', broker_order_id: null, filled_quantity: 10, avg_fill_price: '500.2', error: null, updated_at: 'u' });
    expect(t).toMatchObject({ id: 7, quantity: 10, limit_price: 500.25, filled_quantity: 10, avg_fill_price: 500.2, status: 'filled' });
    expect(tradeUpdateFromPayload({ id: 7, symbol: 'SPY', status: 'working', filled_quantity: '0', avg_fill_price: null, error: null, updated_at: 'x' })).toEqual({ id: 7, symbol: 'SPY', status: 'working', filled_quantity: 0, avg_fill_price: null, error: null, updated_at: 'x' });
    expect(tradeUpdateFromPayload({ id: 'x', status: 'working' })).toBeNull();
  });

  it('live payloads: version 1 only, degrade defaults to 0, malformed rows dropped', () => {
    expect(committedFromPayload({ v: 2, seq: 1, equity: [] })).toBeNull();
    expect(committedFromPayload('nope')).toBeNull();
    const m = committedFromPayload({ v: 1, seq: 3, committed_at: 5, equity: [{ ticker: 'SPY', ts: 1, price: 1 }, { ts: 2 }], options: [{ ticker: 'O', ts: 1 }, null] });
    expect(m?.equity.map((e) => e.ticker)).toEqual(['SPY']);
    expect(m?.options).toHaveLength(1);
    expect(m?.degrade).toBe(0);
    expect(committedFromPayload({ v: 1, seq: 4, committed_at: 6, equity: [], degrade: 2 })?.degrade).toBe(2);
  });

  it('positions + balances + own fills -> P&L', () => {
    const positions = [
      { symbol: 'SPY', asset_type: 'EQUITY', quantity: '10', average_price: '500', day_pnl: '5' },
      { symbol: 'SPY', asset_type: 'EQUITY', quantity: 10, average_price: 510, day_pnl: 1 }, // a second account
      { symbol: 'SPY   260320C00500000', asset_type: 'OPTION', quantity: 1, average_price: 3, day_pnl: null },
    ];
    const balances = [{ cash: '1000', buying_power: 2000, liquidation_value: null }, { cash: 500, buying_power: 100, liquidation_value: null }];
    const marks = new Map([
      ['SPY', 506],
      ['SPY   260320C00500000', 3.5],
    ]);
    const since = T('04:00:00');
    // today: bought 10 @ 504 then sold 5 @ 508 (the position held before was 15 @ 505)
    const fills = [
      { id: 1, symbol: 'SPY', asset_type: 'EQUITY', instruction: 'BUY', quantity: 10, price: 504, at: T('14:00:00') },
      { id: 2, symbol: 'SPY', asset_type: 'EQUITY', instruction: 'SELL', quantity: 5, price: 508, at: T('15:00:00') },
      { id: 3, symbol: 'SPY', asset_type: 'EQUITY', instruction: 'SELL', quantity: 1, price: 1, at: since - 1 }, // yesterday: ignored
    ];
    const p = pnlFromRows(positions, balances, marks, fills, since);
    const spy = p.positions.find((x) => x.symbol === 'SPY')!;
    expect(spy).toMatchObject({ quantity: 20, average_price: 505, mark: 506, market_value: 10120, unrealized: 20, day_pnl: 6 });
    const opt = p.positions.find((x) => x.asset_type === 'OPTION')!;
    expect(opt).toMatchObject({ unrealized: 50, market_value: 350, day_pnl: null });
    expect(p.unrealized_total).toBe(70);
    expect(p.day_pnl_total).toBe(6);
    // opening 15 @ 505; +10 @ 504 -> 25 @ 504.6; -5 @ 508 realizes (508 - 504.6) * 5 = 17
    expect(p.realized_today).toBe(17);
    expect(p.balances).toEqual({ cash: 1500, buying_power: 2100, liquidation_value: null });
    expect(pnlFromRows([], [], new Map(), [], since).balances).toBeNull();
  });
});
