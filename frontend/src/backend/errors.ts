// One error type for every data backend, so stores and views branch on what happened
// (`kind`), never on a transport detail (an HTTP status, a Postgres SQLSTATE).

export type ErrorKind =
  | 'unauthorized' // no (valid) session: back to the login form
  | 'not_operator' // signed in, but not on the operators allow-list: no trading
  | 'forbidden' // refused for another reason (origin, kill switch, risk checks at the gateway)
  | 'rate_limited'
  | 'invalid' // bad input (a 422, a CHECK constraint)
  | 'not_found'
  | 'unavailable' // network down, gateway restarting, Supabase unreachable
  | 'unsupported' // this backend cannot do it (e.g. operations without the gateway)
  | 'error';

export const NOT_OPERATOR_MESSAGE = 'your account is not an operator: trading disabled';

export class BackendError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** HTTP status when there was one */
    readonly status?: number,
    /** SQLSTATE or the gateway's error body */
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}

export function kindOfStatus(status: number): ErrorKind {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 422 || status === 400) return 'invalid';
  if (status === 429) return 'rate_limited';
  if (status === 0 || status >= 500) return 'unavailable';
  return 'error';
}

export function errorKind(e: unknown): ErrorKind {
  return e instanceof BackendError ? e.kind : 'error';
}
