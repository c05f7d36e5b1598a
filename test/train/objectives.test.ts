// The batch loss across objectives: a mixed batch is the row-weighted sum of its generative and
// contrastive parts; the contrastive objective alone learns to pair images with their texts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { contrastiveLoss, M6Model, preset } from '../../src/model/index.js';
import { AdamW } from '../../src/optim/index.js';
import type { TrainingTensors } from '../../src/train/batchTensors.js';
import { batchLoss } from '../../src/train/objectives.js';
import { recallAtK } from '../../src/eval/retrievalMetrics.js';

const tiny = () => preset('m6-nano', { vocabSize: 64, imageCodeStart: 48, imageCodes: 16, layers: 1, dim: 32, heads: 2, ffnDim: 64, imageSize: 16, patchSize: 8, stemChannels: 8, maxTextLen: 16 });

function tensors(B: number, seed: number): TrainingTensors {
  torch.manualSeed(seed);
  const target = torch.randint(3, 40, [B, 5]);
  return {
    images: torch.randn([B, 3, 16, 16]),
    source: torch.randint(3, 40, [B, 6]), sourceMask: torch.ones([B, 6], { dtype: 'bool' }),
    target, targetMask: torch.ones([B, 5], { dtype: 'bool' }), labels: torch.randint(3, 40, [B, 5]),
    labelCounts: new Array(B).fill(5),
  };
}

test('a mixed batch: loss = LM loss of the generative rows + weight × contrastive loss of the embed rows; per-row losses from each', () => {
  torch.scope(() => {
    torch.manualSeed(1);
    const m = new M6Model(tiny()).eval();
    const t = tensors(6, 2);
    const tasks = ['describe', 'embed', 'answer', 'embed', 'embed', 'describe'];
    const mixed = batchLoss(m, t, tasks);
    const lmIdx = torch.tensor([0, 2, 5], { dtype: 'int64' }), eIdx = torch.tensor([1, 3, 4], { dtype: 'int64' });
    const pick = (x: torch.Tensor, i: torch.Tensor) => x.indexSelect(0, i);
    const lm = m.forward({ images: pick(t.images!, lmIdx), source: pick(t.source, lmIdx), target: pick(t.target, lmIdx), labels: pick(t.labels, lmIdx) }).loss!;
    const c = contrastiveLoss(m.embed({ images: pick(t.images!, eIdx) }).vectors, m.embed({ source: pick(t.source, eIdx) }).vectors, m.logitScale);
    const expected = lm.item() + c.loss.item();
    assert.ok(Math.abs(mixed.loss!.item() - expected) < 1e-4, `${mixed.loss!.item()} vs ${expected}`);
    const weighted = batchLoss(m, t, tasks, { lossWeights: { embed: 0.25 } }).loss!.item();
    assert.ok(Math.abs(weighted - (lm.item() + 0.25 * c.loss.item())) < 1e-4, `${weighted}`);
    const cRows = c.rows.toArray() as number[];
    assert.ok(Math.abs(mixed.rows[1]! - cRows[0]!) < 1e-4 && Math.abs(mixed.rows[4]! - cRows[2]!) < 1e-4);
    assert.ok(mixed.rows.every(Number.isFinite));
    // One embed row has nothing to be contrasted with: no loss from it, and no loss at all alone.
    assert.equal(batchLoss(m, tensors(1, 3), ['embed']).loss, undefined);
  });
});

