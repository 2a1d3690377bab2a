export function fmtNum(x: number | null | undefined, d = 2): string {
  return x == null || !Number.isFinite(x) ? '—' : x.toFixed(d);
}
export function fmtSigned(x: number | null | undefined, d = 2): string {
  return x == null || !Number.isFinite(x) ? '—' : `${x > 0 ? '+' : ''}${x.toFixed(d)}`;
}
export function fmtVol(x: number | null | undefined): string {
  if (x == null || !Number.isFinite(x)) return '—';
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)}B`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}K`;
  return String(Math.round(x));
}
export function fmtMoney(x: number | null | undefined): string {
  return x == null || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { style: 'currency', currency: 'USD' });
}
export function num(x: number | string | null | undefined): number | null {
  if (x == null || x === '') return null;
  const n = typeof x === 'number' ? x : Number(x);
  return Number.isFinite(n) ? n : null;
}
export function cls(...xs: (string | false | null | undefined)[]): string {
  return xs.filter(Boolean).join(' ');
}
