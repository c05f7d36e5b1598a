// Expert parallelism against one process: 2 and 3 Gloo ranks on loopback each hold a third or a half
// of two stacked MoE layers' experts and exchange tokens with the in-graph all-to-all; forward outputs,
// input gradients, expert gradients and (summed) router gradients must equal the one-process layers
// run on each rank's tokens with every expert (fp32, 1e-6), dropless and with capacity dropping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { availableBackends } from '../../src/distributed/index.js';
import { groupArrivals } from '../../src/model/moe.js';
import { describeRank, runRanks } from './ranks.js';

const backends = availableBackends();
const skip = backends.gloo ? false : `c10d Gloo backend not built: ${backends.reason}`;
const script = join(dirname(fileURLToPath(import.meta.url)), 'expertWorker.js');

test('groupArrivals regroups [source][expert] arrivals by expert', () => {
  // 2 sources × 2 experts; counts [s0e0=1, s0e1=2, s1e0=0, s1e1=1]: arrivals 0 | 1 2 | (none) | 3.
  assert.deepEqual(groupArrivals([1, 2, 0, 1], 2, 2), { byExpert: [0, 1, 2, 3], sizes: [1, 3] });
  assert.deepEqual(groupArrivals([1, 1, 2, 0], 2, 2), { byExpert: [0, 2, 3, 1], sizes: [3, 1] });
});

for (const world of [2, 3]) {
  for (const mode of ['dropless', 'capacity']) {
    test(`${world} ranks: expert-parallel MoE forward and gradients equal one process (${mode}, fp32, 1e-6)`, { skip, timeout: 60_000 }, async (t) => {
      const ac = new AbortController();
      t.after(() => ac.abort());
      const rs = await runRanks(mode, world, { script, killAfterMs: 50_000, timeoutMs: 30_000 }, ac.signal);
      for (const r of rs) {
        assert.ok(r.code === 0 && r.out, describeRank(r));
        const o = r.out;
        const at = `rank ${r.rank} of ${world} (${mode})`;
        assert.equal(o.localExperts, 6 / world, at);
        assert.deepEqual(o.expertShape, [6 / world, 8, 16], `${at}: each rank holds only its experts`);
        for (const k of ['out', 'inputGrad', 'expertGrad', 'routerGrad']) assert.ok((o[k] as number) <= 1e-6, `${at}: ${k} differs by ${o[k]} (gradient scale ${o.scale})`);
        assert.ok((o.scale as number) > 1e-3, `${at}: the expert gradients are all ~0: the test would not see a difference`);
      }
    });
  }
}

test('a peer gone mid-forward: the in-graph all-to-all throws an error naming it, within the timeout (no hang, no abort)', { skip, timeout: 60_000 }, async (t) => {
  const ac = new AbortController();
  t.after(() => ac.abort());
  const [r0] = await runRanks('peer-gone', 2, { script, killAfterMs: 40_000, timeoutMs: 5_000 }, ac.signal);
  assert.ok(r0!.code === 0 && r0!.out, describeRank(r0!));
  assert.equal(r0!.out.threw, true, describeRank(r0!));
  assert.match(String(r0!.out.message), /m6 dist: in-graph allToAll of a .* failed on rank 0 of 2/);
  assert.ok((r0!.out.ms as number) < 30_000, `failed after ${r0!.out.ms} ms`);
});
