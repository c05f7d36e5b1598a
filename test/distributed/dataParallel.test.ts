// Data-parallel training against one process: 2 (and 3) Gloo ranks on loopback each train two steps (gradient
// accumulation 2) of a small M6 on their shard of every batch, and the same process trains a reference
// alone on the whole batch. The gradients the optimizer reads, the losses and the grad norms must
// match (fp32, 1e-6), for a dense model (uneven shards: 3 and 2 rows) and an MoE one (dropless).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { availableBackends } from '../../src/distributed/index.js';
import { describeRank, runRanks } from './ranks.js';

const backends = availableBackends();
const skip = backends.gloo ? false : `c10d Gloo backend not built: ${backends.reason}`;
const script = join(dirname(fileURLToPath(import.meta.url)), 'trainWorker.js');

for (const [kind, world] of [['dense', 2], ['moe', 2], ['dense', 3]] as const) {
  test(`${world} ranks: a data-parallel TrainStep equals the one-process step on the whole batch (${kind}, fp32, 1e-6)`, { skip, timeout: 90_000 }, async (t) => {
    const ac = new AbortController();
    t.after(() => ac.abort());
    const rs = await runRanks(kind, world, { script, killAfterMs: 80_000, timeoutMs: 60_000 }, ac.signal);
    for (const r of rs) {
      assert.ok(r.code === 0 && r.out, describeRank(r));
      const o = r.out;
      const at = `rank ${r.rank} (${kind})`;
      (o.losses as number[]).forEach((l, s) => assert.ok(Math.abs(l - (o.refLosses as number[])[s]!) <= 1e-6 * Math.abs(l), `${at}: step ${s} loss ${l} vs ${(o.refLosses as number[])[s]}`));
      (o.norms as number[]).forEach((n, s) => assert.ok(Math.abs(n - (o.refNorms as number[])[s]!) <= 1e-6 * n, `${at}: step ${s} grad norm ${n} vs ${(o.refNorms as number[])[s]}`));
      (o.gradDiff as number[]).forEach((d, s) => assert.ok(d <= 1e-6, `${at}: step ${s}: gradients differ by ${d} (largest gradient ${(o.gradScale as number[])[s]})`));
      assert.equal(o.ranksIdentical, true, `${at}: the ranks' parameters differ after the steps`);
      assert.equal(o.overlaps, true, `${at}: the trainer's reducer issues buckets from backward's hooks (Gloo)`);
    }
  });
}
