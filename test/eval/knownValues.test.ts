// The judging code against values worked out by hand: the Fréchet distance against its closed form,
// the chance level of recall@k against counting, the no-image answer prior, and evaluateSynthetic's
// figures on outputs fixed in advance (a stand-in pipeline: the judge is what is tested, not a model).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { frechetDistance } from '../../src/eval/frechet.js';
import { chanceRecall } from '../../src/eval/retrievalMetrics.js';
import { noImagePrior } from '../../src/eval/answerEval.js';
import { evaluateSynthetic, type CatalogItem } from '../../src/eval/syntheticEval.js';
import type { Pipeline, TextResult } from '../../src/pipelines/index.js';

test('Fréchet distance: Y = sX + t has the closed form ‖(s−1)μ + t‖² + (1−s)² Tr Σ', () => {
  torch.scope(() => {
    torch.manualSeed(3);
    const x = torch.randn([500, 6], { dtype: 'float64' }).matmul(torch.randn([6, 6], { dtype: 'float64' }));
    const t = torch.tensor([0.5, -1, 2, 0, 0.25, 3], { dtype: 'float64' });
    for (const s of [1, 0.5, 2]) {
      const y = x.mul(s).add(t);
      const mu = x.mean(0);
      const c = x.sub(mu);
      const traceCov = c.square().sum().item() / (x.shape[0] - 1);
      const expected = mu.mul(s - 1).add(t).square().sum().item() + (1 - s) ** 2 * traceCov;
      const got = frechetDistance(x, y);
      assert.ok(Math.abs(got - expected) <= 1e-6 * Math.max(1, expected), `s=${s}: ${got} vs ${expected}`);
    }
    assert.ok(Math.abs(frechetDistance(x, x)) < 1e-6, 'a set against itself: 0');
  });
});

test('chance recall@k: one relevant of n is k/n; g relevant of n is 1 − C(n−g, k)/C(n, k)', () => {
  assert.equal(chanceRecall([1, 1, 1, 1], 4, 1), 0.25);
  assert.ok(Math.abs(chanceRecall([1], 10, 3) - 0.3) < 1e-12);
  assert.ok(Math.abs(chanceRecall([2], 4, 2) - (1 - 1 / 6)) < 1e-12);      // C(2,2)/C(4,2) = 1/6 misses both
  assert.ok(Math.abs(chanceRecall([3], 10, 4) - (1 - 35 / 210)) < 1e-12);  // C(7,4)/C(10,4)
  assert.equal(chanceRecall([5], 5, 1), 1, 'every item relevant');
  assert.equal(chanceRecall([1, 3], 4, 4), 1, 'k = n finds everything');
  assert.ok(Math.abs(chanceRecall([1, 2], 4, 1) - (0.25 + 0.5) / 2) < 1e-12, 'the mean over queries');
});

test('no-image prior: each question\'s commonest training answer, the overall commonest for an unseen question', () => {
  const train = [
    { question: 'Is it red?', answer: 'No' }, { question: 'is it red?', answer: 'no.' }, { question: 'Is it red?', answer: 'Yes' },
    { question: 'What colour is it?', answer: 'Blue' }, { question: 'What colour is it?', answer: 'Red' }, { question: 'What colour is it?', answer: 'Red' },
    { question: 'Is it striped?', answer: 'No' },
  ];
  // Prior: "is it red?" → no; "what colour is it?" → red; an unseen question → no (3 of 7 answers).
  const items = [
    { question: 'Is it red?', reference: 'no' },            // right
    { question: 'Is it red?', reference: 'Yes' },           // wrong
    { question: 'What colour is it?', reference: 'Red.' },  // right
    { question: 'What colour is it?', reference: 'blue' },  // wrong
    { question: 'Is it checked?', reference: 'No' },        // unseen → "no": right
  ];
  assert.equal(noImagePrior(train, items), 3 / 5);
  assert.equal(noImagePrior([], items), 0);
  assert.equal(noImagePrior(train, []), 0);
});

