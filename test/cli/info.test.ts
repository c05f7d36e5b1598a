import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../helpers.js';

const m6 = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/m6.js'), ...args], { encoding: 'utf8' });

test('m6 info prints the engine facts', () => {
  const r = m6('info');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /libtorch\s+\d+\.\d+/);
  assert.match(r.stdout, /BLAS\s+\S+/);
  assert.match(r.stdout, /threads\s+\d+/);
  assert.match(r.stdout, /devices\s+cpu/);
  assert.match(r.stdout, /bf16 matmul\s+(accelerated|not accelerated)/);
});

test('m6 info --json is machine-readable', () => {
  const r = m6('info', '--json');
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.match(info.libtorch, /^\d+\.\d+/);
  assert.ok(info.threads >= 1);
  assert.equal(info.devices[0], 'cpu');
  assert.equal(typeof info.bf16MatmulAccelerated, 'boolean');
});

test('an unknown verb exits non-zero with help', () => {
  const r = m6('frobnicate');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown command/);
});
