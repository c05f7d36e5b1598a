import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../helpers.js';

const m6 = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/m6.js'), 'plan', ...args], { encoding: 'utf8' });

test('m6 plan prints the model, the hardware and one row per strategy, and names the fastest that fits', () => {
  const r = m6('--preset', 'm6-1t', '--gpus', '480', '--gpu', 'v100-32', '--tokens', '300B');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^m6-1t: 1\.03T parameters, 3\.42B active per token \(1280 experts in each of 24 MoE layers/);
  assert.match(r.stdout, /480 × V100-32GB \(32 GiB, fp16 125 TFLOP\/s, MFU 0\.4\), 60 nodes of 8/);
  assert.match(r.stdout, /300\.00B tokens to train\n/);
  assert.match(r.stdout, /^strategy\s+weights\s+grads\s+optimizer\s+gathered\s+activations\s+total\/GPU\s+host\/node\s+fits\s+step\s+dp comm\s+a2a comm\s+days$/m);
  assert.match(r.stdout, /^ddp\s.*\sno\s+—\s/m);
  assert.match(r.stdout, /^ep\+zero-offload\s.*\syes\s+[\d.]+ s\s/m);
  assert.match(r.stdout, /^fastest that fits: ep\+zero-\w+ /m);
});

test('m6 plan --json: the plan as one object, every strategy with memory, fit, communication and time', () => {
  const r = m6('--preset', 'm6-nano', '--gpus', '16', '--gpu', 'h100', '--micro-batch', '2', '--grad-accum', '3', '--mfu', '0.5', '--json');
  assert.equal(r.status, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  assert.equal(p.model.name, 'm6-nano');
  assert.deepEqual([p.hardware.gpus, p.hardware.nodes, p.hardware.gpu.name, p.hardware.gpu.memoryGiB], [16, 2, 'H100-SXM-80GB', 80]);
  assert.deepEqual(p.batch, { microBatch: 2, gradAccum: 3, seqLen: 161, tokensPerStep: 16 * 2 * 3 * 161 });  // 8 × 8 patches, the layout token, 96 text
  assert.equal(p.mfu, 0.5);
  assert.deepEqual(p.strategies.map((s: { strategy: string }) => s.strategy), ['ddp', 'zero-1', 'zero-2', 'zero-3', 'zero-offload', 'zero-infinity']);
  for (const s of p.strategies) {
    assert.deepEqual(Object.keys(s.memory), ['params', 'grads', 'optimizer', 'gathered', 'activations', 'runtime', 'total']);
    assert.equal(typeof s.fits, 'boolean');
    assert.ok(s.time.step >= s.time.compute && s.days > 0 && s.communication.dataParallel > 0, s.strategy);
  }
});

test('m6 plan: overrides of GPU memory and host memory change the verdict', () => {
  const plan = (...extra: string[]) => JSON.parse(m6('--preset', 'm6-10t', '--gpus', '512', '--gpu', 'v100', '--json', ...extra).stdout);
  const fit = (p: { strategies: { strategy: string; fits: boolean }[] }, name: string) => p.strategies.find((s) => s.strategy === name)!.fits;
  assert.equal(fit(plan(), 'ep+zero-infinity'), false);
  assert.equal(fit(plan('--host-memory', '4096'), 'ep+zero-infinity'), true);
  assert.equal(fit(plan('--share-layers'), 'ddp'), true);
  assert.equal(plan('--gpu-memory', '16').hardware.gpu.memoryGiB, 16);
});

test('m6 plan: an unknown preset or GPU, or a bad number, is one line naming the flag and the choices', () => {
  const cases: [string[], RegExp][] = [
    [['--preset', 'm6-2x', '--gpus', '8'], /^m6: --preset: unknown preset 'm6-2x': expected one of m6-nano, m6-small, m6-base, m6-10b, m6-100b, m6-1t, m6-10t\n$/],
    [['--preset', 'm6-1t', '--gpus', '8', '--gpu', 'tpu'], /^m6: --gpu: unknown GPU 'tpu': expected one of v100-16, v100-32, a100-40, a100-80, h100, h200, v100, a100/],
    [['--preset', 'm6-1t', '--gpus', 'eight'], /^m6: --gpus must be an integer, got 'eight'\n$/],
    [['--preset', 'm6-1t', '--gpus', '8', '--mfu', '2'], /^m6: --mfu must be in \(0, 1\], got 2\n$/],
    [['--preset', 'm6-1t', '--gpus', '8', '--tokens', 'lots'], /^m6: --tokens must be a positive count such as 300B, 1\.5T or 2e11, got 'lots'\n$/],
    [['--preset', 'm6-1t', '--gpus', '8', '--checkpointing', 'sometimes'], /^m6: --checkpointing must be one of auto, on, off, got 'sometimes'\n$/],
  ];
  for (const [args, message] of cases) {
    const r = m6(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const missing = m6('--preset', 'm6-1t');
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /required option '--gpus <n>' not specified/);
});
