// Candles + volume + SMA9/VWAP, live forming candle, session shading, gap/fill/signal markers,
// the price lines of working stops and take-profits (OrderLines.tsx).
import { useEffect, useRef } from 'preact/hooks';
import { effect, untracked } from '@preact/signals';
import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  LineSeries,
  createChart,
  createSeriesMarkers,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from 'lightweight-charts';
import type { Candles, FillMark, Gap } from '../api/types';
import { CandleBook, TIMEFRAMES, backfillLimit, bucketStart, columnsToCandles, tfMs, type Candle, type Tf } from '../lib/candles';
import { chartTime, nyParts } from '../lib/nytime';
import { priceLines } from '../lib/orders';
import { isBuy } from '../lib/pnl';
import { crosses, fetchCandles, fetchMarkers, isLive, loadSessions, loadSignals, pickTf, reload, session, sessions, shownSession, stepSession, tf } from '../stores/chart';
import { onBackfill, onEquity, onTrade, recentSeconds, selected } from '../stores/market';
import { orders } from '../stores/trading';
import { fmtNum, fmtVol } from './format';
import { OrderLines, StopMoveBar } from './OrderLines';

const UP = '#26a69a';
const DOWN = '#ef5350';
const ts = (ms: number) => chartTime(ms) as UTCTimestamp;

function regular(ms: number): boolean {
  const p = nyParts(ms);
  const m = p.hour * 60 + p.minute;
  return m >= 570 && m < 960;
}

function increasing<T>(xs: T[], time: (x: T) => number): T[] {
  const out: T[] = [];
  let last = -Infinity;
  for (const x of xs) {
    const t = time(x);
    if (t > last) {
      out.push(x);
      last = t;
    }
  }
  return out;
}

class ChartCtl {
  chart: IChartApi;
  candles: ISeriesApi<'Candlestick'>;
  volume: ISeriesApi<'Histogram'>;
  sess: ISeriesApi<'Histogram'>;
  sma: ISeriesApi<'Line'>;
  vwap: ISeriesApi<'Line'>;
  markers: ISeriesMarkersPluginApi<Time>;
  book: CandleBook = new CandleBook('1m');
  ticker = '';
  live = true;
  gen = 0;
  fills: FillMark[] = [];
  gaps: Gap[] = [];
  lastSma = new Map<number, number>();
  orderLines: OrderLines;

