// A fake of the few supabase-js methods the Supabase backend uses (src/backend/supabase/
// client.ts): in-memory tables with PostgREST's filter semantics for the operators we call,
// a recorded RPC, Realtime channels a test drives, and an auth client with sessions. Supabase
// itself is a third-party service we cannot run here; the fake keeps the unit tests honest
// about what is asked of it (every request is recorded).
import type { AuthEvent, Channel, ChannelStatus, PgError, PgResult, Query, Row, SbClient, Session, Table } from '../src/backend/supabase/client';

type Filter = { op: string; col: string; val: unknown };

export interface Recorded {
  table: string;
  kind: 'select' | 'insert';
  columns?: string;
  values?: Row;
  filters: Filter[];
  or?: string;
  order?: { col: string; ascending: boolean };
  limit?: number;
  range?: [number, number];
  single?: 'single' | 'maybe';
}

const TS = /^\d{4}-\d\d-\d\dT/;
function cmp(a: unknown, b: unknown): number {
  if (typeof a === 'string' && typeof b === 'string' && TS.test(a) && TS.test(b)) return Date.parse(a.replace(/(\.\d{3})\d+/, '$1')) - Date.parse(b.replace(/(\.\d{3})\d+/, '$1'));
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number' || typeof b === 'number') return Number(a) - Number(b);
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

function test(row: Row, f: Filter): boolean {
  const v = row[f.col];
  switch (f.op) {
    case 'eq':
      return v != null && cmp(v, f.val) === 0;
    case 'neq':
      return v != null && cmp(v, f.val) !== 0;
    case 'gt':
      return v != null && cmp(v, f.val) > 0;
    case 'gte':
      return v != null && cmp(v, f.val) >= 0;
    case 'lt':
      return v != null && cmp(v, f.val) < 0;
    case 'lte':
      return v != null && cmp(v, f.val) <= 0;
    case 'in':
      return (f.val as unknown[]).some((x) => v != null && cmp(v, x) === 0);
    case 'not.is':
      return f.val === null ? v != null : v !== f.val;
    case 'is':
      return f.val === null ? v == null : v === f.val;
    default:
      throw new Error(`fake: filter ${f.op}`);
  }
}

/** `a.is.null,b.gte.2026-...` (the forms the backend uses). */
function orFilters(s: string): Filter[] {
  return s.split(',').map((part) => {
    const [col, op, ...rest] = part.split('.');
    const raw = rest.join('.');
    return { col, op, val: op === 'is' && raw === 'null' ? null : raw };
  });
}

export class FakeSupabase implements SbClient {
  tables: Record<string, Row[]> = {};
  log: Recorded[] = [];
  rpcLog: { fn: string; args?: Row }[] = [];
  rpcHandlers: Record<string, (args?: Row) => PgResult<unknown>> = {};
  /** set to make inserts into a table fail (e.g. RLS) */
  insertError: Record<string, { error: PgError; status: number }> = {};
  channels: FakeChannel[] = [];
  removed: FakeChannel[] = [];
  tokens: (string | null | undefined)[] = [];
  readonly auth = new FakeAuth();
  readonly realtime = { setAuth: async (t?: string | null) => void this.tokens.push(t) };
  private nextId = 1000;

  from(relation: string): Table {
    return {
      select: (columns?: string) => new FakeQuery(this, { table: relation, kind: 'select', columns, filters: [] }),
      insert: (values: Row) => new FakeQuery(this, { table: relation, kind: 'insert', values, filters: [] }),
    };
  }

  rpc(fn: string, args?: Row): PromiseLike<PgResult<unknown>> {
    this.rpcLog.push({ fn, args });
    const h = this.rpcHandlers[fn];
    return Promise.resolve(h ? h(args) : { data: null, error: { code: 'PGRST202', message: `Could not find the function public.${fn}` }, status: 404 });
  }

  channel(topic: string, options?: { config: { private?: boolean } }): Channel {
    const ch = new FakeChannel(topic, options?.config ?? {});
    this.channels.push(ch);
    return ch;
  }

  async removeChannel(ch: Channel): Promise<unknown> {
    this.removed.push(ch as FakeChannel);
    return 'ok';
  }

  /** Resolve a recorded request against the tables. */
  execute(r: Recorded): PgResult<unknown> {
    this.log.push(r);
    if (r.kind === 'insert') {
      const err = this.insertError[r.table];
      if (err) return { data: null, error: err.error, status: err.status };
      const row: Row = { id: this.nextId++, created_at: new Date(0).toISOString(), status: 'pending', filled_quantity: 0, ...r.values };
      (this.tables[r.table] ??= []).push(row);
      return { data: r.single ? row : [row], error: null, status: 201 };
    }
    let rows = (this.tables[r.table] ?? []).filter((row) => r.filters.every((f) => test(row, f)));
    if (r.or) {
      const any = orFilters(r.or);
      rows = rows.filter((row) => any.some((f) => test(row, f)));
    }
    if (r.order) {
      const { col, ascending } = r.order;
      rows = rows.slice().sort((a, b) => (ascending ? 1 : -1) * cmp(a[col], b[col]));
    }
    if (r.range) rows = rows.slice(r.range[0], r.range[1] + 1);
    if (r.limit != null) rows = rows.slice(0, r.limit);
    // Supabase's max_rows
    rows = rows.slice(0, 1000);
    const pick = (row: Row): Row => {
      if (!r.columns || r.columns === '*') return { ...row };
      const out: Row = {};
      for (const c of r.columns.split(',')) out[c.trim()] = row[c.trim()];
      return out;
    };
    const data = rows.map(pick);
    if (r.single === 'single') return data.length === 1 ? { data: data[0], error: null, status: 200 } : { data: null, error: { code: 'PGRST116', message: 'JSON object requested, multiple (or no) rows returned' }, status: 406 };
    if (r.single === 'maybe') return { data: data[0] ?? null, error: null, status: 200 };
    return { data, error: null, status: 200 };
  }

  /** Requests to `table` so far. */
  requests(table: string): Recorded[] {
    return this.log.filter((r) => r.table === table);
  }
}

class FakeQuery implements Query {
  constructor(
    private readonly sb: FakeSupabase,
    private readonly r: Recorded,
  ) {}
  private f(op: string, col: string, val: unknown): Query {
    this.r.filters.push({ op, col, val });
    return this;
  }
  select(columns?: string): Query {
    if (this.r.kind === 'insert') this.r.columns = columns;
    else this.r.columns = columns;
    return this;
  }
  eq = (c: string, v: unknown) => this.f('eq', c, v);
  neq = (c: string, v: unknown) => this.f('neq', c, v);
  gt = (c: string, v: unknown) => this.f('gt', c, v);
  gte = (c: string, v: unknown) => this.f('gte', c, v);
  lt = (c: string, v: unknown) => this.f('lt', c, v);
  lte = (c: string, v: unknown) => this.f('lte', c, v);
  in = (c: string, v: readonly unknown[]) => this.f('in', c, [...v]);
  not = (c: string, op: string, v: unknown) => this.f(`not.${op}`, c, v);
  or(filters: string): Query {
    this.r.or = filters;
    return this;
  }
  order(col: string, options?: { ascending?: boolean }): Query {
    this.r.order = { col, ascending: options?.ascending ?? true };
    return this;
  }
  limit(n: number): Query {
    this.r.limit = n;
    return this;
  }
  range(from: number, to: number): Query {
    this.r.range = [from, to];
    return this;
  }
  single(): PromiseLike<PgResult<Row>> {
    this.r.single = 'single';
    return Promise.resolve(this.sb.execute(this.r) as PgResult<Row>);
  }
  maybeSingle(): PromiseLike<PgResult<Row | null>> {
    this.r.single = 'maybe';
    return Promise.resolve(this.sb.execute(this.r) as PgResult<Row | null>);
  }
  then<A = PgResult<Row[]>, B = never>(ok?: ((v: PgResult<Row[]>) => A | PromiseLike<A>) | null, bad?: ((e: unknown) => B | PromiseLike<B>) | null): PromiseLike<A | B> {
    return Promise.resolve(this.sb.execute(this.r) as PgResult<Row[]>).then(ok, bad);
  }
}

export class FakeChannel implements Channel {
  handlers: { event: string; cb: (m: { event?: string; payload?: unknown }) => void }[] = [];
  statusCb: ((s: ChannelStatus, err?: Error) => void) | null = null;
  subscribed = false;
  constructor(
    readonly topic: string,
    readonly config: { private?: boolean },
  ) {}
  on(_type: 'broadcast', filter: { event: string }, cb: (m: { event?: string; payload?: unknown }) => void): Channel {
    this.handlers.push({ event: filter.event, cb });
    return this;
  }
  subscribe(cb?: (s: ChannelStatus, err?: Error) => void): Channel {
    this.subscribed = true;
    this.statusCb = cb ?? null;
    return this;
  }
  /** Realtime delivers a broadcast */
  emit(event: string, payload: unknown): void {
    for (const h of this.handlers) if (h.event === event) h.cb({ event, payload, type: 'broadcast' } as never);
  }
  status(s: ChannelStatus): void {
    this.statusCb?.(s);
  }
}

export class FakeAuth {
  users: Record<string, { password: string; id: string }> = {};
  session: Session | null = null;
  otp: { email: string; options?: unknown }[] = [];
  private cbs: ((e: AuthEvent, s: Session | null) => void)[] = [];
  private n = 0;

  async getSession() {
    return { data: { session: this.session }, error: null };
  }
  async signInWithPassword(c: { email: string; password: string }) {
    const u = this.users[c.email];
    if (!u || u.password !== c.password) return { data: { session: null }, error: { message: 'Invalid login credentials', code: 'invalid_credentials', status: 400 } };
    this.session = { access_token: `token-${u.id}-${++this.n}`, user: { id: u.id, email: c.email } };
    this.fire('SIGNED_IN');
    return { data: { session: this.session }, error: null };
  }
  async signInWithOtp(c: { email: string; options?: { emailRedirectTo?: string; shouldCreateUser?: boolean } }) {
    this.otp.push(c);
    if (!this.users[c.email] && c.options?.shouldCreateUser === false) return { error: { message: 'Signups not allowed for otp', code: 'otp_disabled', status: 422 } };
    return { error: null };
  }
  async signOut() {
    this.session = null;
    this.fire('SIGNED_OUT');
    return { error: null };
  }
  onAuthStateChange(cb: (e: AuthEvent, s: Session | null) => void) {
    this.cbs.push(cb);
    return { data: { subscription: { unsubscribe: () => void (this.cbs = this.cbs.filter((x) => x !== cb)) } } };
  }
  /** supabase-js refreshed the token / the magic link arrived / another tab signed out */
  fire(e: AuthEvent): void {
    for (const cb of this.cbs) cb(e, this.session);
  }
  refresh(): void {
    if (!this.session) return;
    this.session = { ...this.session, access_token: `${this.session.access_token}-r` };
    this.fire('TOKEN_REFRESHED');
  }
}
