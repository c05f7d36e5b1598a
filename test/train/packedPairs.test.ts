// Packed answer rows (M6Config.packAnswers): several question–answer pairs about one image in one
// row must train each pair exactly as if it were alone — the same logits at its label positions, the
// same labels — and the image must not read any question (else one question's answer reaches another).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { DataLoader, type Batch, type Example } from '../../src/data/loader.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { M6Model, preset } from '../../src/model/index.js';
import { batchToTensors, IGNORE_INDEX, positionsInPairs } from '../../src/train/batchTensors.js';
import { batchLoss, lmCounts } from '../../src/train/objectives.js';
import { packAnswerPairs } from '../../src/tasks/taskData.js';
import { tempDir, writeSolidImage } from '../data/fixtures.js';
import { assertClose } from '../helpers.js';

const tokenizer = Tokenizer.train(['what colour is this dress?', 'red', 'is this dress blue?', 'no', 'what pattern does it have?', 'polka-dot'], { vocabSize: 300, imageCodes: 16 });
const cfg = preset('m6-nano', {
  layers: 2, dim: 32, heads: 4, ffnDim: 64, vocabSize: tokenizer.vocabSize, imageCodeStart: tokenizer.imageCodeStart, imageCodes: tokenizer.imageCodes,
  maxTextLen: 48, imageSize: 32, patchSize: 8, stemChannels: 8, layoutChannels: 4, packAnswers: true,
});
const PAIRS = [
  { source: 'what colour is this dress?', target: 'red' },
  { source: 'is this dress blue?', target: 'no' },
  { source: 'what pattern does it have?', target: 'polka-dot' },
];

async function oneBatch(examples: Example[]): Promise<Batch> {
  const loader = new DataLoader([{ name: 'answer', examples }], { tokenizer, batchSize: examples.length, seed: 0, workers: 0, image: { size: 32 }, maxSourceLength: 48, maxTargetLength: 49 });
  try {
    for await (const b of loader.batches({ steps: 1 })) return b;
  } finally {
    await loader.close();
  }
  throw new Error('no batch');
}

/** The logits at each real label position of row b, with its label: [label, logits][]. */
function labelled(logits: torch.Tensor, labels: torch.Tensor, b: number): Array<[number, number[]]> {
  const l = labels.select(0, b).toArray() as number[];
  const out: Array<[number, number[]]> = [];
  l.forEach((y, t) => { if (y !== IGNORE_INDEX) out.push([y, logits.select(0, b).select(0, t).toArray() as number[]]); });
  return out;
}

test('a packed row trains each pair as if alone: same labels, same logits, the image reading no question', async (t) => {
  const dir = tempDir(t);
  const imagePath = `${dir}/p.png`;
  await writeSolidImage(imagePath, { width: 32, height: 32, rgb: [200, 30, 30], format: 'png' });
  torch.manualSeed(0);
  const model = new M6Model(cfg).eval();
  const packed = await oneBatch([{ id: 'p#qa0', imagePath, pairs: PAIRS }]);
  const alone = await oneBatch(PAIRS.map((p, k) => ({ id: `p#q${k}`, imagePath, source: p.source, target: p.target })));
  assert.deepEqual([...packed.pairOf!.target.data].filter((p) => p >= 0).filter((p, i, a) => a.indexOf(p) === i), [0, 1, 2]);
  torch.noGrad(() => torch.scope(() => {
    const tp = batchToTensors(packed), ta = batchToTensors(alone);
    const run = (t: typeof tp) => model.forward({ images: t.images, source: t.source, sourceMask: t.sourceMask, target: t.target, targetMask: t.targetMask, isolateImage: true, ...(t.pairs ? { pairs: t.pairs } : {}) }).logits;
    const lp = labelled(run(tp), tp.labels, 0);
    // The loader draws rows in its own order: take the lone rows in pair order.
    const row = (k: number) => alone.ids.indexOf(`p#q${k}`);
    const lal = run(ta);
    const la = PAIRS.flatMap((_p, k) => labelled(lal, ta.labels, row(k)));
    // One pair's <eos> does not predict the next pair's <bos>: exactly the lone rows' labels.
    assert.deepEqual(lp.map(([y]) => y), la.map(([y]) => y));
    assert.equal(tp.labelCounts[0], ta.labelCounts.reduce((a, b) => a + b, 0));
    // What data parallel divides by (all-reduced lmCounts) is what the loss reads.
    assert.deepEqual(lmCounts(packed), { tokens: tp.labelCounts[0], rows: 1 });
    lp.forEach(([, v], i) => assertClose(v, la[i]![1], 1e-5, `label position ${i}`));
    // Without isolation a lone row's image reads its question, so its logits differ: the test can tell.
    const open = model.forward({ images: ta.images, source: ta.source, sourceMask: ta.sourceMask, target: ta.target, targetMask: ta.targetMask }).logits;
    const lo = PAIRS.flatMap((_p, k) => labelled(open, ta.labels, row(k)));
    assert.ok(lo.some(([, v], i) => v.some((x, j) => Math.abs(x - la[i]![1][j]!) > 1e-4)), 'isolation changes a lone row');
  }));
  model.dispose();
});

