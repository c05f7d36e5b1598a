// The embed and denoise tasks through the CLI, as a user runs them: train on a tiny synthetic
// catalog (embed batches are one task each, so their negatives are their batch-mates), then
// `m6 embed` for images and texts, with a bad input reported on its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMetrics, type TrainMetric } from '../../src/train/metrics.js';
import { loadPipeline } from '../../src/pipelines/index.js';
import { evaluateEmbed } from '../../src/eval/embedEval.js';
import { readCatalog } from '../../src/eval/syntheticEval.js';
import { m6, writeTinyConfig } from '../data/fixtures.js';

let dir = '', run = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-embed-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '40', '--seed', '4', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'), { maxTextLen: 64 });
  run = join(dir, 'run');
  const r = await m6(['train', '--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.8,test:0.2', '--config', join(dir, 'tiny.json'),
    '--batch-size', '6', '--vocab', '400', '--workers', '0', '--seed', '1', '--steps', '18', '--tasks', 'embed,denoise,describe', '--out', run]);
  assert.equal(r.status, 0, r.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('embed and denoise train: every batch has its group of embed pairs beside mixed generative rows, every task gets a finite loss, eval covers them', () => {
  const metrics = readMetrics(join(run, 'metrics.jsonl'));
  const train = metrics.filter((m): m is TrainMetric => m.kind === 'train');
  assert.equal(train.length, 18);
  for (const m of train) assert.ok('embed' in m.taskLoss, `step ${m.step} has no embed group: ${JSON.stringify(m.taskLoss)}`);
  assert.ok(train.some((m) => 'denoise' in m.taskLoss && 'describe' in m.taskLoss), 'the generative slots mix tasks');
  for (const m of train) for (const v of Object.values(m.taskLoss)) assert.ok(Number.isFinite(v));
  const evals = metrics.filter((m) => m.kind === 'eval');
  assert.ok(evals.length >= 1);
  assert.ok('embed' in (evals.at(-1) as { taskLoss: Record<string, number> }).taskLoss);
  for (const chart of ['loss.png', 'eval.png']) assert.ok(existsSync(join(run, chart)), `${chart} in the run folder`);
});

test('m6 embed: unit vectors for images and texts; a missing image is reported and the rest still print', async () => {
  const catalog = [...readCatalog(join(dir, 'catalog', 'catalog.jsonl')).values()];
  const image = join(dir, 'catalog', catalog[0]!.image);
  const ok = await m6(['embed', '--run', run, '--image', image, '--text', catalog[0]!.title, 'a red dress', '--json']);
  assert.equal(ok.status, 0, ok.stderr);
  const rows = JSON.parse(ok.stdout) as Array<{ input: string; kind: string; vector: number[] }>;
  assert.deepEqual(rows.map((r) => r.kind), ['image', 'text', 'text']);
  for (const r of rows) {
    assert.equal(r.vector.length, 32);
    const norm = Math.sqrt(r.vector.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
  }
  const bad = await m6(['embed', '--run', run, '--image', join(dir, 'nope.jpg'), image]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /nope\.jpg: error: /);
  assert.equal(bad.stdout.trim().split('\n').length, 1, 'the good image still printed');
  const none = await m6(['embed', '--run', run]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /give --image FILE… and\/or --text TEXT…/);
});

test('evaluateEmbed: recall@k in [0, 1], monotone in k, with the chance level beside it', async () => {
  const loaded = await loadPipeline(run);
  try {
    const items = [...readCatalog(join(dir, 'catalog', 'catalog.jsonl')).values()].slice(0, 20).map((it) => ({
      id: it.id, image: join(dir, 'catalog', it.image), text: it.title, group: `${it.category}|${it.colour}`,
    }));
    const r = await evaluateEmbed(loaded, items);
    assert.equal(r.items, 20);
    for (const side of [r.textToImage, r.imageToText, r.chanceTextToImage]) {
      const [r1, r5, r10] = [side['recall@1']!, side['recall@5']!, side['recall@10']!];
      assert.ok(r1 >= 0 && r1 <= r5 && r5 <= r10 && r10 <= 1, JSON.stringify(side));
    }
    assert.ok(r.examples.length > 0 && r.examples[0]!.top.length === 5);
  } finally {
    loaded.close();
  }
});

test('m6 eval --tasks embed --json: recall both ways with the chance level as the baseline', async () => {
  const r = await m6(['eval', '--run', run, '--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.8,test:0.2', '--tasks', 'embed', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { tasks: Array<{ task: string; evaluated: number; metrics: Record<string, number>; baselines: Record<string, number>; baselineName?: string; moreBaselines?: Array<{ name: string; values: Record<string, number> }>; notes: string[] }> };
  const embed = report.tasks.find((t) => t.task === 'embed')!;
  assert.ok(embed.evaluated >= 4 && embed.evaluated <= 14, String(embed.evaluated));   // ~20% of 40
  for (const k of ['textToImageRecall1', 'textToImageRecall5', 'textToImageRecall10', 'imageToTextRecall1', 'imageToTextRecall10']) {
    assert.ok(embed.metrics[k]! >= 0 && embed.metrics[k]! <= 1, `${k} = ${embed.metrics[k]}`);
  }
  assert.ok(embed.baselines.textToImageRecall1! > 0);
  assert.equal(embed.baselines.imageToTextRecall1, embed.baselines.textToImageRecall1, 'relevance by group: chance is the same both ways');
  assert.match(embed.notes.join(' '), /same category, colour and pattern/);
  // Beside chance, the pixel baseline: the query caption's mean training thumbnail, both ways, every metric the model has.
  assert.equal(embed.baselineName, 'random ranking');
  assert.deepEqual(embed.moreBaselines?.map((b) => b.name), ['pixel mean thumbnail']);
  const pixel = embed.moreBaselines![0]!.values;
  assert.deepEqual(Object.keys(pixel), Object.keys(embed.metrics));
  for (const [k, v] of Object.entries(pixel)) assert.ok(v >= 0 && v <= 1, `pixel ${k} = ${v}`);
  assert.ok(pixel.textToImageRecall1! <= pixel.textToImageRecall10! && pixel.imageToTextRecall1! <= pixel.imageToTextRecall10!);
  assert.match(embed.notes.join('\n'), /pixel mean thumbnail: a caption stands for the mean thumbnail of the training rows with that caption .*the 16×16 RGB thumbnails of all \d+ training rows/);
});