test("mean 'tokens' weighs every target token the same, 'rows' every row; per-row losses are each row's token-mean", () => {
  torch.scope(() => {
    torch.manualSeed(6);
    const m = new M6Model(tiny()).eval();
    const t = tensors(4, 7);
    // Rows with 5, 1, 3 and 0 label tokens: a long target, a one-word answer, and a row with nothing to learn.
    const labels = torch.tensor([[5, 6, 7, 8, 9], [10, -100, -100, -100, -100], [11, 12, 13, -100, -100], [-100, -100, -100, -100, -100]], { dtype: 'int64' });
    const tl = { ...t, labels, labelCounts: [5, 1, 3, 0] };
    const tasks = ['design', 'answer', 'describe', 'describe'];
    const logits = m.forward({ images: t.images, source: t.source, target: t.target });
    const lsm = torch.nn.logSoftmax(logits.logits.float(), -1).toArray() as number[][][];
    const lab = (labels.toArray() as number[][]).slice(0, 3);
    const sums = lab.map((row, b) => row.reduce((acc, y, i) => (y === -100 ? acc : acc - lsm[b]![i]![y]!), 0));
    const counts = [5, 1, 3];
    const rowMeans = sums.map((x, b) => x / counts[b]!);
    const byTokens = batchLoss(m, tl, tasks);
    const byRows = batchLoss(m, tl, tasks, { mean: 'rows' });
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-4, `${a} vs ${b}`);
    close(byTokens.loss!.item(), sums.reduce((a, b) => a + b) / 9);
    close(byRows.loss!.item(), rowMeans.reduce((a, b) => a + b) / 3);
    assert.notEqual(Math.round(1e4 * byTokens.loss!.item()), Math.round(1e4 * byRows.loss!.item()));
    for (const r of [byTokens, byRows]) {
      rowMeans.forEach((x, b) => close(r.rows[b]!, x));
      assert.ok(Number.isNaN(r.rows[3]), 'a row without label tokens has no loss');
    }
  });
});

test('the contrastive objective learns to pair 8 images with their 8 texts (recall@1 = 1 after training, chance 1/8)', () => {
  torch.scope(() => {
    torch.manualSeed(4);
    const m = new M6Model(tiny());
    const t = tensors(8, 5);
    const opt = new AdamW(m.parameters(), { lr: 3e-3 });
    const recall = () => torch.noGrad(() => torch.scope(() => {
      const sim = m.embed({ source: t.source }).vectors.mm(m.embed({ images: t.images }).vectors.transpose(0, 1));
      return recallAtK(sim, Array.from({ length: 8 }, (_, i) => [i]), [1])['recall@1']!;
    }));
    let first = NaN, last = NaN;
    for (let step = 0; step < 80; step++) {
      torch.scope(() => {
        const r = batchLoss(m, t, new Array(8).fill('embed'));
        if (step === 0) first = r.loss!.item();
        last = r.loss!.item();
        r.loss!.backward();
        opt.step();
        opt.zeroGrad();
      });
    }
    m.eval();
    assert.ok(last < first / 4, `loss ${first} → ${last}`);
    assert.equal(recall(), 1);
  });
});

test('MoE routing per layer: what capacity dropped and the busiest expert\'s load, as the model reported them; none for a dense model', () => {
  torch.scope(() => {
    torch.manualSeed(8);
    const E = 4;
    const m = new M6Model({ ...tiny(), layers: 2, experts: E, moeEvery: 1, capacityFactor: 1 });  // training mode: capacity applies
    const t = tensors(4, 9);
    const tasks = ['describe', 'answer', 'describe', 'design'];
    const r = batchLoss(m, t, tasks);
    const direct = m.forward({ images: t.images, source: t.source, sourceMask: t.sourceMask, target: t.target, targetMask: t.targetMask }).moe;
    assert.deepEqual(r.moe.map((x) => x.layer), [0, 1]);
    r.moe.forEach((x, i) => {
      assert.ok(Math.abs(x.dropped - direct[i]!.dropped.item()) < 1e-6, `layer ${x.layer}: dropped ${x.dropped}`);
      assert.ok(Math.abs(x.maxLoad - E * direct[i]!.load.max().item()) < 1e-5, `layer ${x.layer}: max load ${x.maxLoad}`);
      assert.ok(x.dropped >= 0 && x.dropped < 1 && x.maxLoad >= 1 && x.maxLoad <= E, JSON.stringify(x));
    });
    assert.deepEqual(batchLoss(new M6Model(tiny()), t, tasks).moe, []);
  });
});
