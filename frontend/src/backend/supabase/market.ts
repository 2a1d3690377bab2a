// Market-data reads through PostgREST: candles, sessions, quotes, option chain, stream gaps.
// The gateway does the same in SQL (services/gateway/streamdesk_gateway/market_sql.py); here
// the API offers plain filtered selects, so aggregation happens in the browser (rows.ts) and
// the reads are bounded: a session's 1-minute bars (<= 960 rows) per intraday chart, the
// last DAILY_SESSIONS sessions for 1D, SESSIONS_LISTED sessions in the history list.
import type { Tf } from '../../lib/candles';
import { nyDate, nySessionBounds } from '../../lib/nytime';
import type { CandlesData, ChainData, GapsData, QuotesData, SessionsData } from '../types';
import type { Row, SbClient } from './client';
import { pagesDesc, rows, run } from './query';
import { barRow, barsToCandles, buildCandles, candlesToData, chainFromRows, iso, num, parseTs, secondRow, secondsToCandles, type Bar, type SecondRow } from './rows';

/** 1D charts read this many sessions of 1-minute bars (the gateway's SQL rolls up a year). */
export const DAILY_SESSIONS = 10;
/** The history navigation lists this many sessions (one small request each). */
export const SESSIONS_LISTED = 15;
/** Per-second rows read to build 1m+ candles of a session that has no bars_1m rows. */
const SECONDS_FALLBACK = 3600;
/** Newest option rows read for a chain (the latest of each contract among them). */
const CHAIN_ROWS = 2000;
const DAY_MS = 86_400_000;

const BAR_COLS = 'bucket,open,high,low,close,volume,vwap';

export class MarketReads {
  constructor(private readonly sb: SbClient) {}

  /** New York date of the ticker's newest second or bar; null without data. */
  async latestSession(ticker: string): Promise<string | null> {
    const ctx = { what: `latest data of ${ticker}` };
    const [sec, bar] = await Promise.all([
      rows(this.sb.from('equity_data').select('timestamp').eq('ticker', ticker).order('timestamp', { ascending: false }).limit(1), ctx),
      rows(this.sb.from('bars_1m').select('bucket').eq('ticker', ticker).order('bucket', { ascending: false }).limit(1), ctx),
    ]);
    const t = Math.max(sec[0] ? parseTs(sec[0].timestamp) : -Infinity, bar[0] ? parseTs(bar[0].bucket) : -Infinity);
    return Number.isFinite(t) ? nyDate(t) : null;
  }

  async candles(ticker: string, tf: Tf, session: string | null, limit: number): Promise<CandlesData> {
    const day = session ?? (await this.latestSession(ticker));
    if (!day) return candlesToData(ticker, tf, null, []);
    const [lo, hi] = nySessionBounds(day);
    if (tf === '1s') return this.seconds(ticker, day, lo, hi, limit);
    if (tf === '1D') return this.daily(ticker, day, hi, limit);
    const ctx = { what: `${ticker} ${tf} bars` };
    const [bars, prior] = await Promise.all([
      // a session is at most 1500 minutes (25 h on the fall-back day): two pages at most
      pagesDesc((b) => this.barsQuery(ticker, b ?? iso(hi)).gte('bucket', iso(lo)), 'bucket', 1500, ctx),
      this.priorCloses(ticker, lo),
    ]);
    const parsed = bars.map(barRow).filter((b): b is Bar => b != null);
    if (!parsed.length) return this.fromSeconds(ticker, tf, day, lo, hi, limit);
    return barsToCandles(ticker, tf, day, parsed, limit, prior);
  }

  private barsQuery(ticker: string, beforeIso: string) {
    return this.sb.from('bars_1m').select(BAR_COLS).eq('ticker', ticker).lt('bucket', beforeIso);
  }

