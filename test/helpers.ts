// Shared test helpers: approximate comparison of nested arrays, and paths to fixtures and shared data.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const fixtures = join(repoRoot, 'test/fixtures');
export const sharedData = join(repoRoot, '../shared/data');
export const hasSharedData = existsSync(sharedData);

type Nested = number | boolean | Nested[];

/** Asserts two nested arrays have the same shape and values within `tol` (absolute + relative). */
export function assertClose(actual: Nested, expected: Nested, tol = 1e-5, path = ''): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path || 'value'}: expected an array, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${path || 'value'}: length ${actual.length}, expected ${expected.length}`);
    expected.forEach((e, i) => assertClose((actual as Nested[])[i], e, tol, `${path}[${i}]`));
    return;
  }
  if (typeof expected === 'boolean') { assert.equal(actual, expected, `${path}: ${actual} !== ${expected}`); return; }
  const a = Number(actual);
  if (Number.isNaN(expected)) { assert.ok(Number.isNaN(a), `${path}: expected NaN, got ${a}`); return; }
  if (!Number.isFinite(expected)) { assert.equal(a, expected, `${path}: ${a} !== ${expected}`); return; }
  assert.ok(Math.abs(a - expected) <= tol + tol * Math.abs(expected), `${path || 'value'}: ${a} is not within ${tol} of ${expected}`);
}

/** Root reads a file whatever its mode: a test of "permission denied" runs as another user there (spawn's uid), or skips that assertion. */
export const isRoot = process.getuid?.() === 0;