test('evaluateSynthetic on fixed outputs: category, colour and exact match counted as worked out by hand', async () => {
  const item = (id: string, category: string, colour: string, qa: CatalogItem['qa']): CatalogItem => ({ id, image: `${id}.png`, category, colour, title: `${colour} ${category}`, description: 'A thing.', qa });
  const items = [
    item('a', 'dress', 'red', [{ question: 'Is it red?', answer: 'Yes' }]),
    item('b', 'shirt', 'blue', [{ question: 'What colour is it?', answer: 'Blue' }]),
    item('c', 'dress', 'green', []),
    item('d', 'handbag', 'black', [{ question: 'Is it red?', answer: 'No' }]),
  ];
  const described: Record<string, TextResult> = {
    'root/a.png': { ok: true, text: 'Red dress. A dress in red.', tokenIds: [], logProb: 0, finishReason: 'stop' },           // category ✓ colour ✓
    'root/b.png': { ok: true, text: 'Green shirt with long sleeves.', tokenIds: [], logProb: 0, finishReason: 'stop' },       // category ✓ colour ✗
    'root/c.png': { ok: false, error: 'missing file' },                                                                        // both ✗
    'root/d.png': { ok: true, text: 'Black dress.', tokenIds: [], logProb: 0, finishReason: 'stop' },                         // category ✗ colour ✓
  };
  const answers: Record<string, string> = { 'Is it red?|root/a.png': 'yes.', 'What colour is it?|root/b.png': 'Red', 'Is it red?|root/d.png': 'No' };
  const stub = {
    describe: async (images: readonly string[]) => images.map((i) => described[i]!),
    answer: async (qs: ReadonlyArray<{ question: string; image: string }>) => qs.map((q): TextResult => ({ ok: true, text: answers[`${q.question}|${q.image}`]!, tokenIds: [], logProb: 0, finishReason: 'stop' })),
  } as unknown as Pipeline;
  const r = await evaluateSynthetic(stub, items, 'root');
  assert.equal(r.describe.categoryAccuracy, 2 / 4);
  assert.equal(r.describe.colourAccuracy, 2 / 4);
  assert.equal(r.describe.categoryBaseline, 2 / 4, 'dress is half the items');
  assert.equal(r.describe.colourBaseline, 1 / 4);
  assert.deepEqual(r.describe.items.map((d) => [d.category, d.colour]), [['dress', 'red'], ['shirt', 'green'], ['—', '—'], ['dress', 'black']]);
  assert.equal(r.answer!.items.length, 3);
  assert.equal(r.answer!.exactMatch, 2 / 3, '"yes." matches "Yes"; "Red" is not "Blue"; "No" matches');
});

test('designs line up with their prompts: across chunks and around a failed prompt, each design is paired with its own id and truth', async () => {
  const { designAll } = await import('../../src/eval/designEval.js');
  // Each prompt names a number; the stub draws that number into its one-pixel "design", and fails prompt 3.
  const stub = {
    designEach: async (prompts: readonly string[]) => prompts.map((p) => {
      const k = Number(/\d+/.exec(p)![0]);
      return k === 3 ? { ok: false, error: 'no design' } : { ok: true, images: [{ rgb: Uint8Array.of(k), codes: new Int32Array(0), png: new Uint8Array(0) }] };
    }),
  } as unknown as Pipeline;
  const ctx = { task: 'design', pipeline: stub, batchSize: 1, log: () => {} } as unknown as Parameters<typeof designAll>[0];
  const wanted = Array.from({ length: 11 }, (_v, k) => ({ id: `p${k}`, prompt: `design number ${k}`, real: `p${k}.png`, truth: { category: `c${k}` } }));
  const failures: Array<{ id: string; error: string }> = [];
  const made = await designAll(ctx, wanted, 0, {}, failures);  // batchSize 1 → chunks of 8: two chunks
  assert.deepEqual(failures, [{ id: 'p3', error: 'no design' }]);
  assert.equal(made.length, 10);
  for (const m of made) {
    const k = Number(m.id.slice(1));
    assert.equal(m.image.rgb[0], k, `${m.id}'s design is the one drawn for its own prompt`);
    assert.equal(m.prompt, `design number ${k}`);
    assert.deepEqual(m.truth, { category: `c${k}` });
  }
});