  /** Closes of the 8 bars before `lo`, oldest first (SMA9 of the session's first minutes). */
  private async priorCloses(ticker: string, lo: number): Promise<number[]> {
    const r = await rows(this.barsQuery(ticker, iso(lo)).order('bucket', { ascending: false }).limit(8), { what: `${ticker} bars` });
    return r
      .map((x) => num(x.close))
      .filter((x): x is number => x != null)
      .reverse();
  }

  private async seconds(ticker: string, day: string, lo: number, hi: number, limit: number): Promise<CandlesData> {
    const ctx = { what: `${ticker} seconds` };
    const secs = await pagesDesc((b) => this.sb.from('equity_data').select('timestamp,price,volume').eq('ticker', ticker).gte('timestamp', iso(lo)).lt('timestamp', b ?? iso(hi)), 'timestamp', limit, ctx);
    if (!secs.length) return candlesToData(ticker, '1s', day, []);
    const first = secs[secs.length - 1].timestamp;
    const last = secs[0].timestamp;
    const ind = await pagesDesc(
      (b) => {
        const q = this.sb.from('indicators').select('timestamp,sma9,vwap').eq('ticker', ticker).gte('timestamp', first);
        return b ? q.lt('timestamp', b) : q.lte('timestamp', last);
      },
      'timestamp',
      limit,
      { what: `${ticker} indicators` },
    );
    return secondsToCandles(ticker, day, secs, ind);
  }

  /** Seconds without bars (tools, tests write them): the last hour's rows rolled up here. */
  private async fromSeconds(ticker: string, tf: Tf, day: string, lo: number, hi: number, limit: number): Promise<CandlesData> {
    const secs = await pagesDesc((b) => this.sb.from('equity_data').select('timestamp,price,volume').eq('ticker', ticker).gte('timestamp', iso(lo)).lt('timestamp', b ?? iso(hi)), 'timestamp', SECONDS_FALLBACK, { what: `${ticker} seconds` });
    const cs = buildCandles(secs.map(secondRow).filter((r): r is SecondRow => r != null), tf);
    return candlesToData(ticker, tf, day, cs.slice(-limit));
  }

  private async daily(ticker: string, day: string, hi: number, limit: number): Promise<CandlesData> {
    const n = Math.min(limit, DAILY_SESSIONS);
    const lo = hi - (Math.ceil(n * 1.5) + 7) * DAY_MS; // n sessions span at most ~1.5 n days
    const cap = n * 1000;
    const bars = await pagesDesc((b) => this.barsQuery(ticker, b ?? iso(hi)).gte('bucket', iso(lo)), 'bucket', cap, { what: `${ticker} daily bars` });
    let parsed = bars.map(barRow).filter((b): b is Bar => b != null);
    if (bars.length >= cap && parsed.length) {
      // stopped by the cap: the oldest day may be cut, so it goes
      const oldestDay = nyDate(parsed[parsed.length - 1].t);
      parsed = parsed.filter((b) => nyDate(b.t) !== oldestDay);
    }
    return barsToCandles(ticker, '1D', day, parsed, n);
  }

  /** The ticker's newest sessions, ascending: one "newest bar before this day" probe per
   * session (the gateway's loose index scan, driven from here), plus the newest seconds. */
  async sessions(ticker: string, max = SESSIONS_LISTED): Promise<SessionsData> {
    const days = new Set<string>();
    const latest = await this.latestSession(ticker);
    if (latest) days.add(latest);
    let before: string | null = null;
    for (let i = 0; i < max; i++) {
      let q = this.sb.from('bars_1m').select('bucket').eq('ticker', ticker);
      if (before) q = q.lt('bucket', before);
      const r = await rows(q.order('bucket', { ascending: false }).limit(1), { what: `${ticker} sessions` });
      if (!r.length) break;
      const d = nyDate(parseTs(r[0].bucket));
      days.add(d);
      before = iso(nySessionBounds(d)[0]);
    }
    return { ticker, sessions: [...days].sort().slice(-max) };
  }

