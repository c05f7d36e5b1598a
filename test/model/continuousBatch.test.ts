// Continuous batching: rows that join a running generation at different steps, with and without
// an image, with sources of different lengths, and leave at different steps, each write exactly what
// `generate` writes for them alone (greedy); a dropped row leaves the others as they were; nothing leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { preset } from '../../src/model/config.js';
import { M6Model } from '../../src/model/m6.js';
import { generate, type GenerationPrompt } from '../../src/model/generate.js';
import { ContinuousBatch, type FinishedRow } from '../../src/model/continuousBatch.js';

const BOS = 1, EOS = 2, PAD = 0;
const cfg = preset('m6-nano', { layers: 2, dim: 64, heads: 4, ffnDim: 128, vocabSize: 300, imageCodeStart: 200, imageCodes: 100, maxTextLen: 40 });
torch.manualSeed(4321);
const model = new M6Model(cfg).eval();
torch.setNumThreads(1);
// Larger weights than init: peaked, varied next tokens (as in generate.test), and EOS now and then.
torch.noGrad(() => { for (const [name, p] of model.namedParameters()) if (!name.includes('ln')) p.mul_(5); });
const decoding = { bosId: BOS, padId: PAD, stopTokens: [EOS], suppressTokens: [PAD, BOS] };

/** Prompts of `lengths` source tokens (right-padded to the longest), with an image each or none. */
function prompt(lengths: number[], images: boolean, salt: number): GenerationPrompt {
  return torch.scope(() => {
    const S = Math.max(...lengths);
    const ids = lengths.map((n, b) => Array.from({ length: S }, (_, j) => (j < n ? 10 + ((b * 31 + j * 7 + salt * 13) % 150) : PAD)));
    return {
      images: images ? torch.randn([lengths.length, 3, cfg.imageSize, cfg.imageSize]).keep() : undefined,
      source: torch.tensor(ids, { dtype: 'int64' }).keep(),
      sourceMask: torch.tensor(lengths.map((n) => Array.from({ length: S }, (_, j) => j < n))).keep(),
    };
  });
}

/** Row b alone, without the padding its batch gave it. */
function alone(p: GenerationPrompt, b: number): GenerationPrompt {
  const n = (p.sourceMask!.narrow(0, b, 1).toArray() as boolean[][])[0]!.filter(Boolean).length;
  return { images: p.images?.narrow(0, b, 1), source: p.source!.narrow(0, b, 1).narrow(1, 0, n), sourceMask: p.sourceMask!.narrow(0, b, 1).narrow(1, 0, n) };
}

function reference(p: GenerationPrompt, b: number, maxNew: number): { tokens: number[]; logProb: number; reason: string } {
  const r = torch.scope(() => generate(model, alone(p, b), { ...decoding, kind: 'text', maxNewTokens: maxNew }));
  return { tokens: r.sequences[0]!, logProb: r.logProbs[0]!, reason: r.finishReasons[0]! };
}

test('rows joining at different steps, with and without images, each write what generate writes alone', () => {
  torch.manualSeed(7);
  const a = prompt([6, 3], true, 1), b = prompt([9, 2, 5], false, 2), c = prompt([4], true, 3);
  const live = torch.liveTensors();
  const batch = new ContinuousBatch(model, decoding);
  const done = new Map<number, FinishedRow>();
  const collect = () => { for (const r of batch.step()) done.set(r.id, r); };
  const want = new Map<number, ReturnType<typeof reference>>();
  const join = (p: GenerationPrompt, maxNew: number[]) => batch.join(p, maxNew).forEach((id, i) => want.set(id, reference(p, i, maxNew[i]!)));
  join(a, [12, 20]);
  collect(); collect(); collect();
  join(b, [8, 30, 1]);          // a row of one token finishes at its join
  collect();
  join(c, [25]);
  let steps = 0;
  while (batch.size > 0 && steps++ < 60) collect();
  assert.equal(batch.size, 0);
  assert.equal(done.size, 6);
  for (const [id, w] of want) {
    const got = done.get(id)!;
    assert.deepEqual(got.tokens, w.tokens, `row ${id}`);
    assert.equal(got.finishReason, w.reason, `row ${id}`);
    assert.ok(Math.abs(got.logProb - w.logProb) < 1e-3, `row ${id}: log p ${got.logProb} vs ${w.logProb}`);
  }
  batch.dispose();
  assert.equal(torch.liveTensors(), live, 'the batch frees its cache');
});

test('a dropped row leaves the batch; the others write what they would have; join checks its arguments', () => {
  torch.manualSeed(8);
  const p = prompt([5, 7, 3], true, 4);
  const batch = new ContinuousBatch(model, decoding);
  const ids = batch.join(p, [20, 20, 20]);
  batch.step();
  batch.drop(ids[1]!);
  const done = new Map<number, FinishedRow>();
  while (batch.size > 0) for (const r of batch.step()) done.set(r.id, r);
  assert.deepEqual([...done.keys()].sort(), [ids[0], ids[2]].sort());
  for (const b of [0, 2]) assert.deepEqual(done.get(ids[b]!)!.tokens, reference(p, b, 20).tokens);
  assert.throws(() => batch.join(p, [5, 5]), /3 rows .* as many maxNew, got 2/);
  assert.throws(() => batch.join(p, [5, 5, cfg.maxTextLen + 1]), /maxNew must be an integer in \[1, 40\]/);
  batch.dispose();
});
