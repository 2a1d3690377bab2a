// Price ticks (no DOM): equities step 0.01; options 0.05 at or above $3, 0.01 below.
export function tickSize(price: number, assetType: string): number {
  if (assetType === 'OPTION' && price >= 3) return 0.05;
  return 0.01;
}

export function roundToTick(price: number, tick: number): number {
  const n = Math.round(price / tick);
  return Number((n * tick).toFixed(2));
}

export function stepPrice(price: number, dir: 1 | -1, assetType: string): number {
  const t = tickSize(dir > 0 ? price : price - 0.0001, assetType);
  return Math.max(0, roundToTick(roundToTick(price, t) + dir * t, t));
}