  /** Latest price, bid/ask, session volume, SMA9/VWAP and previous close per ticker. */
  async quotes(tickers: readonly string[]): Promise<QuotesData> {
    const out: QuotesData = {};
    await Promise.all(
      tickers.map(async (t) => {
        const ctx = { what: `quote of ${t}` };
        const last = await rows(this.sb.from('equity_data').select('timestamp,price,bid,ask,cum_volume').eq('ticker', t).order('timestamp', { ascending: false }).limit(1), ctx);
        const r = last[0];
        const ts = r ? parseTs(r.timestamp) : null;
        const dayStart = ts != null ? nySessionBounds(nyDate(ts))[0] : null;
        const [ind, prev] = await Promise.all([
          r ? rows(this.sb.from('indicators').select('sma9,vwap').eq('ticker', t).eq('timestamp', r.timestamp).limit(1), ctx) : Promise.resolve([] as Row[]),
          rows(dayStart != null ? this.barsQuery(t, iso(dayStart)).order('bucket', { ascending: false }).limit(1) : this.sb.from('bars_1m').select('close').eq('ticker', t).order('bucket', { ascending: false }).limit(1), ctx),
        ]);
        if (!r && !prev.length) return;
        out[t] = {
          bid: num(r?.bid),
          ask: num(r?.ask),
          last: num(r?.price),
          ts,
          volume: num(r?.cum_volume),
          prev_close: num(prev[0]?.close),
          sma9: num(ind[0]?.sma9),
          vwap: num(ind[0]?.vwap),
        };
      }),
    );
    return out;
  }

  async options(underlying: string): Promise<ChainData> {
    const cols = 'ticker,timestamp,option_type,strike_price,expiration_date,last_price,bid,ask,delta,gamma,theta,vega,implied_volatility,open_interest,underlying_price';
    const ctx = { what: `${underlying} option chain` };
    const all: Row[] = [];
    for (let from = 0; from < CHAIN_ROWS; from += 1000) {
      const page = await rows(
        this.sb
          .from('option_prices')
          .select(cols)
          .eq('underlying', underlying)
          .order('timestamp', { ascending: false })
          .range(from, from + 999),
        ctx,
      );
      all.push(...page);
      if (page.length < 1000) break;
    }
    return chainFromRows(underlying, all);
  }

  async gaps(since: number | undefined, limit: number): Promise<GapsData> {
    let q = this.sb.from('stream_gaps').select('id,source,started_at,ended_at,symbols,reason');
    if (since != null) q = q.or(`ended_at.is.null,ended_at.gte.${iso(since)}`);
    const r = await run(q.order('started_at', { ascending: false }).limit(limit), { what: 'stream gaps' });
    return (r ?? []).map((g) => ({
      id: Number(g.id),
      source: String(g.source ?? ''),
      started_at: String(g.started_at),
      ended_at: g.ended_at == null ? null : String(g.ended_at),
      symbols: Array.isArray(g.symbols) ? g.symbols.map(String) : [],
      reason: String(g.reason ?? ''),
    }));
  }

  /** Newest price per symbol (equity: equity_data; option: option_prices last, else mid). */
  async marks(symbols: { symbol: string; asset_type: string }[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    await Promise.all(
      symbols.map(async ({ symbol, asset_type }) => {
        const opt = asset_type === 'OPTION';
        const r = await rows(
          this.sb
            .from(opt ? 'option_prices' : 'equity_data')
            .select(opt ? 'last_price,bid,ask' : 'price')
            .eq('ticker', symbol)
            .order('timestamp', { ascending: false })
            .limit(1),
          { what: `mark of ${symbol}` },
        ).catch(() => [] as Row[]);
        const x = r[0];
        if (!x) return;
        const bid = num(x.bid);
        const ask = num(x.ask);
        const m = opt ? (num(x.last_price) ?? (bid != null && ask != null ? (bid + ask) / 2 : null)) : num(x.price);
        if (m != null) out.set(symbol, m);
      }),
    );
    return out;
  }
}
