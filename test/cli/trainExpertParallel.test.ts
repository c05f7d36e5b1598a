// `m6 train --nproc 2 --expert-parallel` end to end (2 Gloo ranks on loopback, one thread each) on a
// tiny MoE model: each rank holds half of every MoE layer's experts, yet the losses are the
// data-parallel run's (dropless and with capacity dropping; with embed rows, whose whole-group
// batches give one rank passes the other must match with empty ones); the checkpoint holds whole
// experts and their optimizer moments; it resumes in one process as in two ranks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableBackends } from '../../src/distributed/index.js';
import { listCheckpoints } from '../../src/train/checkpoint.js';
import { readMetrics, type TrainMetric } from '../../src/train/metrics.js';
import { loadSafetensors } from '../../src/io/index.js';
import { m6, writeTinyConfig, type CliResult } from '../data/fixtures.js';

const backends = availableBackends();
const skip = backends.gloo ? false : `c10d Gloo backend not built: ${backends.reason}`;
const env = { OMP_NUM_THREADS: '1' };
let dir = '';
let data: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-ep-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '40', '--seed', '2', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  // Every layer MoE, 4 experts, top-2; no routing losses (they are per rank, as under data parallel).
  for (const [name, capacityFactor] of [['dropless', 0], ['capacity', 1.25]] as const) {
    writeTinyConfig(join(dir, `${name}.json`), { maxTextLen: 64, experts: 4, moeEvery: 1, topK: 2, capacityFactor, auxLossWeight: 0, zLossWeight: 0 });
  }
  data = ['--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.8,test:0.2', '--batch-size', '6', '--vocab', '400', '--workers', '0', '--seed', '3'];
});

after(() => rmSync(dir, { recursive: true, force: true }));

const train = (args: string[]): Promise<CliResult> => m6(['train', ...data, ...args], { env, timeoutMs: 150_000 });

const losses = (run: string): Map<number, number> =>
  new Map(readMetrics(join(run, 'metrics.jsonl')).filter((m): m is TrainMetric => m.kind === 'train').map((m) => [m.step, m.loss]));

function sameLosses(a: string, b: string, what: string): void {
  const la = losses(a), lb = losses(b);
  assert.ok(la.size > 0 && la.size === lb.size, `${what}: ${la.size} vs ${lb.size} logged steps`);
  for (const [step, l] of la) assert.ok(Math.abs(l - lb.get(step)!) <= 1e-5 * Math.abs(l), `${what}: step ${step}: ${l} vs ${lb.get(step)}`);
}

for (const mode of ['dropless', 'capacity']) {
  test(`m6 train --nproc 2 --expert-parallel trains as data parallel does (${mode}; describe, answer, embed and recommend rows, which the two ranks do not always both have)`, { skip, timeout: 400_000 }, async () => {
    const common = ['--config', join(dir, `${mode}.json`), '--tasks', 'describe,answer,embed,recommend', '--batch-size', '4', '--steps', '8', '--stop-at', '4'];
    const ep = join(dir, `${mode}-ep`), dp = join(dir, `${mode}-dp`);
    const a = await train([...common, '--out', ep, '--nproc', '2', '--expert-parallel']);
    assert.equal(a.status, 0, a.stderr.slice(-3000));
    const b = await train([...common, '--out', dp, '--nproc', '2']);
    assert.equal(b.status, 0, b.stderr.slice(-3000));
    sameLosses(ep, dp, `${mode}: expert parallel vs data parallel`);
  });
}

test('m6 train --nproc 2 --expert-parallel --bf16: the exchanges carry bfloat16 (as float32 over Gloo); losses within bf16 rounding of data parallel', { skip, timeout: 400_000 }, async () => {
  const common = ['--config', join(dir, 'dropless.json'), '--tasks', 'describe,embed,recommend', '--batch-size', '4', '--steps', '8', '--stop-at', '3', '--bf16'];
  const ep = join(dir, 'bf16-ep'), dp = join(dir, 'bf16-dp');
  const a = await train([...common, '--out', ep, '--nproc', '2', '--expert-parallel']);
  assert.equal(a.status, 0, a.stderr.slice(-3000));
  const b = await train([...common, '--out', dp, '--nproc', '2']);
  assert.equal(b.status, 0, b.stderr.slice(-3000));
  const la = losses(ep), lb = losses(dp);
  for (const [step, l] of la) assert.ok(Number.isFinite(l) && Math.abs(l - lb.get(step)!) <= 1e-2 * Math.abs(l), `step ${step}: ${l} vs ${lb.get(step)}`);
});

test('an expert-parallel checkpoint holds whole experts and resumes in one process as in two ranks', { skip, timeout: 400_000 }, async () => {
  const common = ['--config', join(dir, 'dropless.json'), '--tasks', 'describe,answer', '--steps', '8'];
  const ep = join(dir, 'resume-ep');
  const a = await train([...common, '--stop-at', '4', '--save-every', '2', '--out', ep, '--nproc', '2', '--expert-parallel']);
  assert.equal(a.status, 0, a.stderr.slice(-3000));
  const last = listCheckpoints(ep).at(-1)!;
  assert.equal(last.step, 4);
  const model = loadSafetensors(join(last.dir, 'model.safetensors')).tensors;
  const w1 = [...model].filter(([k]) => k.endsWith('ffn.w1'));
  assert.ok(w1.length > 0);
  for (const [k, t] of w1) assert.equal(t.shape[0], 4, `${k}: all 4 experts in the checkpoint, got [${t.shape}]`);
  const optimizer = loadSafetensors(join(last.dir, 'optimizer.safetensors')).tensors;
  const experts = [...optimizer.values()].filter((t) => t.ndim === 3);
  assert.ok(experts.length > 0 && experts.every((t) => t.shape[0] === 4), 'the experts\' moments are whole too');
  for (const t of [...model.values(), ...optimizer.values()]) t.dispose();

  const copy = join(dir, 'resume-one');
  cpSync(ep, copy, { recursive: true });
  const c2 = await train([...common, '--out', ep, '--resume', '--stop-at', '6', '--nproc', '2', '--expert-parallel']);
  assert.equal(c2.status, 0, c2.stderr.slice(-3000));
  const c1 = await train([...common, '--out', copy, '--resume', '--stop-at', '6']);
  assert.equal(c1.status, 0, c1.stderr.slice(-3000));
  for (const step of [5, 6]) {
    const l2 = losses(ep).get(step)!, l1 = losses(copy).get(step)!;
    assert.ok(Math.abs(l1 - l2) <= 1e-5 * l2, `step ${step}: resumed in 1 process ${l1}, expert parallel on 2 ranks ${l2}`);
  }
});

test('--expert-parallel is refused without ranks, and where the ranks do not divide the experts', { skip, timeout: 200_000 }, async () => {
  const common = ['--config', join(dir, 'dropless.json'), '--tasks', 'describe', '--steps', '2'];
  const alone = await train([...common, '--out', join(dir, 'alone'), '--expert-parallel']);
  assert.notEqual(alone.status, 0);
  assert.match(alone.stderr, /--expert-parallel shards the experts over the ranks of a distributed run: start it with --nproc N/);
  const three = await train([...common, '--out', join(dir, 'three'), '--nproc', '3', '--expert-parallel']);
  assert.notEqual(three.status, 0);
  assert.match(three.stderr, /3 ranks do not divide 4/);
});
