// GradReducer: the bucket plan (DDP's layout rules) in process, and the data-parallel step across 2 and 3
// processes against the one-process step on the concatenated batch (fp32, 1e-6): reduced after backward,
// under noSync, and armed (buckets issued from backward's hooks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableBackends } from '../../src/distributed/index.js';
import { planBuckets, type ParamSpec } from '../../src/distributed/reducer.js';
import { describeRank, runRanks } from './ranks.js';

const backends = availableBackends();
const skip = backends.gloo ? false : `c10d Gloo backend not built: ${backends.reason}`;
const MiB = 1 << 20;

test('planBuckets: reverse parameter order, first bucket closes at 1 MiB then 25 MiB, one bucket list per dtype', () => {
  const f = (numel: number, dtype: ParamSpec['dtype'] = 'float32'): ParamSpec => ({ dtype, device: 'cpu', numel });
  // Parameters 0..5 (float32) and 6 (float64); sizes in bytes: 0: 8 MiB, 1: 20 MiB, 2: 10 MiB, 3: 0.5 MiB, 4: 0.75 MiB, 5: 4 KiB, 6: 16 B.
  const params = [f(2 * MiB), f(5 * MiB), f(2.5 * MiB), f(MiB / 8), f((3 * MiB) / 16), f(1024), f(2, 'float64')];
  const plan = planBuckets(params);
  assert.deepEqual(plan.map((b) => [b.dtype, b.params]), [
    ['float64', [6]],
    // reverse order: 5 (4 KiB) + 4 (0.75 MiB) + 3 (0.5 MiB) reaches 1 MiB and closes the first bucket
    ['float32', [5, 4, 3]],
    // then 25 MiB buckets: 2 (10) + 1 (20) = 30 MiB ≥ 25 closes it; 0 opens the last
    ['float32', [2, 1]],
    ['float32', [0]],
  ]);
  assert.deepEqual(plan[1]!.offsets, [0, 1024, 1024 + (3 * MiB) / 16]);
  assert.equal(plan[1]!.bytes, 4096 + 0.75 * MiB + 0.5 * MiB);
  assert.equal(plan[2]!.numel, 7.5 * MiB);
  assert.deepEqual(planBuckets([f(10), f(10)], { firstBucketBytes: 1, bucketBytes: 1 }).map((b) => b.params), [[1], [0]]);
  assert.throws(() => planBuckets(params, { bucketBytes: 0 }), /bucket sizes must be > 0 bytes/);
});

for (const world of [2, 3]) {
  test(`${world} ranks: GradReducer's step equals the one-process step on the concatenated batch (fp32, 1e-6), noSync accumulates locally`,
    { skip, timeout: 60_000 }, async (t) => {
      const ac = new AbortController();
      t.after(() => ac.abort());
      const rs = await runRanks('reducer', world, { killAfterMs: 50_000 }, ac.signal);
      for (const r of rs) {
        assert.ok(r.code === 0 && r.out, describeRank(r));
        const o = r.out;
        const at = `rank ${r.rank} of ${world}`;
        assert.equal(o.initDiff, 0, `${at}: create() did not give every rank rank 0's parameters`);
        // Parameters (a module's own first, then its children's): scale 0 (float64, 3), unused 1 (5), fc1.weight 2 (64),
        // fc1.bias 3 (16), fc2.weight 4 (48), fc2.bias 5 (3). Reverse order; the float32 first bucket closes at ≥ 256 B.
        assert.deepEqual(o.buckets, [
          { dtype: 'float32', params: [5, 4, 3], bytes: 4 * (3 + 48 + 16) },
          { dtype: 'float32', params: [2, 1], bytes: 4 * (64 + 5) },
          { dtype: 'float64', params: [0], bytes: 24 },
        ], at);
        for (const k of ['gradDiff1', 'paramDiff1', 'gradDiff2', 'paramDiff2', 'gradDiff3', 'paramDiff3', 'gradDiff4', 'paramDiff4']) {
          assert.ok((o[k] as number) <= 1e-6, `${at}: ${k} = ${o[k]} > 1e-6`);
        }
        assert.ok((o.paramDiff1 as number) < (o.gradDiff1 as number) + 1e-6);
        assert.equal(o.unusedGrad, 0, `${at}: an unused parameter gets a zero gradient`);
        // Armed (step 3): fc2's bucket leaves during backward; the next holds the unused parameter, which no
        // hook reports, so it and the float64 bucket after it (issued in order) wait for syncGradients.
        assert.equal(o.overlaps, true, `${at}: Gloo on CPU reduces from backward's hooks`);
        assert.equal(o.issuedInBackward, 1, `${at}: buckets issued by backward's hooks`);
        // Armed with the loss (step 4): the graph does not reach the unused parameter, so it is ready at once
        // (DDP's find_unused_parameters) and all three buckets leave during backward.
        assert.equal(o.issuedWithLoss, 3, `${at}: buckets issued by backward's hooks, unused parameters found from the loss`);
        assert.equal(o.unusedGrad4, 0, `${at}: the unused parameter's gradient stays zero`);
        assert.equal(o.insideFlag, false);
        assert.equal(o.afterFlag, true);
        assert.equal(o.localGradsDiffer, true, `${at}: syncGradients inside noSync communicated`);
        assert.equal(o.paramsIdentical, true, `${at}: ranks ended the step with different parameters`);
      }
    });
}

test('GradReducer.create rejects ranks whose parameters differ, naming the rank', { skip, timeout: 30_000 }, async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const rs = await runRanks('reducerMismatch', 2, { killAfterMs: 20_000 }, ac.signal);
  for (const r of rs) {
    assert.ok(r.code === 0 && r.out, describeRank(r));
    assert.match(r.out.create as string, /the ranks' parameters differ: rank 0 has 1 parameters \(2 elements\), rank 1 has 1 \(3 elements, other shapes or dtypes\)/);
  }
});
