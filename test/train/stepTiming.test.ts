// The per-step timing records train() writes to metrics.jsonl (what `npm run bench -- train` reads):
// every finite step has one, its phases fit inside its total, and its position count is what the
// model's forward actually ran over. No assertion on how long anything takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeSyntheticCatalog } from '../../src/data/synth/catalog.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { M6Model, gridSize, preset, type M6Input } from '../../src/model/index.js';
import { readMetrics, type TrainMetric } from '../../src/train/metrics.js';
import { train } from '../../src/train/trainer.js';
import type { Example } from '../../src/data/loader.js';
import { tempDir } from '../data/fixtures.js';

/** train() for `steps` steps of two micro-batches of 3, no eval, one checkpoint at the end; returns its train records. */
async function trainRecords(runDir: string, model: M6Model, tokenizer: Tokenizer, tasks: { name: string; examples: Example[] }[], steps: number): Promise<TrainMetric[]> {
  try {
    await train({
      runDir, model, tokenizer, tasks, evalTasks: [],
      steps, minutes: null, batchSize: 3, gradAccum: 2, lr: 1e-3, warmup: 1, minLrRatio: 0.1, weightDecay: 0, clipNorm: 1,
      bf16: false, seed: 1, evalEvery: 0, evalBatches: 1, saveEvery: 0, keepCheckpoints: 1, maxNonFinite: steps, augment: false, workers: 1,
    });
  } finally {
    model.dispose();
  }
  return readMetrics(join(runDir, 'metrics.jsonl')).filter((m): m is TrainMetric => m.kind === 'train');
}

test('train() records each step\'s phases and the positions its forward ran over', async (t) => {
  const dir = tempDir(t, 'm6-timing-');
  await writeSyntheticCatalog({ out: join(dir, 'catalog'), count: 6, seed: 3, size: 64 });
  const withImages: Example[] = Array.from({ length: 6 }, (_, i) => ({
    id: `p${i}`, imagePath: join(dir, 'catalog', 'images', `p${String(i + 1).padStart(6, '0')}.png`), source: 'what is it?', target: i % 2 ? 'a red dress' : 'a blue shirt with long sleeves',
  }));
  const textOnly: Example[] = [{ id: 't0', source: 'colour?', target: 'red' }, { id: 't1', source: 'size of the shirt?', target: 'medium' }];
  const tokenizer = Tokenizer.train(['what is it? a red dress', 'a blue shirt with long sleeves', 'colour? red', 'size of the shirt? medium'], { vocabSize: 300, imageCodes: 16 });
  const cfg = preset('m6-nano', {
    layers: 1, dim: 16, heads: 2, ffnDim: 32, imageSize: 16, patchSize: 8, stemChannels: 4, maxTextLen: 32,
    vocabSize: tokenizer.vocabSize, imageCodeStart: tokenizer.imageCodeStart, imageCodes: tokenizer.imageCodes,
  });
  const model = new M6Model(cfg);
  const forwards: number[] = [];
  const forward = model.forward.bind(model);
  model.forward = (input: M6Input) => {
    if (model.training) forwards.push(input.target.shape[0]! * ((input.images ? gridSize(cfg) ** 2 : 0) + (input.source?.shape[1] ?? 0) + input.target.shape[1]!));
    return forward(input);
  };
  const records = await trainRecords(dir, model, tokenizer, [{ name: 'describe', examples: withImages }, { name: 'answer', examples: textOnly }], 4);
  assert.equal(records.length, 4);
  assert.equal(forwards.length, 8, 'two micro-batches per step');
  records.forEach((r, i) => {
    const timing = r.timing;
    assert.ok(timing, `step ${r.step} has a timing record`);
    assert.equal(timing.positions, forwards[2 * i]! + forwards[2 * i + 1]!, `step ${r.step}: positions of both micro-batches`);
    const phases = [timing.data, timing.forward, timing.backward, timing.optimizer];
    assert.ok(phases.every((s) => s >= 0), JSON.stringify(timing));
    assert.ok(timing.forward > 0 && timing.backward > 0 && timing.optimizer > 0, JSON.stringify(timing));
    assert.ok(phases.reduce((a, b) => a + b, 0) <= timing.total, `phases fit in the step: ${JSON.stringify(timing)}`);
  });
});

test('an MoE model\'s train records carry each MoE layer\'s routing, averaged over the micro-batches; a dense model\'s none', async (t) => {
  const dir = tempDir(t, 'm6-moe-metrics-');
  const examples: Example[] = Array.from({ length: 6 }, (_, i) => ({ id: `t${i}`, source: `colour of item ${i}?`, target: i % 2 ? 'red' : 'deep blue' }));
  const tokenizer = Tokenizer.train(examples.map((e) => `${e.source} ${e.target}`), { vocabSize: 300, imageCodes: 16 });
  const base = preset('m6-nano', {
    layers: 2, dim: 16, heads: 2, ffnDim: 32, imageSize: 16, patchSize: 8, stemChannels: 4, maxTextLen: 32,
    vocabSize: tokenizer.vocabSize, imageCodeStart: tokenizer.imageCodeStart, imageCodes: tokenizer.imageCodes,
  });
  for (const [name, cfg] of [['moe', { ...base, experts: 4, moeEvery: 2, capacityFactor: 1 }], ['dense', base]] as const) {
    const runDir = join(dir, name);
    mkdirSync(runDir);
    const records = await trainRecords(runDir, new M6Model(cfg), tokenizer, [{ name: 'answer', examples }], 3);
    assert.equal(records.length, 3);
    for (const r of records) {
      if (name === 'dense') { assert.equal(r.moe, undefined); continue; }
      assert.deepEqual(r.moe?.map((m) => m.layer), [1], `step ${r.step}: the one MoE layer (every 2nd)`);
      const m = r.moe![0]!;
      assert.ok(m.dropped >= 0 && m.dropped < 1 && m.maxLoad >= 1 && m.maxLoad <= 4, JSON.stringify(m));
    }
  }
});
