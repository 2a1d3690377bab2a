// The few supabase-js methods the Supabase backend uses, as a structural type: the real
// client (create.ts) satisfies it, and unit tests pass a small fake of it (test/fake-supabase.ts).
// Nothing here imports supabase-js.

export type Row = Record<string, unknown>;

/** A PostgREST error (`code` is the SQLSTATE, or PGRST...). */
export interface PgError {
  code?: string;
  message: string;
  details?: string | null;
  hint?: string | null;
}

export interface PgResult<T> {
  data: T | null;
  error: PgError | null;
  status?: number;
}

/** PostgREST filter builder: chainable, awaited for `{data, error}`. */
export interface Query extends PromiseLike<PgResult<Row[]>> {
  select(columns?: string): Query;
  eq(column: string, value: unknown): Query;
  neq(column: string, value: unknown): Query;
  gt(column: string, value: unknown): Query;
  gte(column: string, value: unknown): Query;
  lt(column: string, value: unknown): Query;
  lte(column: string, value: unknown): Query;
  in(column: string, values: readonly unknown[]): Query;
  not(column: string, operator: string, value: unknown): Query;
  or(filters: string): Query;
  order(column: string, options?: { ascending?: boolean }): Query;
  limit(count: number): Query;
  range(from: number, to: number): Query;
  single(): PromiseLike<PgResult<Row>>;
  maybeSingle(): PromiseLike<PgResult<Row | null>>;
}

export interface Table {
  select(columns?: string): Query;
  insert(values: Row): Query;
}

export interface Session {
  access_token: string;
  user: { id: string; email?: string | null };
}

export type AuthEvent = 'INITIAL_SESSION' | 'PASSWORD_RECOVERY' | 'SIGNED_IN' | 'SIGNED_OUT' | 'TOKEN_REFRESHED' | 'USER_UPDATED' | 'MFA_CHALLENGE_VERIFIED';

export interface AuthClient {
  getSession(): Promise<{ data: { session: Session | null }; error: { message: string } | null }>;
  signInWithPassword(c: { email: string; password: string }): Promise<{ data: { session: Session | null }; error: { message: string; code?: string; status?: number } | null }>;
  signInWithOtp(c: { email: string; options?: { emailRedirectTo?: string; shouldCreateUser?: boolean } }): Promise<{ error: { message: string; code?: string; status?: number } | null }>;
  signOut(): Promise<{ error: { message: string } | null }>;
  onAuthStateChange(cb: (event: AuthEvent, session: Session | null) => void): { data: { subscription: { unsubscribe(): void } } };
}

export type ChannelStatus = 'SUBSCRIBED' | 'TIMED_OUT' | 'CLOSED' | 'CHANNEL_ERROR';

export interface Channel {
  on(type: 'broadcast', filter: { event: string }, callback: (message: { event?: string; payload?: unknown; [k: string]: unknown }) => void): Channel;
  subscribe(callback?: (status: ChannelStatus, err?: Error) => void): Channel;
}

export interface SbClient {
  from(relation: string): Table;
  rpc(fn: string, args?: Row): PromiseLike<PgResult<unknown>>;
  channel(topic: string, options?: { config: { private?: boolean; broadcast?: { self?: boolean; ack?: boolean } } }): Channel;
  removeChannel(channel: Channel): Promise<unknown>;
  realtime: { setAuth(token?: string | null): Promise<void> };
  auth: AuthClient;
}
