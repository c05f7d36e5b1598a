import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { bleu, rougeL, ciderD, tokenizeForMetrics } from '../../src/eval/textMetrics.js';
import { imageToTextRecall, recallAtK, relevantItems } from '../../src/eval/retrievalMetrics.js';
import { frechetDistance } from '../../src/eval/frechet.js';
import { assertClose } from '../helpers.js';

test('tokenizing for metrics: lower-case words, CJK per character', () => {
  assert.deepEqual(tokenizeForMetrics('A Red, polka-dot DRESS!'), ['a', 'red', 'polka', 'dot', 'dress']);
  assert.deepEqual(tokenizeForMetrics('红色连衣裙 size M'), ['红', '色', '连', '衣', '裙', 'size', 'm']);
});

test('BLEU-4: identical text scores 1; a hand-computed partial match; brevity penalty', () => {
  assertClose(bleu([{ candidate: 'a red cotton dress with short sleeves', references: ['a red cotton dress with short sleeves'] }]), 1);
  // cand: "the red dress is nice" vs ref "the red dress is very nice":
  // p1 = 5/5, p2 = 3/4, p3 = 2/3, p4 = 1/2; BP = exp(1 − 6/5).
  const expected = Math.exp(1 - 6 / 5) * Math.exp((Math.log(1) + Math.log(3 / 4) + Math.log(2 / 3) + Math.log(1 / 2)) / 4);
  assertClose(bleu([{ candidate: 'the red dress is nice', references: ['the red dress is very nice'] }]), expected, 1e-9);
  assert.equal(bleu([{ candidate: 'blue shoes', references: ['a red dress'] }]), 0);
});

test('ROUGE-L: LCS-based F-measure with β = 1.2', () => {
  // LCS("a red dress", "a long red dress") = 3: P = 1, R = 3/4.
  const p = 1, r = 3 / 4, b2 = 1.2 ** 2;
  assertClose(rougeL([{ candidate: 'a red dress', references: ['a long red dress'] }]), ((1 + b2) * p * r) / (r + b2 * p), 1e-12);
  assertClose(rougeL([{ candidate: 'x y', references: ['x y', 'z'] }]), 1);
});

test('CIDEr-D rewards consensus: the right caption outscores a wrong one; identical sets score 10 × n-gram agreement', () => {
  const refs = [
    ['a red dress with polka dots', 'red polka dot dress'],
    ['blue striped shirt with long sleeves', 'a long sleeve blue shirt with stripes'],
    ['black leather boots', 'a pair of black boots'],
  ];
  const good = ciderD(refs.map((r) => ({ candidate: r[0], references: r })));
  const bad = ciderD(refs.map((r, i) => ({ candidate: refs[(i + 1) % 3][0], references: r })));
  assert.ok(good > 1 && bad < 0.2, `good ${good}, bad ${bad}`);
});

test('recall@k', () => {
  const sim = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1], [0, 0, 1]]);
  const r = recallAtK(sim, [[0], [2], [1, 2]], [1, 2]);
  assert.deepEqual(r, { 'recall@1': 2 / 3, 'recall@2': 2 / 3 });
  assert.throws(() => recallAtK(sim, [[0]]), /1 relevance lists for 3 queries/);
});

test('Fréchet distance: 0 for identical sets; the closed form for shifted Gaussians', () => {
  torch.manualSeed(0);
  const a = torch.randn([2000, 4], { dtype: 'float64' });
  assertClose(frechetDistance(a, a), 0, 1e-6);
  // Same covariance, mean shifted by 1 in every dimension: distance = ‖δ‖² = 4.
  assertClose(frechetDistance(a, a.add(1)), 4, 1e-6);
  // Scaling by 2: Tr(Σ + 4Σ − 2·2Σ) = Tr(Σ) ≈ 4 for unit Gaussians.
  assertClose(frechetDistance(a, a.mul(2)), 4 * 1, 0.3);
});

test('imageToTextRecall ranks each distinct caption once; relevance by group; chance over the distinct captions', () => {
  // Six photos, three captions: "dress" ×3, "skirt" ×2, "boot" ×1. Each image scores its own caption
  // highest, the next caption second; the repeats of a caption score the same.
  const captions = ['Dress', 'dress ', 'dress', 'skirt', 'skirt', 'boot'];
  const items = captions.map((text, i) => ({ id: `p${i}`, image: `p${i}.png`, text }));
  const kind = (c: string) => ['dress', 'skirt', 'boot'].indexOf(c.trim().toLowerCase());
  const sim = torch.tensor(captions.map((t) => items.map((it) => (kind(t) === kind(it.text) ? 1 : kind(t) === (kind(it.text) + 1) % 3 ? 0.5 : 0))));   // (texts, images)
  const r = imageToTextRecall(sim, items, [1, 2]);
  assert.equal(r.captions, 3);
  assert.deepEqual(r.recall, { 'recall@1': 1, 'recall@2': 1 });
  assert.ok(Math.abs(r.chance['recall@1']! - 1 / 3) < 1e-12 && Math.abs(r.chance['recall@2']! - 2 / 3) < 1e-12, JSON.stringify(r.chance));
  // With the next caption scored above each photo's own: recall@1 is 0 and recall@2 over the distinct
  // captions is 1, while ranked with repeats a dress photo's top 2 are the two "skirt" rows.
  const shifted = torch.tensor(captions.map((t) => items.map((it) => (kind(t) === (kind(it.text) + 1) % 3 ? 1 : kind(t) === kind(it.text) ? 0.5 : 0))));
  assert.deepEqual(imageToTextRecall(shifted, items, [1, 2]).recall, { 'recall@1': 0, 'recall@2': 1 });
  assert.ok(recallAtK(shifted.transpose(0, 1), relevantItems(items), [2])['recall@2']! < 1, 'with repeats, the top 2 of a dress photo are both skirts');
  // Groups: photos of one group are relevant to each other's captions, whatever the caption says.
  const grouped = items.map((it, i) => ({ ...it, group: i < 4 ? 'top' : 'shoe' }));
  assert.deepEqual(imageToTextRecall(shifted, grouped, [1]).recall, { 'recall@1': 4 / 6 });
});
