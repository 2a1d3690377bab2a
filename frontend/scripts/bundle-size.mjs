#!/usr/bin/env node
// Prints the production bundle's gzipped size (JS + CSS, lightweight-charts included) and
// fails when it is over the budget. Run `npm run build` first.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET = 200 * 1024;
const dist = new URL('../dist/', import.meta.url).pathname;
const files = [];
function walk(d) {
  for (const n of readdirSync(d)) {
    const p = join(d, n);
    if (statSync(p).isDirectory()) walk(p);
    else if (['.js', '.css'].includes(extname(p))) files.push(p);
  }
}
try {
  walk(dist);
} catch {
  console.error('no dist/: run `npm run build` first');
  process.exit(2);
}
let raw = 0;
let gz = 0;
for (const f of files.sort()) {
  const b = readFileSync(f);
  const g = gzipSync(b, { level: 9 }).length;
  raw += b.length;
  gz += g;
  console.log(`${f.slice(dist.length).padEnd(40)} ${(b.length / 1024).toFixed(1).padStart(8)} KB  gzip ${(g / 1024).toFixed(1).padStart(7)} KB`);
}
const ok = gz <= BUDGET;
console.log(`total JS+CSS: ${(raw / 1024).toFixed(1)} KB, gzipped ${(gz / 1024).toFixed(1)} KB (budget ${BUDGET / 1024} KB) ${ok ? 'OK' : 'OVER BUDGET'}`);
process.exit(ok ? 0 : 1);