  constructor(
    el: HTMLElement,
    private legend: HTMLElement,
  ) {
    this.chart = createChart(el, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: '#0f1419' }, textColor: '#c9d1d9', attributionLogo: true },
      grid: { vertLines: { color: '#1c232b' }, horzLines: { color: '#1c232b' } },
      crosshair: { mode: CrosshairMode.Normal },
      rightPriceScale: { borderColor: '#2d333b' },
      timeScale: { borderColor: '#2d333b', timeVisible: true, secondsVisible: false },
    });
    this.sess = this.chart.addSeries(HistogramSeries, {
      priceScaleId: 'sess',
      color: 'rgba(120,140,170,0.08)',
      priceLineVisible: false,
      lastValueVisible: false,
      base: 0,
    });
    this.chart.priceScale('sess').applyOptions({ scaleMargins: { top: 0, bottom: 0 }, visible: false });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceScaleId: 'vol',
      priceFormat: { type: 'volume' },
      priceLineVisible: false,
      lastValueVisible: false,
    });
    this.chart.priceScale('vol').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 }, visible: false });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    this.chart.priceScale('right').applyOptions({ scaleMargins: { top: 0.08, bottom: 0.22 } });
    this.sma = this.chart.addSeries(LineSeries, { color: '#f0b429', lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false });
    this.vwap = this.chart.addSeries(LineSeries, { color: '#7aa2f7', lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false });
    this.markers = createSeriesMarkers(this.candles, []);
    this.orderLines = new OrderLines(this.chart, this.candles, el);
    this.chart.subscribeCrosshairMove((p) => {
      const c = p.seriesData.get(this.candles) as { open: number; high: number; low: number; close: number } | undefined;
      if (!c) {
        this.showLegend(this.book.candles[this.book.candles.length - 1] ?? null);
        return;
      }
      const v = p.seriesData.get(this.volume) as { value: number } | undefined;
      const s = p.seriesData.get(this.sma) as { value: number } | undefined;
      const w = p.seriesData.get(this.vwap) as { value: number } | undefined;
      this.legendText(c.open, c.high, c.low, c.close, v?.value, s?.value, w?.value);
    });
  }

  legendText(o: number, h: number, l: number, c: number, v?: number, s?: number, w?: number): void {
    this.legend.textContent = `${this.ticker} ${this.book.tf}  O ${fmtNum(o)}  H ${fmtNum(h)}  L ${fmtNum(l)}  C ${fmtNum(c)}  V ${fmtVol(v ?? null)}  SMA9 ${fmtNum(s ?? null)}  VWAP ${fmtNum(w ?? null)}`;
  }

  showLegend(c: Candle | null): void {
    if (!c) {
      this.legend.textContent = this.ticker ? `${this.ticker} — no data` : '';
      return;
    }
    const d = this.vwap.dataByIndex(Number.MAX_SAFE_INTEGER, -1) as { value?: number } | null;
    const s = this.sma.dataByIndex(Number.MAX_SAFE_INTEGER, -1) as { value?: number } | null;
    this.legendText(c.o, c.h, c.l, c.c, c.v, s?.value, d?.value);
  }

  bar(c: Candle) {
    return { time: ts(c.t), open: c.o, high: c.h, low: c.l, close: c.c };
  }
  vol(c: Candle) {
    return { time: ts(c.t), value: c.v, color: c.c >= c.o ? 'rgba(38,166,154,0.45)' : 'rgba(239,83,80,0.45)' };
  }

  async load(ticker: string, tfv: Tf, sess: string | null, live: boolean): Promise<void> {
    const gen = ++this.gen;
    this.ticker = ticker;
    this.live = live;
    this.book = new CandleBook(tfv);
    this.chart.applyOptions({ timeScale: { secondsVisible: tfv === '1s' } });
    const seen = recentSeconds.snapshot(ticker);
    let data: Candles;
    try {
      data = await fetchCandles(ticker, tfv, sess, tfv === '1D' ? 365 : 2000);
    } catch (e) {
      if (gen === this.gen) this.legend.textContent = `${ticker}: ${(e as Error).message}`;
      return;
    }
    if (gen !== this.gen) return;
    this.book.setHistory(columnsToCandles(data), seen);
    this.render(data);
    this.chart.timeScale().fitContent();
    void this.loadMarkers(gen, ticker, data.session ?? sess);
  }

  render(data?: Candles): void {
    // Strictly increasing chart times: the repeated hour when New York falls back maps two
    // instants to one wall-clock time, which lightweight-charts refuses.
    const cs = increasing(this.book.candles, (c) => ts(c.t));
    this.candles.setData(cs.map((c) => this.bar(c)));
    this.volume.setData(cs.map((c) => this.vol(c)));
    const intraday = tfMs(this.book.tf) < 3_600_000;
    this.sess.setData(intraday ? cs.map((c) => ({ time: ts(c.t), value: regular(c.t) ? 0 : 1 })) : []);
    if (data) {
      const line = (arr: (number | null)[]) => {
        const out: { time: UTCTimestamp; value: number }[] = [];
        for (let i = 0; i < data.t.length; i++) {
          const v = arr[i];
          const time = ts(data.t[i]);
          if (v != null && (!out.length || time > out[out.length - 1].time)) out.push({ time, value: v });
        }
        return out;
      };
      this.sma.setData(line(data.sma9 ?? []));
      this.vwap.setData(line(data.vwap ?? []));
    }
    this.showLegend(cs[cs.length - 1] ?? null);
  }

  async loadMarkers(gen: number, ticker: string, sess: string | null): Promise<void> {
    const first = this.book.candles[0]?.t;
    const { fills, gaps } = await fetchMarkers(ticker, sess, first ?? null);
    if (gen !== this.gen) return;
    this.fills = fills;
    this.gaps = gaps.filter((g) => !g.symbols || !g.symbols.length || g.symbols.includes(ticker));
    await loadSignals(ticker, sess);
    if (gen === this.gen) this.applyMarkers();
  }

  applyMarkers(): void {
    const tfv = this.book.tf;
    const first = this.book.candles[0]?.t ?? Infinity;
    const lastC = this.book.candles[this.book.candles.length - 1]?.t ?? -Infinity;
    const inRange = (t: number) => t >= first && t <= lastC + tfMs(tfv);
    const m: SeriesMarker<Time>[] = [];
    for (const f of this.fills) {
      if (!inRange(f.t)) continue;
      const buy = isBuy(f.instruction);
      m.push({
        time: ts(bucketStart(f.t, tfv)),
        position: buy ? 'belowBar' : 'aboveBar',
        shape: buy ? 'arrowUp' : 'arrowDown',
        color: buy ? '#3fb950' : '#f85149',
        text: `${buy ? 'B' : 'S'} ${f.quantity}@${fmtNum(f.price)}`,
      });
    }
    for (const g of this.gaps) {
      const t = Date.parse(g.started_at);
      if (!Number.isFinite(t) || !inRange(t)) continue;
      m.push({ time: ts(bucketStart(t, tfv)), position: 'aboveBar', shape: 'square', color: '#d29922', text: `gap${g.reason ? `: ${g.reason}` : ''}` });
    }
    for (const x of crosses.value) {
      if (!inRange(x.t)) continue;
      m.push({
        time: ts(bucketStart(x.t, tfv)),
        position: x.direction === 'up' ? 'belowBar' : 'aboveBar',
        shape: 'circle',
        color: x.direction === 'up' ? '#56d364' : '#ff7b72',
        text: x.direction === 'up' ? '×↑' : '×↓',
      });
    }
    m.sort((a, b) => (a.time as number) - (b.time as number));
    this.markers.setMarkers(m);
  }

  /** Live rows (already batched per animation frame). */
  onRows(rows: { ticker: string; ts: number; price: number | null; volume: number | null; sma9: number | null; vwap: number | null }[]): void {
    if (!this.live) return;
    let changed: Candle | null = null;
    let newBars = false;
    for (const r of rows) {
      if (r.ticker !== this.ticker) continue;
      const before = this.book.candles.length;
      const c = this.book.apply(r);
      if (!c) continue;
      if (this.book.candles.length !== before) newBars = true;
      if (changed && changed !== c) this.push(changed);
      changed = c;
      const bt = ts(bucketStart(r.ts, this.book.tf));
      if (c === this.book.candles[this.book.candles.length - 1]) {
        try {
          if (r.sma9 != null) this.sma.update({ time: bt, value: r.sma9 });
          if (r.vwap != null) this.vwap.update({ time: bt, value: r.vwap });
        } catch {
          /* a line point older than its last one */
        }
      }
    }
    if (changed) {
      this.push(changed);
      if (newBars && tfMs(this.book.tf) < 3_600_000) this.sess.update({ time: ts(changed.t), value: regular(changed.t) ? 0 : 1 });
      this.showLegend(this.book.candles[this.book.candles.length - 1]);
    }
  }

  push(c: Candle): void {
    const last = this.book.candles[this.book.candles.length - 1];
    if (c.t < (last?.t ?? 0) - tfMs(this.book.tf) * 3) return; // too old for update()
    try {
      this.candles.update(this.bar(c), c !== last);
      this.volume.update(this.vol(c), c !== last);
    } catch {
      /* an update older than the last bar: the next render fixes it */
    }
  }

  /** After a reconnect: refetch the buckets since the last one seen and merge. */
  async backfill(): Promise<void> {
    if (!this.live || !this.ticker) return;
    const gen = this.gen;
    const limit = backfillLimit(this.book.lastBucket(), Date.now(), this.book.tf);
    const data = await fetchCandles(this.ticker, this.book.tf, null, limit).catch(() => null);
    if (!data || gen !== this.gen) return;
    this.book.mergeBackfill(columnsToCandles(data));
    this.render();
    const line = (arr: (number | null)[] | undefined, s: ISeriesApi<'Line'>) => {
      if (!arr) return;
      for (let i = 0; i < data.t.length; i++) {
        const v = arr[i];
        if (v != null) {
          try {
            s.update({ time: ts(data.t[i]), value: v });
          } catch {
            /* older than the line's last point */
          }
        }
      }
    };
    line(data.sma9, this.sma);
    line(data.vwap, this.vwap);
  }

  destroy(): void {
    this.gen++;
    this.orderLines.destroy();
    this.chart.remove();
  }
}

