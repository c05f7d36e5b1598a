// How every bench prints: one line per figure (name, value, unit, note), or one JSON object with --json.
import { numberFlag } from '../src/cli/flags.js';

export interface Figure { key: string; value: number; unit: string; note?: string }

export function printFigures(title: string, figures: Figure[], json: boolean, extra: Record<string, unknown> = {}): void {
  if (json) {
    console.log(JSON.stringify({ ...extra, ...Object.fromEntries(figures.map((f) => [f.key, round(f.value)])) }, null, 2));
    return;
  }
  console.log(`\n${title}`);
  for (const [k, v] of Object.entries(extra)) console.log(`  ${k.padEnd(28)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  const w = Math.max(...figures.map((f) => f.key.length));
  for (const f of figures) console.log(`  ${f.key.padEnd(w)}  ${String(round(f.value)).padStart(12)} ${f.unit.padEnd(8)} ${f.note ?? ''}`);
}

function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  const a = Math.abs(v);
  return a >= 100 ? Math.round(v * 10) / 10 : a >= 1 ? Math.round(v * 1000) / 1000 : Number(v.toPrecision(4));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** The p-quantile (0 < p ≤ 1) by nearest rank: p99 of 200 latencies is the 198th smallest. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

/** `--name=N` from argv as an integer ≥ min (checked as every m6 verb checks its numbers), or `fallback` when absent. */
export function intFlag<T extends number | undefined>(argv: readonly string[], name: string, fallback: T, min: number): number | T {
  const flag = argv.find((a) => a.startsWith(`--${name}=`));
  return flag === undefined ? fallback : numberFlag(`--${name}`, flag.slice(name.length + 3), { integer: true, min });
}
