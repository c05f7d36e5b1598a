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

test('m6 info names the CPU and its vector extensions, and measures bf16 against fp32 (the default dtype follows it)', () => {
  const r = m6('info');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^CPU\s+\S.* \((AVX2|no AVX2)[^)]*\)$/m);
  const m = /measured\s+([\d.]+) GFLOP\/s fp32, ([\d.]+) bf16 \(×([\d.]+)\): m6 trains in (bf16 autocast|fp32) by default/.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Number(m[1]) > 0 && Number(m[2]) > 0);
  // bf16 by default exactly where it measured ≥ 1.2× fp32 (the printed ratio is rounded).
  assert.ok(m[4] === 'bf16 autocast' ? Number(m[3]) >= 1.19 : Number(m[3]) <= 1.21, m[0]);
  const json = JSON.parse(m6('info', '--json').stdout) as { cpu: string; bf16Probe: { fp32Gflops: number; bf16Gflops: number; speedup: number; pays: boolean } };
  assert.ok(json.cpu.length > 0);
  assert.equal(typeof json.bf16Probe.pays, 'boolean');
  assert.ok(json.bf16Probe.fp32Gflops > 0 && json.bf16Probe.speedup > 0);
});

test('m6 info does not crash where oneDNN refuses bf16 (held below the CPU\'s ISA): bf16 then does not pay', () => {
  // On an AVX512-BF16 CPU, ONEDNN_MAX_CPU_ISA=AVX2 makes every bf16 matmul throw ("could not create a
  // primitive descriptor"); elsewhere the same setting leaves bf16 emulated and slow. Either way: no crash, fp32.
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/m6.js'), 'info', '--json'], {
    encoding: 'utf8', env: { ...process.env, ONEDNN_MAX_CPU_ISA: 'AVX2', ATEN_CPU_CAPABILITY: 'avx2' },
  });
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { cpuFlags: { avx512bf16: boolean }; bf16Probe: { pays: boolean; bf16Error?: string } };
  assert.equal(json.bf16Probe.pays, false);
  if (json.cpuFlags.avx512bf16) assert.match(json.bf16Probe.bf16Error ?? '', /primitive descriptor|bfloat16/);
});