test('the loss of a packed batch trains answer rows with the image isolated (packAnswers) and has gradients', async (t) => {
  const dir = tempDir(t);
  const imagePath = `${dir}/p.png`;
  await writeSolidImage(imagePath, { width: 32, height: 32, rgb: [30, 30, 200], format: 'png' });
  torch.manualSeed(1);
  const model = new M6Model(cfg);
  const b = await oneBatch([{ id: 'p#qa0', imagePath, pairs: PAIRS }, { id: 'q#q0', imagePath, source: 'is this dress blue?', target: 'yes' }]);
  torch.scope(() => {
    const r = batchLoss(model, batchToTensors(b), b.tasks, { mean: 'rows' });
    assert.ok(Number.isFinite(r.loss!.item()));
    r.loss!.backward();
    assert.ok(r.rows.every(Number.isFinite));
  });
  assert.ok(model.parameters().some((p) => p.grad !== undefined && (p.grad.abs().sum().item() as number) > 0));
  model.dispose();
});

test('positions count from 0 in every pair; padding is position 0', () => {
  const p = positionsInPairs({ data: Int32Array.from([0, 0, 0, 1, 1, 2, -1, -1]), shape: [1, 8] });
  assert.deepEqual([...p.data], [0, 1, 2, 0, 1, 0, 0, 0]);
});

test('packAnswerPairs: one pack per row, split where a pack would not fit, the row\'s image and split kept', () => {
  const ex = (row: string, k: number, heldOut?: 'val'): Example => ({ id: `${row}#q${k}`, imagePath: `/img/${row}.png`, source: `q${k}`, target: `a${k}`, ...(heldOut ? { heldOut } : {}) });
  const examples = [ex('r1', 0), ex('r1', 1), ex('r1', 2), ex('r2', 0, 'val'), ex('r2', 1, 'val')];
  const all = packAnswerPairs(examples, () => true);
  assert.deepEqual(all.map((e) => [e.id, e.imagePath, e.pairs!.map((p) => p.source), e.heldOut, e.source, e.target]), [
    ['r1#qa0', '/img/r1.png', ['q0', 'q1', 'q2'], undefined, undefined, undefined],
    ['r2#qa0', '/img/r2.png', ['q0', 'q1'], 'val', undefined, undefined],
  ]);
  const two = packAnswerPairs(examples, (pairs) => pairs.length <= 2);
  assert.deepEqual(two.map((e) => [e.id, e.pairs!.length]), [['r1#qa0', 2], ['r1#qa1', 1], ['r2#qa0', 2]]);
  // Every pair lands in exactly one pack.
  assert.equal(two.reduce((n, e) => n + e.pairs!.length, 0), examples.length);
});

test('a packed example that cannot fit the model is an error naming it, not a silent cut', async () => {
  const loader = new DataLoader([{ name: 'answer', examples: [{ id: 'big#qa0', pairs: PAIRS }] }], { tokenizer, batchSize: 1, seed: 0, workers: 0, maxSourceLength: 8, maxTargetLength: 49 });
  try {
    await assert.rejects(async () => { for await (const _b of loader.batches({ steps: 1 })) { /* drain */ } }, /example big#qa0: its 3 packed pairs take \d+ source and \d+ target tokens/);
  } finally {
    await loader.close();
  }
});
