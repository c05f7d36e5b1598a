// Reading a flag's value as a number, the one way every verb (and `npm run bench`) checks them:
// a value that is not a number, not an integer where one is wanted, or out of range is a usage
// error naming the flag, what it must be, and what was given.
import { UsageError } from './errors.js';

export interface NumberFlagRule {
  integer?: boolean;
  min?: number;
  positive?: boolean;
}

export function numberFlag(name: string, value: string, o: NumberFlagRule = {}): number {
  const n = Number(value);
  const kind = o.integer ? 'an integer' : 'a number';
  if (value.trim() === '' || !Number.isFinite(n) || (o.integer && !Number.isInteger(n))) throw new UsageError(`${name} must be ${kind}, got '${value}'`);
  if (o.positive && n <= 0) throw new UsageError(`${name} must be > 0, got '${value}'`);
  if (o.min !== undefined && n < o.min) throw new UsageError(`${name} must be ≥ ${o.min}, got '${value}'`);
  return n;
}

const COUNT_SUFFIXES: Readonly<Record<string, number>> = { K: 1e3, M: 1e6, B: 1e9, G: 1e9, T: 1e12 };

/** A count such as `300B`, `1.5T`, `2e11` or `68000000` (suffixes K, M, B/G, T: powers of 1000). */
export function countFlag(name: string, value: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([KMBGT]?)\s*$/i.exec(value);
  const n = m ? Number(m[1]) * (m[2] ? COUNT_SUFFIXES[m[2].toUpperCase()]! : 1) : NaN;
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive count such as 300B, 1.5T or 2e11, got '${value}'`);
  return n;
}
