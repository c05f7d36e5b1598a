// The recommend task in the model: an item table (learnt ids + title tokens through the token
// table), causal item queries after the instruction, full-softmax scores at the learnt scale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { M6Model, preset } from '../../src/model/index.js';
import { batchLoss } from '../../src/train/objectives.js';
import { assertClose } from '../helpers.js';

const cfg = (o: Record<string, number> = {}) => preset('m6-nano', { vocabSize: 64, imageCodeStart: 48, imageCodes: 16, layers: 2, dim: 32, heads: 2, ffnDim: 64, maxTextLen: 24, items: 10, itemTextLen: 3, ...o });
const hist = (rows: number[][], T: number) => torch.tensor(Int32Array.from(rows.flatMap((r) => [...r, ...new Array(T - r.length).fill(-1)])), { shape: [rows.length, T], dtype: 'int64' });

test('a query sees only the items before it: changing a later item or the padding leaves earlier queries alone', () => {
  torch.manualSeed(0);
  const model = new M6Model(cfg()).eval();
  torch.scope(() => {
    const a = model.recommendQueries({ history: hist([[1, 2, 3, 4]], 4) }).queries;
    const b = model.recommendQueries({ history: hist([[1, 2, 7, 8]], 4) }).queries;
    const c = model.recommendQueries({ history: hist([[1, 2]], 4) }).queries;
    assertClose(a.narrow(1, 0, 2).toArray() as number[][][], b.narrow(1, 0, 2).toArray() as number[][][], 1e-5);
    assertClose(a.narrow(1, 0, 2).toArray() as number[][][], c.narrow(1, 0, 2).toArray() as number[][][], 1e-5);
    assert.notDeepEqual(a.narrow(1, 3, 1).toArray(), b.narrow(1, 3, 1).toArray());
    // Unit vectors.
    assertClose(a.norm(2, -1).toArray() as number[][], [[1, 1, 1, 1]], 1e-5);
  });
  model.dispose();
});

test('item vectors: titles count through the token table; a cleared item is its title alone; id dropout acts only in training', () => {
  torch.manualSeed(1);
  const model = new M6Model(cfg({ itemIdDropout: 0.5 }));
  const items = model.items!;
  const text = new Int32Array(10 * 3).fill(-1);
  text.set([5, 6, -1], 0);   // item 0: two title tokens
  text.set([5, 6, -1], 3);   // item 1: the same title
  items.setText(text);
  items.clearIds([0, 1]);
  model.eval();
  torch.scope(() => {
    const v = model.itemVectors().toArray() as number[][];
    assertClose(v[0]!, v[1]!, 1e-6);                         // same title, no learnt vector: the same item to the model
    assert.ok(Math.abs(v[0]![0]! - v[2]![0]!) > 1e-6);         // item 2 is its learnt vector alone
    const again = model.itemVectors().toArray() as number[][];
    assertClose(again, v, 0);                                  // eval: deterministic
  });
  model.train();
  torch.manualSeed(2);
  const dropped = torch.scope(() => model.itemVectors().toArray() as number[][]);
  torch.manualSeed(3);
  const dropped2 = torch.scope(() => model.itemVectors().toArray() as number[][]);
  assert.notDeepEqual(dropped, dropped2, 'training drops a random half of the learnt vectors each call');
  assert.throws(() => items.setText(new Int32Array(5)), /expected 30 token ids/);
  model.dispose();
});

test('the recommend loss is the cross-entropy of every next item among the candidates, and a model with no items says so', () => {
  torch.manualSeed(4);
  const model = new M6Model(cfg()).eval();
  torch.scope(() => {
    const items = hist([[1, 2, 3], [4, 5, -1]], 3);
    const t = { source: torch.zeros([2, 1], { dtype: 'int64' }), sourceMask: torch.ones([2, 1], { dtype: 'bool' }), target: torch.zeros([2, 1], { dtype: 'int64' }), targetMask: torch.ones([2, 1], { dtype: 'bool' }), labels: torch.full([2, 1], -100, { dtype: 'int64' }), labelCounts: [0, 0], items };
    const candidates = torch.tensor(Uint8Array.from([1, 1, 1, 1, 1, 1, 0, 0, 1, 1]), { dtype: 'bool' });
    const out = batchLoss(model, t, ['recommend', 'recommend'], { itemCandidates: candidates });
    // By hand: steps (row 0: 1→2, 2→3; row 1: 4→5), scores against every item, non-candidates masked.
    const q = model.recommendQueries({ history: items.narrow(1, 0, 2), source: t.source, sourceMask: t.sourceMask }).queries;
    const logits = model.itemScores(q, model.itemVectors()).maskedFill(candidates.logicalNot(), -1e4);
    const lp = torch.nn.logSoftmax(logits, -1).toArray() as number[][][];
    const step = [-lp[0]![0]![2]!, -lp[0]![1]![3]!, -lp[1]![0]![5]!];
    assertClose(out.loss!.item(), (step[0]! + step[1]! + step[2]!) / 3, 1e-5);
    assertClose(out.rows, [(step[0]! + step[1]!) / 2, step[2]!], 1e-5);
  });
  model.dispose();
  const plain = new M6Model(cfg({ items: 0, itemTextLen: 0 }));
  assert.equal(plain.items, undefined);
  assert.throws(() => plain.itemVectors(), /no item table .* not trained to recommend/);
  plain.dispose();
});

test('a recommend row in a batch with a long question: the prompt padding it shares is cut, so its history fits and its loss is its own', () => {
  torch.manualSeed(3);
  const model = new M6Model(cfg({ maxTextLen: 12 })).eval();
  torch.scope(() => {
    // Row 0 answers a 10-token question; row 1 recommends after a 2-token instruction, 8 items (7 queries).
    const source = torch.tensor(Int32Array.from([...new Array(10).fill(7), 5, 6, ...new Array(8).fill(0)]), { shape: [2, 10], dtype: 'int64' });
    const sourceMask = torch.tensor(Uint8Array.from([...new Array(10).fill(1), 1, 1, ...new Array(8).fill(0)]), { shape: [2, 10], dtype: 'bool' });
    const items = hist([[], [1, 2, 3, 4, 5, 6, 7, 8]], 8);
    const t = { source, sourceMask, target: torch.zeros([2, 1], { dtype: 'int64' }), targetMask: torch.ones([2, 1], { dtype: 'bool' }), labels: torch.full([2, 1], -100, { dtype: 'int64' }), labelCounts: [0, 0], items };
    const mixed = batchLoss(model, t, ['answer', 'recommend']);
    const alone = batchLoss(model, { ...t, source: source.narrow(0, 1, 1).narrow(1, 0, 2), sourceMask: sourceMask.narrow(0, 1, 1).narrow(1, 0, 2), target: torch.zeros([1, 1], { dtype: 'int64' }), targetMask: torch.ones([1, 1], { dtype: 'bool' }), labels: torch.full([1, 1], -100, { dtype: 'int64' }), labelCounts: [0], items: items.narrow(0, 1, 1) }, ['recommend']);
    assertClose(mixed.rows[1]!, alone.rows[0]!, 1e-5);
  });
  model.dispose();
});
