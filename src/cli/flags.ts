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
