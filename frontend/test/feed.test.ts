import { describe, expect, it } from 'vitest';
import { LiveFeed, backoffDelay, type SocketLike, type Timers } from '../src/lib/feed';

class FakeSocket implements SocketLike {
  static all: FakeSocket[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closed = false;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.onopen?.({});
  }
  send(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop() {
    this.onclose?.({});
  }
}

class FakeTimers implements Timers {
  t = 0;
  q: { at: number; fn: () => void; id: number }[] = [];
  id = 0;
  setTimeout(fn: () => void, ms: number) {
    const id = ++this.id;
    this.q.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown) {
    this.q = this.q.filter((x) => x.id !== h);
  }
  now() {
    return this.t;
  }
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      this.q.sort((a, b) => a.at - b.at);
      const n = this.q[0];
      if (!n || n.at > end) break;
      this.q.shift();
      this.t = n.at;
      n.fn();
    }
    this.t = end;
  }
}

const msg = (seq: number, ts: number) => ({
  v: 1,
  seq,
  committed_at: ts + 50,
  equity: [{ ticker: 'AAPL', ts, price: 1, volume: 1, bid: 1, ask: 1, sma9: 1, vwap: 1 }],
  options: [],
});

function setup() {
  FakeSocket.all = [];
  const timers = new FakeTimers();
  const events: string[] = [];
  const backfills: (number | null)[] = [];
  const got: number[] = [];
  const feed = new LiveFeed(
    { url: 'ws://x/ws', socket: (u) => new FakeSocket(u), timers, minDelayMs: 500, maxDelayMs: 4000, silenceMs: 40_000, random: () => 1 },
    {
      onCommitted: (m) => got.push(m.seq),
      onState: (s) => events.push(s),
      onBackfill: (ts) => backfills.push(ts),
    },
  );
  return { feed, timers, events, backfills, got };
}

describe('LiveFeed', () => {
  it('delivers messages and ignores pings', () => {
    const { feed, got } = setup();
    feed.start();
    FakeSocket.all[0].open();
    FakeSocket.all[0].send({ type: 'ping' });
    FakeSocket.all[0].send(msg(1, 1000));
    expect(got).toEqual([1]);
    expect(feed.state).toBe('open');
  });

  it('reconnects with growing back-off and backfills from the last row seen', () => {
    const { feed, timers, events, backfills, got } = setup();
    feed.start();
    const s0 = FakeSocket.all[0];
    s0.open();
    s0.send(msg(1, 5000));
    s0.send(msg(2, 6000));
    expect(backfills).toEqual([]); // first connect is not a backfill
    s0.drop();
    expect(feed.state).toBe('reconnecting');
    timers.advance(499);
    expect(FakeSocket.all).toHaveLength(1);
    timers.advance(1);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.all[1].drop(); // refused
    timers.advance(999);
    expect(FakeSocket.all).toHaveLength(2);
    timers.advance(1); // second attempt after 1000 ms
    expect(FakeSocket.all).toHaveLength(3);
    FakeSocket.all[2].open();
    expect(backfills).toEqual([6000]);
    expect(feed.attempt).toBe(0);
    FakeSocket.all[2].send(msg(3, 7000));
    expect(got).toEqual([1, 2, 3]);
    expect(events).toContain('reconnecting');
    expect(events[events.length - 1]).toBe('open');
  });

  it('drops a silent link and reconnects', () => {
    const { feed, timers } = setup();
    feed.start();
    FakeSocket.all[0].open();
    timers.advance(40_000);
    expect(FakeSocket.all[0].closed).toBe(true);
    timers.advance(500);
    expect(FakeSocket.all).toHaveLength(2);
  });

  it('ignores a stale socket after stop and never reconnects', () => {
    const { feed, timers } = setup();
    feed.start();
    const s = FakeSocket.all[0];
    s.open();
    feed.stop();
    s.drop();
    timers.advance(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(feed.state).toBe('closed');
  });

  it('back-off is capped', () => {
    expect(backoffDelay(1, 500, 4000, 1)).toBe(500);
    expect(backoffDelay(10, 500, 4000, 1)).toBe(4000);
    expect(backoffDelay(10, 500, 4000, 0)).toBe(2000);
  });
});