export function Chart() {
  const host = useRef<HTMLDivElement>(null);
  const legend = useRef<HTMLDivElement>(null);
  const ctlRef = useRef<ChartCtl | null>(null);
  useEffect(() => {
    const ctl = new ChartCtl(host.current!, legend.current!);
    ctlRef.current = ctl;
    const stopLines = effect(() => {
      const t = selected.value;
      ctl.orderLines.set(t ?? '', t ? priceLines(orders.value, t) : []);
    });
    const stopSessions = effect(() => {
      const t = selected.value;
      if (t) void loadSessions(t);
    });
    const stopLoad = effect(() => {
      const t = selected.value;
      const tfv = tf.value;
      const sess = session.value;
      void reload.value;
      if (!t) return;
      // null = the latest session: live. A picked date is history unless it is the latest.
      void ctl.load(t, tfv, sess, sess == null || untracked(isLive));
    });
    // The list arriving later can only turn a picked date that is the latest one live.
    const stopLive = effect(() => {
      void sessions.value;
      ctl.live = session.peek() == null || untracked(isLive);
    });
    const stopMarkers = effect(() => {
      void crosses.value;
      ctl.applyMarkers();
    });
    const offEq = onEquity((rows) => ctl.onRows(rows));
    const offBf = onBackfill(() => void ctl.backfill());
    const offTrade = onTrade(({ status: st, filled_quantity: fq }) => {
      if (st === 'filled' || st === 'partially_filled' || (fq ?? 0) > 0) void ctl.loadMarkers(ctl.gen, ctl.ticker, shownSession());
    });
    const iv = setInterval(() => {
      if (ctl.live && !document.hidden) void ctl.loadMarkers(ctl.gen, ctl.ticker, shownSession());
    }, 20_000);
    return () => {
      stopLines();
      ctlRef.current = null;
      stopLoad();
      stopSessions();
      stopLive();
      stopMarkers();
      offEq();
      offBf();
      offTrade();
      clearInterval(iv);
      ctl.destroy();
    };
  }, []);

  return (
    <section class="panel chart-panel">
      <div class="chart-toolbar">
        <div class="tfs" role="group" aria-label="Timeframe">
          {TIMEFRAMES.map((t) => (
            <button key={t} data-testid={`tf-${t}`} class={tf.value === t ? 'on' : ''} aria-pressed={tf.value === t} onClick={() => pickTf(t)}>
              {t}
            </button>
          ))}
        </div>
        <HistoryNav />
      </div>
      <div class="chart-wrap">
        <div ref={legend} class="legend" data-testid="chart-legend" />
        <div ref={host} class="chart" data-testid="chart" />
        <StopMoveBar lines={() => ctlRef.current?.orderLines ?? null} />
      </div>
    </section>
  );
}

function HistoryNav() {
  const list = sessions.value;
  const cur = shownSession();
  const idx = cur ? list.indexOf(cur) : -1;
  return (
    <div class="history">
      <button data-testid="session-prev" disabled={!list.length || idx === 0} onClick={() => stepSession(-1)} title="Previous session">
        ◀
      </button>
      <input
        type="date"
        data-testid="session-date"
        value={cur ?? ''}
        min={list[0]}
        max={list[list.length - 1]}
        onChange={(e) => {
          const v = (e.target as HTMLInputElement).value;
          if (!v) return;
          session.value = v === list[list.length - 1] ? null : v;
        }}
      />
      <button data-testid="session-next" disabled={session.value == null} onClick={() => stepSession(1)} title="Next session">
        ▶
      </button>
      <span class={isLive() ? 'badge live-badge' : 'badge hist-badge'} data-testid="session-mode">
        {isLive() ? 'LIVE' : 'HISTORY'}
      </span>
    </div>
  );
}
