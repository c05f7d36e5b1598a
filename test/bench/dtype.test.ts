// The benches' dtype decision, with the probe's answer given: both branches are tested on any CPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseBf16 } from '../../bench/dtype.js';
import type { Bf16Probe } from '../../src/torch/index.js';

const probe = (bf16Gflops: number, fp32Gflops: number): () => Bf16Probe => () => {
  const speedup = bf16Gflops / fp32Gflops;
  return { bf16Gflops, fp32Gflops, speedup, pays: speedup >= 1.2, flagsSayAccelerated: false, seconds: 0 };
};
const never = (): Bf16Probe => { throw new Error('the flags decide: the probe is not run'); };

test('chooseBf16: the probe decides where no flag does; --bf16 and --fp32 override it without probing', () => {
  // An AVX2-only EPYC: emulated bf16, ~3 GFLOP/s against ~137 fp32.
  const slow = chooseBf16([], probe(3, 137));
  assert.equal(slow.bf16, false);
  assert.match(slow.why, /bf16 matmul 3 GFLOP\/s vs fp32 137 \(0\.02×\): bf16 is not accelerated here \(--bf16 runs it anyway\)/);
  // A Xeon with AMX: ~4× fp32.
  const fast = chooseBf16(['engine', '--quick'], probe(800, 200));
  assert.equal(fast.bf16, true);
  assert.match(fast.why, /4\.00×\): bf16 is accelerated here/);
  assert.deepEqual(chooseBf16(['--bf16'], never), { bf16: true, why: '--bf16' });
  assert.deepEqual(chooseBf16(['--fp32'], never), { bf16: false, why: '--fp32' });
  assert.throws(() => chooseBf16(['--fp32', '--bf16'], never), /give --fp32 or --bf16, not both/);
});
