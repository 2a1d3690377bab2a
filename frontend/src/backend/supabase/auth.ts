// Supabase Auth for the dashboard: email + password, or a magic link (an existing account
// only: the dashboard never signs anyone up). The session is supabase-js's own (kept in
// localStorage, refreshed by it); its access token goes to Realtime on every change.
// Whether the user may trade is the operators allow-list, asked through
// `streamdesk_is_operator()` (docs/supabase.md, identities).
import { BackendError } from '../errors';
import type { AuthApi, AuthState, AuthUser, LoginMethod } from '../types';
import type { AuthEvent, SbClient, Session } from './client';

const SIGNED_OUT: AuthState = { signedIn: false, user: null };

function userOf(s: Session | null): AuthUser | null {
  return s ? { id: s.user.id, email: s.user.email ?? null } : null;
}

/** Supabase Auth errors -> what the login form says. */
export function authError(e: { message: string; code?: string; status?: number }): BackendError {
  const code = e.code ?? '';
  if (code === 'invalid_credentials' || /invalid login credentials/i.test(e.message)) return new BackendError('unauthorized', 'Wrong email or password.', e.status, code);
  if (code === 'email_not_confirmed') return new BackendError('unauthorized', 'Confirm your email address first (see the sign-up mail).', e.status, code);
  if (code === 'otp_disabled' || code === 'signup_disabled' || /signups not allowed/i.test(e.message)) return new BackendError('unauthorized', 'No account with this email (ask the administrator to invite you).', e.status, code);
  if (e.status === 429 || code === 'over_request_rate_limit' || code === 'over_email_send_rate_limit') return new BackendError('rate_limited', 'Too many attempts — wait and retry.', 429, code);
  if (!e.status) return new BackendError('unavailable', `Supabase unreachable (${e.message})`, 0, code);
  return new BackendError('error', e.message, e.status, code);
}

export class SupabaseAuth implements AuthApi {
  readonly methods: readonly LoginMethod[] = ['password', 'magic-link'];
  session: Session | null = null;
  private operatorOf: { user: string; value: boolean | null } | null = null;
  private asking: { user: string; answer: Promise<boolean | null> } | null = null;
  private readonly listeners = new Set<(s: AuthState) => void>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly sb: SbClient,
    /** the access token changed (null: signed out): Realtime needs it */
    private readonly onToken: (token: string | null) => void,
  ) {}

  /** Follow supabase-js's session (sign-in elsewhere, refresh, expiry, magic-link arrival). */
  listen(): void {
    if (this.unsubscribe) return;
    const { data } = this.sb.auth.onAuthStateChange((event, session) => this.onEvent(event, session));
    this.unsubscribe = () => data.subscription.unsubscribe();
  }

  onEvent(event: AuthEvent, session: Session | null): void {
    const before = this.session;
    if (event === 'SIGNED_OUT' || !session) {
      this.session = null;
      this.operatorOf = null;
      if (before) {
        this.onToken(null);
        this.emit(SIGNED_OUT);
      } else if (event === 'SIGNED_OUT') this.emit(SIGNED_OUT);
      return;
    }
    this.session = session;
    if (before?.user.id !== session.user.id) this.operatorOf = null;
    if (before?.access_token !== session.access_token) this.onToken(session.access_token);
    // A refreshed token is the same sign-in: nothing for the page to do.
    if (!before || before.user.id !== session.user.id) this.emit({ signedIn: true, user: userOf(session) });
  }

  private emit(s: AuthState): void {
    for (const fn of this.listeners) fn(s);
  }

  async current(): Promise<AuthState> {
    const { data, error } = await this.sb.auth.getSession();
    if (error) throw authError(error);
    const s = data.session;
    if (s && this.session?.access_token !== s.access_token) this.onToken(s.access_token);
    this.session = s;
    return s ? { signedIn: true, user: userOf(s) } : SIGNED_OUT;
  }

  async signInWithPassword(email: string, password: string): Promise<void> {
    const { data, error } = await this.sb.auth.signInWithPassword({ email: email.trim(), password });
    if (error) throw authError(error);
    if (data.session) this.onEvent('SIGNED_IN', data.session);
  }

  async sendMagicLink(email: string, redirectTo: string): Promise<void> {
    const { error } = await this.sb.auth.signInWithOtp({ email: email.trim(), options: { emailRedirectTo: redirectTo, shouldCreateUser: false } });
    if (error) throw authError(error);
  }

  async logout(): Promise<void> {
    const { error } = await this.sb.auth.signOut();
    // Signed out locally whatever the server said (an expired session cannot be revoked).
    this.onEvent('SIGNED_OUT', null);
    if (error) throw authError(error);
  }

  onChange(fn: (s: AuthState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  userId(): string | null {
    return this.session?.user.id ?? null;
  }

  /** On the operators allow-list? Asked until answered, once per signed-in user; null when
   * the project cannot say (RLS still decides at insert). */
  async isOperator(): Promise<boolean | null> {
    const uid = this.userId();
    if (!uid) return false;
    if (this.operatorOf?.user === uid) return this.operatorOf.value;
    if (this.asking?.user === uid) return this.asking.answer; // one question at a time
    const answer = (async () => {
      let value: boolean | null = null;
      try {
        const { data, error } = await this.sb.rpc('streamdesk_is_operator');
        if (!error) value = data === true;
      } catch {
        /* unknown */
      }
      if (value != null && this.userId() === uid) this.operatorOf = { user: uid, value };
      return value;
    })();
    this.asking = { user: uid, answer };
    try {
      return await answer;
    } finally {
      if (this.asking?.answer === answer) this.asking = null;
    }
  }
}
