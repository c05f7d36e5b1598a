import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRESETS, modelStats, type M6Config } from '../../src/model/index.js';
import { planTraining, expertLayout, type PlanOptions, type TrainingPlan, type StrategyPlan } from '../../src/distributed/plan.js';
import { GPUS, gpuSpec } from '../../src/distributed/gpus.js';
import { InputError } from '../../src/torch/inputError.js';

const GiB = 2 ** 30;
const base: PlanOptions = { gpus: 4, gpu: GPUS['a100-80']!, gpusPerNode: 8, microBatch: 1, gradAccum: 1, mfu: 0.4, checkpointing: 'off', runtimeGiB: 1 };
const strategy = (p: TrainingPlan, name: string): StrategyPlan => {
  const s = p.strategies.find((x) => x.strategy === name);
  assert.ok(s, `no strategy ${name} in ${p.strategies.map((x) => x.strategy).join(', ')}`);
  return s;
};

// m6-nano by hand: 1,657,097 parameters (Ψ: 1,590,401, and the layout token's 128·8 + 8 and
// 512·128 + 128); 4 layers, d = 128, 4 heads, FFN 512, no dropout; 161 positions (8 × 8 patches,
// the layout token, 96 text), vocabulary 5,120 tied to the head.
const PSI = 1_657_097;

test('m6-nano on 4 devices: memory per strategy, by hand (bf16 weights and grads, 12 bytes of AdamW state per parameter)', () => {
  const p = planTraining(PRESETS['m6-nano']!, base);
  assert.equal(p.model.totalParams, PSI);
  // Activations per layer (no dropout): attention 10·s·h + 2·heads·s² = 206,080 + 207,368; norms 4·s·h = 82,432;
  // FFN 2·s·h + 4·s·ffn = 41,216 + 329,728: 866,824 a layer, 3,467,296 for four; checkpointed 4·2·s·h + one layer.
  assert.deepEqual(p.activations, { full: 3_467_296, checkpointed: 1_031_688 });
  const ddp = strategy(p, 'ddp').memory;
  assert.deepEqual([ddp.params, ddp.grads, ddp.optimizer, ddp.gathered], [2 * PSI, 2 * PSI, 12 * PSI, 0]);
  assert.equal(ddp.total, 16 * PSI + 3_467_296 + GiB);
  const z1 = strategy(p, 'zero-1').memory, z2 = strategy(p, 'zero-2').memory, z3 = strategy(p, 'zero-3').memory;
  assert.deepEqual([z1.params, z1.grads, z1.optimizer], [2 * PSI, 2 * PSI, 3 * PSI]);
  assert.deepEqual([z2.params, z2.grads, z2.optimizer], [2 * PSI, PSI / 2, 3 * PSI]);
  assert.deepEqual([z3.params, z3.grads, z3.optimizer], [PSI / 2, PSI / 2, 3 * PSI]);
  // ZeRO-3 gathers its largest unit, here the 5,120 × 128 embedding: twice (now, prefetched) in bf16, plus its bf16 grads.
  assert.equal(z3.gathered, 6 * 5120 * 128);
  const off = strategy(p, 'zero-offload');
  assert.equal(off.memory.optimizer, 0);
  assert.equal(off.hostBytesPerNode, 4 * (16 * PSI) / 4, 'fp32 master, moments and grads: 16 bytes a parameter, sharded over 4 devices, 4 on the node');
  assert.equal(p.strategies.some((s) => s.strategy.startsWith('ep')), false, 'a dense model has no expert-parallel rows');
  assert.ok(p.strategies.every((s) => s.fits && !s.checkpointing));
});

test('m6-nano: FLOPs per token, all-reduce volume and step time, by hand', () => {
  const p = planTraining(PRESETS['m6-nano']!, base);
  // 6 per parameter (the tied head runs, the lookup is free: Ψ - V·D + V·D) + attention 3 · 4 · layers · s · d.
  assert.equal(p.flopsPerToken, 6 * PSI + 12 * 4 * 161 * 128);
  assert.equal(p.batch.tokensPerStep, 4 * 161);
  const ddp = strategy(p, 'ddp');
  assert.equal(ddp.communication.dataParallel, 2 * (3 / 4) * 2 * PSI, 'ring all-reduce of bf16 grads: 2·(N-1)/N·bytes');
  assert.equal(strategy(p, 'zero-3').communication.dataParallel, 3 * (3 / 4) * 2 * PSI, 'gather, gather, reduce-scatter');
  const compute = (p.flopsPerToken * 161) / (312e12 * 0.4);
  assert.ok(Math.abs(ddp.time.compute / compute - 1) < 1e-12);
  assert.ok(Math.abs(ddp.time.dataParallel - (3 * PSI) / 300e9) < 1e-15, 'one node: NVLink');
  assert.ok(Math.abs(p.tokens - 20 * PSI) < 1e-6 && p.tokensDefaulted);
  const ckpt = strategy(planTraining(PRESETS['m6-nano']!, { ...base, checkpointing: 'on' }), 'ddp');
  assert.ok(Math.abs(ckpt.time.compute / compute - 4 / 3) < 1e-12, 'recomputation adds a forward');
  assert.equal(ckpt.memory.activations, 1_031_688);
});

