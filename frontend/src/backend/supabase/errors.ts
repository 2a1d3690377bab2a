// PostgREST / Supabase errors -> BackendError. Row-level security refusing the `trades` insert
// (SQLSTATE 42501, "new row violates row-level security policy") is what a signed-in user
// who is not an operator gets: shown as such, not as a database error. The cancel RPC
// (migrations/0081_supabase_rls.sql) answers 42501 not an operator / not yours, P0002 no such
// trade, PT409 final or already being cancelled.
import { BackendError, NOT_OPERATOR_MESSAGE } from '../errors';
import type { PgError } from './client';

export interface ErrorContext {
  /** the call was a trading action (insert into trades, cancel RPC) */
  trading?: boolean;
  /** what was asked, for the message */
  what?: string;
}

export function mapPgError(e: PgError, status: number | undefined, ctx: ErrorContext = {}): BackendError {
  const code = e.code ?? '';
  const what = ctx.what ? `${ctx.what}: ` : '';
  if (code === '42501' || (ctx.trading && status === 403)) {
    // the cancel RPC's other 42501: an operator asking for someone else's trade
    if (ctx.trading && /not yours/i.test(e.message)) return new BackendError('forbidden', `${what}not your order`, status, code);
    if (ctx.trading) return new BackendError('not_operator', NOT_OPERATOR_MESSAGE, status, code);
    return new BackendError('forbidden', `${what}not allowed (${e.message})`, status, code);
  }
  if (/^PGRST30\d$/.test(code) || status === 401) return new BackendError('unauthorized', `${what}session expired or invalid: sign in again`, status, code);
  if (code === 'PGRST116' || code === 'P0002') return new BackendError('not_found', `${what}not found`, status, code);
  // the cancel RPC: final, or already being cancelled (PT409 = HTTP 409)
  if (code === 'PT409' || status === 409) return new BackendError('invalid', `${what}${e.message}`, status, code);
  if (code === 'PGRST202' || code === 'PGRST205' || code === '42883' || code === '42P01') {
    return new BackendError('unsupported', `${what}the project lacks it (apply the Supabase-mode migrations): ${e.message}`, status, code);
  }
  if (/^(22|23)/.test(code) || code === 'P0001' || status === 400 || status === 422) {
    return new BackendError('invalid', `${what}${e.message}`, status, code);
  }
  if (status === 429) return new BackendError('rate_limited', `${what}too many requests: wait and retry`, status, code);
  if (!code && (status === 0 || status === undefined || status >= 500)) {
    return new BackendError('unavailable', `${what}Supabase unreachable (${e.message})`, status, code);
  }
  return new BackendError('error', `${what}${e.message}`, status, code);
}
