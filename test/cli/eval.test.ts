// `m6 eval` as a user runs it (node bin/m6.js …) on a tiny run trained for a few steps on a tiny
// synthetic catalog: the table, --json (exit code, shape, numbers in range), --out with per-item
// records, describe's pixel nearest-neighbour baseline beside the majority class; a bad --run or a
// bad data spec is one clear line, no stack.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { m6, writeTinyConfig } from '../data/fixtures.js';

let dir = '';
let runDir = '';
let data: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-eval-cli-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '30', '--seed', '6', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'));
  data = ['--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.7,test:0.3'];
  runDir = join(dir, 'run');
  const trained = await m6(['train', ...data, '--config', join(dir, 'tiny.json'), '--batch-size', '4', '--vocab', '300', '--workers', '0', '--steps', '3', '--tasks', 'describe,answer', '--out', runDir]);
  assert.equal(trained.status, 0, trained.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface JsonReport {
  checkpoint: string;
  step: number;
  rows: number;
  tasks: Array<{ task: string; available: number; evaluated: number; failures: unknown[]; metrics: Record<string, number>; baselines: Record<string, number>; baselineName?: string; moreBaselines?: Array<{ name: string; values: Record<string, number> }>; notes: string[]; items?: unknown }>;
  skipped: Array<{ task: string; reason: string }>;
}

test('m6 eval --json: exit 0, one entry per task, metrics and baselines in [0, 1]; --out keeps per-item records', async () => {
  const out = join(dir, 'eval.json');
  const r = await m6(['eval', '--run', runDir, ...data, '--tasks', 'describe,answer', '--limit', '4', '--batch-size', '2', '--json', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as JsonReport;
  assert.equal(report.step, 3);
  assert.equal(report.rows, 30);
  assert.deepEqual(report.tasks.map((t) => t.task), ['describe', 'answer']);
  assert.deepEqual(report.skipped, []);
  for (const t of report.tasks) {
    assert.equal(t.evaluated, 4, t.task);
    assert.ok(t.available >= 4);
    assert.equal(t.items, undefined, '--json leaves the records out');
    for (const [key, v] of [...Object.entries(t.metrics), ...Object.entries(t.baselines)]) {
      if (key === 'ciderD') assert.ok(v >= 0, `${t.task} ${key} ${v}`);
      else assert.ok(v >= 0 && v <= 1, `${t.task} ${key} ${v}`);
    }
  }
  assert.deepEqual(Object.keys(report.tasks[0]!.metrics), ['bleu4', 'rougeL', 'ciderD', 'categoryAccuracy', 'colourAccuracy']);
  assert.deepEqual(Object.keys(report.tasks[1]!.metrics), ['exactMatch']);
  // describe's pixel baseline: the nearest training thumbnail's text, scored on the same metrics as the model.
  const describe = report.tasks[0]!;
  assert.equal(describe.baselineName, 'majority class');
  assert.deepEqual(describe.moreBaselines?.map((b) => b.name), ['pixel nearest neighbour']);
  const pixel = describe.moreBaselines![0]!.values;
  assert.deepEqual(Object.keys(pixel), Object.keys(describe.metrics));
  for (const [key, v] of Object.entries(pixel)) assert.ok(v >= 0 && (key === 'ciderD' || v <= 1), `pixel ${key} ${v}`);
  assert.match(describe.notes.join('\n'), /pixel nearest neighbour: .*the 16×16 RGB thumbnails of all \d+ training rows/);
  const full = JSON.parse(readFileSync(out, 'utf8')) as { tasks: Array<{ items: Array<{ id: string; generated: string }> }> };
  assert.equal(full.tasks[0]!.items.length, 4);
  assert.ok(full.tasks[0]!.items.every((d) => typeof d.generated === 'string'));

  const table = await m6(['eval', '--run', runDir, ...data, '--tasks', 'describe', '--limit', '2']);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /^task\s+items\s+failed\s+metric\s+value\s+baseline$/m);
  // The baseline column: the majority class (none for BLEU-4: '—') / the pixel nearest neighbour.
  assert.match(table.stdout, /^describe\s+2\/\d+\s+0\s+BLEU-4\s+[\d.]+\s+— \/ [\d.]+$/m);
  assert.match(table.stdout, /^\s+category accuracy\s+[\d.]+%\s+[\d.]+% \/ [\d.]+%$/m);
  assert.match(table.stdout, /^describe: baseline column: majority class \/ pixel nearest neighbour$/m);
});

test('m6 eval: a bad --run, a bad spec, bad flags and nothing to evaluate are one-line errors', async () => {
  const lines = (s: string) => s.trim().split('\n');
  const noRun = await m6(['eval', '--run', join(dir, 'nope'), ...data]);
  assert.equal(noRun.status, 2);
  assert.deepEqual(lines(noRun.stderr), [`m6: --run ${join(dir, 'nope')}: no such folder (expected the --out folder of m6 train)`]);

  const notARun = await m6(['eval', '--run', dir, ...data]);
  assert.equal(notARun.status, 2);
  assert.match(notARun.stderr, /^m6: --run .*: no checkpoint in .*checkpoints \(train first/);
  assert.equal(lines(notARun.stderr).length, 1);

  const noManifest = await m6(['eval', '--run', runDir, '--manifest', join(dir, 'missing.csv'), '--image-col', 'image']);
  assert.equal(noManifest.status, 2);
  assert.deepEqual(lines(noManifest.stderr), [`m6: manifest ${join(dir, 'missing.csv')} does not exist`]);

  const badColumn = await m6(['eval', '--run', runDir, ...data, '--label-col', 'colour_name']);
  assert.equal(badColumn.status, 2);
  assert.match(badColumn.stderr, /^m6: --label-col 'colour_name' is not a column of .*catalog\.jsonl; columns are: 'id', /);
  assert.equal(lines(badColumn.stderr).length, 1);

  const badSpec = await m6(['eval', '--run', runDir, '--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.5']);
  assert.equal(badSpec.status, 2);
  assert.deepEqual(lines(badSpec.stderr), ['m6: split fractions must add up to 1, got 0.5 from \'"train:0.5"\'']);

  const badTask = await m6(['eval', '--run', runDir, ...data, '--tasks', 'describe,sing']);
  assert.equal(badTask.status, 2);
  assert.match(badTask.stderr, /^m6: --tasks: unknown task 'sing'/);
  const badLimit = await m6(['eval', '--run', runDir, ...data, '--limit', '0']);
  assert.equal(badLimit.status, 2);
  assert.deepEqual(lines(badLimit.stderr), ['m6: --limit must be ≥ 1, got \'0\'']);
  const badTopP = await m6(['eval', '--run', runDir, ...data, '--tasks', 'design', '--top-p', '1.5']);
  assert.equal(badTopP.status, 2);
  assert.deepEqual(lines(badTopP.stderr), ['m6: --top-p must be in (0, 1], got \'1.5\'']);

  // No split: no held-out rows, nothing evaluated: exit 1 with the reasons. (The catalog's own
  // dataset.json names a split column, so the manifest is given without it.)
  const nothing = await m6(['eval', '--run', runDir, '--manifest', join(dir, 'catalog', 'catalog.jsonl'), '--image-col', 'image', '--text-col', 'title', '--id-col', 'id', '--tasks', 'describe,answer']);
  assert.equal(nothing.status, 1);
  assert.match(nothing.stderr, /m6: nothing was evaluated: describe: no held-out rows: give the data a test split .*; answer: no held-out rows/);
});

test('m6 eval refuses rows the run trained on (another split of the same data), naming how many; --allow-train-rows labels a training-set evaluation; the record survives --resume', async () => {
  const other = ['--data', join(dir, 'catalog', 'dataset.json'), '--split', 'train:0.3,test:0.7', '--split-seed', '5'];
  const refused = await m6(['eval', '--run', runDir, ...other, '--tasks', 'describe', '--limit', '2']);
  assert.equal(refused.status, 2, refused.stderr);
  const [line, ...rest] = refused.stderr.trim().split('\n');
  assert.deepEqual(rest, []);
  assert.match(line!, /^m6: (\d+) of the (\d+) held-out rows of .*catalog\.jsonl are rows the run trained on \(.*run\/split\.json: \d+ training rows of .*\); .*--allow-train-rows/);
  const [, seen, held] = /(\d+) of the (\d+)/.exec(line!)!;
  assert.ok(Number(seen) > 0 && Number(seen) <= Number(held));

  const allowed = await m6(['eval', '--run', runDir, ...other, '--tasks', 'describe', '--limit', '2', '--allow-train-rows']);
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.match(allowed.stdout, new RegExp(`^TRAINING-SET EVALUATION: ${seen} of the held-out rows were trained on`, 'm'));
  const json = await m6(['eval', '--run', runDir, ...other, '--tasks', 'describe', '--limit', '2', '--allow-train-rows', '--json']);
  assert.equal((JSON.parse(json.stdout) as { trainingRows: number }).trainingRows, Number(seen));

  // Resume with the same data: the recorded split is the same file, and eval still refuses the same rows.
  const before = readFileSync(join(runDir, 'split.json'), 'utf8');
  const resumed = await m6(['train', ...data, '--config', join(dir, 'tiny.json'), '--batch-size', '4', '--vocab', '300', '--workers', '0', '--steps', '4', '--tasks', 'describe,answer', '--out', runDir, '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(readFileSync(join(runDir, 'split.json'), 'utf8'), before);
  const again = await m6(['eval', '--run', runDir, ...other, '--tasks', 'describe', '--limit', '2']);
  assert.equal(again.status, 2);
  assert.match(again.stderr, new RegExp(`^m6: ${seen} of the ${held} held-out rows`));
});