test('ZeRO-3 model state per device shrinks as 1/N', () => {
  const cfg = PRESETS['m6-10b']!;
  const total = modelStats(cfg).totalParams;
  for (const gpus of [8, 64, 512]) {
    const m = strategy(planTraining(cfg, { ...base, gpus }), 'zero-3').memory;
    assert.ok(Math.abs((m.params + m.grads + m.optimizer) * gpus / (16 * total) - 1) < 1e-12, `${gpus} devices`);
  }
});

test('MoE all-to-all bytes, by hand: m6-small with 8 experts on 8 devices', () => {
  const cfg: M6Config = { ...PRESETS['m6-small']!, experts: 8 };
  const p = planTraining(cfg, { ...base, gpus: 8 });
  assert.equal(p.model.moeLayers, 4);
  // 4 MoE layers × 4 all-to-alls × (193 positions: 8 × 8 patches, the layout token, 128 text · 1.25 capacity · 512 dims · 2 bytes · 7/8 leave the device).
  assert.equal(strategy(p, 'ep').communication.allToAll, 4 * 4 * 193 * 1.25 * 512 * 2 * (7 / 8));
  assert.equal(strategy(p, 'ddp').communication.allToAll, 0, 'replicated experts route locally');
  assert.deepEqual(expertLayout(1280, 480), { local: 3, replicas: 1, spread: 480 });
  assert.deepEqual(expertLayout(8, 32), { local: 1, replicas: 4, spread: 8 });
});

test('1T MoE on 480 V100-32GB: data parallel and ZeRO alone do not fit; expert parallel with sharding does once AdamW state leaves the GPU', () => {
  const opts = { ...base, gpus: 480, gpu: gpuSpec('v100-32'), checkpointing: 'auto' as const, microBatch: 4 };
  const p = planTraining(PRESETS['m6-1t']!, opts);
  for (const name of ['ddp', 'zero-1', 'zero-2', 'zero-3', 'zero-offload', 'zero-infinity', 'ep', 'ep+zero-1']) {
    assert.equal(strategy(p, name).limit, 'gpu-memory', name);
  }
  // 3 of the 1,280 experts per layer on the busiest device, at 16 bytes a parameter: 27 GiB of AdamW state alone.
  const ep3 = strategy(p, 'ep+zero-3');
  assert.equal(ep3.fits, false);
  assert.ok(ep3.memory.total > 32 * GiB && ep3.memory.optimizer > 25 * GiB);
  const off = strategy(p, 'ep+zero-offload');
  assert.ok(off.fits && off.memory.total < 16 * GiB && off.hostBytesPerNode < 512 * GiB);
  // With 960 experts (2 per device) expert parallel + ZeRO-3 fits without offload.
  assert.equal(strategy(planTraining({ ...PRESETS['m6-1t']!, experts: 960 }, opts), 'ep+zero-3').fits, true);
});

test('10T on 512 V100-32GB: only weights streamed from the host fit the GPUs, and then not a 512 GiB host; the shared-layer pseudo model fits plain DDP', () => {
  const opts = { ...base, gpus: 512, gpu: gpuSpec('v100'), checkpointing: 'auto' as const };
  const real = planTraining(PRESETS['m6-10t']!, opts);
  assert.deepEqual(real.strategies.filter((s) => s.limit !== 'gpu-memory').map((s) => [s.strategy, s.limit]), [['ep+zero-infinity', 'host-memory']]);
  assert.equal(strategy(planTraining(PRESETS['m6-10t']!, { ...opts, gpu: { ...opts.gpu, hostMemoryGiBPerNode: 4096 } }), 'ep+zero-infinity').fits, true);
  assert.equal(strategy(planTraining({ ...PRESETS['m6-10t']!, shareLayers: true }, opts), 'ddp').fits, true);
});

test('bad plan inputs name the flag and what was expected', () => {
  assert.throws(() => gpuSpec('tpu-v4'), (e: Error) => e instanceof InputError && /--gpu: unknown GPU 'tpu-v4': expected one of v100-16, v100-32, a100-40, a100-80, h100, h200/.test(e.message));
  assert.equal(gpuSpec('A100').name, 'A100-80GB');
  assert.throws(() => planTraining(PRESETS['m6-nano']!, { ...base, mfu: 1.5 }), /--mfu must be in \(0, 1\], got 1.5/);
  assert.throws(() => planTraining(PRESETS['m6-nano']!, { ...base, gpus: 0 }), /--gpus must be a positive integer, got 0/);
});
