// Small helpers over the PostgREST builder: run a query into data or a BackendError, and read
// more rows than one response holds (Supabase answers at most 1000 rows per request).
import type { PgResult, Query, Row } from './client';
import { mapPgError, type ErrorContext } from './errors';

/** Rows per request: Supabase's default `max_rows`. */
export const PAGE = 1000;

export async function run<T>(q: PromiseLike<PgResult<T>>, ctx: ErrorContext): Promise<T> {
  let res: PgResult<T>;
  try {
    res = await q;
  } catch (e) {
    throw mapPgError({ message: (e as Error).message }, 0, ctx);
  }
  if (res.error) throw mapPgError(res.error, res.status, ctx);
  return res.data as T;
}

export async function rows(q: Query, ctx: ErrorContext): Promise<Row[]> {
  return (await run(q, ctx)) ?? [];
}

/**
 * Up to `max` rows, newest first, by keyset pages on `column` (unique within the filter:
 * the primary key's time column for one ticker). `make(before)` builds the filtered query,
 * adding `.lt(column, before)` when `before` is set.
 */
export async function pagesDesc(make: (before: string | null) => Query, column: string, max: number, ctx: ErrorContext): Promise<Row[]> {
  const out: Row[] = [];
  let before: string | null = null;
  while (out.length < max) {
    const n = Math.min(PAGE, max - out.length);
    const page = await rows(make(before).order(column, { ascending: false }).limit(n), ctx);
    out.push(...page);
    if (page.length < n) break;
    before = String(page[page.length - 1][column]);
  }
  return out;
}
