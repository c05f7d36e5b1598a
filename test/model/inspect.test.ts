import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PRESETS, modelStats } from '../../src/model/index.js';
import { repoRoot } from '../helpers.js';

test('paper-scale presets count within 10% of their names, on the meta device', () => {
  const targets: Record<string, number> = { 'm6-10b': 1e10, 'm6-100b': 1e11, 'm6-1t': 1e12, 'm6-10t': 1e13 };
  for (const [name, target] of Object.entries(targets)) {
    const s = modelStats(PRESETS[name]);
    assert.ok(Math.abs(s.totalParams / target - 1) < 0.1, `${name}: ${s.totalParams.toExponential(3)} vs ${target.toExponential(0)}`);
    if (PRESETS[name].experts) assert.ok(s.activeParams < s.totalParams / 25, `${name}: active ${s.activeParams.toExponential(2)} of ${s.totalParams.toExponential(2)}`);
  }
});

test('stats are consistent: dense models are fully active; bytes follow parameter counts', () => {
  const s = modelStats(PRESETS['m6-nano']);
  assert.equal(s.activeParams, s.totalParams);
  assert.equal(s.bytes.weights.fp32, 4 * s.totalParams);
  assert.equal(s.bytes.adamw.fp32, 8 * s.totalParams);
  assert.equal(s.flopsPerTokenTraining, 3 * s.flopsPerTokenForward);
  const moe = modelStats({ ...PRESETS['m6-small'], experts: 64 });
  const dense = modelStats(PRESETS['m6-small']);
  assert.ok(moe.totalParams > 10 * dense.totalParams);
  assert.ok(Math.abs(moe.flopsPerTokenForward / dense.flopsPerTokenForward - 1) < 0.01, 'same FLOPs per token, top-1');
});

test('m6 inspect prints every preset instantly, with --json', () => {
  for (const name of Object.keys(PRESETS)) {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/m6.js'), 'inspect', '--preset', name, '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.name, name);
    assert.ok(s.totalParams > 0 && s.activeParams > 0 && s.flopsPerTokenForward > 0);
  }
  const text = spawnSync(process.execPath, [join(repoRoot, 'bin/m6.js'), 'inspect', '--preset', 'm6-small', '--experts', '64'], { encoding: 'utf8' });
  assert.match(text.stdout, /64 experts in 4 MoE layers/);
  assert.match(text.stdout, /parameters\s+\d+\.\d+M total, \d+\.\d+M active/);
  const bad = spawnSync(process.execPath, [join(repoRoot, 'bin/m6.js'), 'inspect', '--preset', 'm6-2x'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown preset 'm6-2x'/);
});

test('a shared-layer (pseudo) model counts its block once for parameters and at every layer for FLOPs', () => {
  const real = modelStats(PRESETS['m6-nano']!);
  const pseudo = modelStats({ ...PRESETS['m6-nano']!, shareLayers: true });
  assert.ok(pseudo.totalParams < real.totalParams - 2 * real.blockDenseParams);
  assert.equal(pseudo.flopsPerTokenTraining, real.flopsPerTokenTraining);
  // Attention's share grows with the context: 2 · 2 · layers · dim per added position (the default is the image's 65 positions + 96 text).
  assert.equal(real.context, 65 + 96);
  assert.equal(modelStats(PRESETS['m6-nano']!, { context: 2 * real.context }).flopsPerTokenForward - real.flopsPerTokenForward, 4 * 4 * real.context * 128);
});
