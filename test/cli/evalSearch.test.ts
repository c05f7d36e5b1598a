// `m6 eval --tasks search` as a user runs it, on a tiny run trained with embed on the synthetic
// catalog's own split: the held-out rows indexed in a temp folder (LanceDB), every held-out title
// searched against their images, recall@1/5/10 and nDCG@10 beside a random ranking, the ANN index's
// recall against the exact store; the same figures from an index the user built of those rows
// (`--index`), and an index holding other rows refused with the counts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { m6, writeTinyConfig } from '../data/fixtures.js';

let dir = '';
let run = '';
let spec = '';
let testIds: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-eval-search-cli-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '80', '--seed', '5', '--size', '64']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'));
  spec = join(dir, 'catalog', 'dataset.json');
  const lines = readFileSync(join(dir, 'catalog', 'catalog.jsonl'), 'utf8').trim().split('\n');
  const test = lines.filter((l) => (JSON.parse(l) as { split: string }).split === 'test');
  testIds = test.map((l) => (JSON.parse(l) as { id: string }).id);
  // The held-out rows alone, as a catalog of their own: what `--index` must have been built from.
  writeFileSync(join(dir, 'test.jsonl'), test.join('\n') + '\n');
  const base = JSON.parse(readFileSync(spec, 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'test.json'), JSON.stringify({ ...base, manifest: join(dir, 'test.jsonl'), imageRoot: join(dir, 'catalog') }));
  run = join(dir, 'run');
  const trained = await m6(['train', '--data', spec, '--config', join(dir, 'tiny.json'), '--batch-size', '4', '--vocab', '300', '--workers', '0', '--steps', '3', '--tasks', 'describe,embed', '--out', run]);
  assert.equal(trained.status, 0, trained.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface SearchTask { task: string; evaluated: number; metrics: Record<string, number>; baselines: Record<string, number>; notes: string[] }

async function evalSearch(extra: string[] = []): Promise<SearchTask> {
  const r = await m6(['eval', '--run', run, '--data', spec, '--tasks', 'search', '--json', ...extra]);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { tasks: SearchTask[] };
  assert.equal(report.tasks.length, 1);
  return report.tasks[0]!;
}

test('m6 eval --tasks search: recall@1/5/10 and nDCG@10 of held-out titles over their images, chance beside, ANN against exact', async () => {
  assert.ok(testIds.length > 10, `the fixture has more held-out rows than k (${testIds.length})`);
  const t = await evalSearch();
  assert.equal(t.task, 'search');
  assert.equal(t.evaluated, testIds.length);
  const m = t.metrics, b = t.baselines;
  for (const key of ['textToImageRecall1', 'textToImageRecall5', 'textToImageRecall10', 'ndcg10']) {
    assert.ok(m[key]! >= 0 && m[key]! <= 1, `${key} = ${m[key]}`);
    assert.ok(b[key]! > 0 && b[key]! < 1, `chance ${key} = ${b[key]}`);
  }
  assert.ok(m.textToImageRecall1! <= m.textToImageRecall5! && m.textToImageRecall5! <= m.textToImageRecall10!);
  assert.ok(m.ndcg10! >= m.textToImageRecall1! - 1e-9, 'a hit at rank 1 scores nDCG 1 for a single relevant item');
  // With ~n/4 partitions and 10 probed, the forced IVF_FLAT index probes every partition here: it must agree with the exact store.
  assert.equal(m.annRecallAt10, 1);
  assert.ok(t.notes.some((n) => /IVF_FLAT index forced on the same vectors .*below the ANN threshold/.test(n)), t.notes.join('\n'));

  // The table names the figures.
  const table = await m6(['eval', '--run', run, '--data', spec, '--tasks', 'search']);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /search\s+\d+\/\d+\s+0\s+text→image recall@1/);
  assert.match(table.stdout, /NDCG@10/);
  assert.match(table.stdout, /ANN recall@10 vs exact\s+100\.0%/);

  // An index the user built of exactly those rows gives the same ranking.
  const index = join(dir, 'test-index');
  const built = await m6(['index', 'build', '--run', run, '--data', join(dir, 'test.json'), '--out', index]);
  assert.equal(built.status, 0, built.stderr);
  const given = await evalSearch(['--index', index]);
  for (const key of ['textToImageRecall1', 'textToImageRecall5', 'textToImageRecall10', 'ndcg10']) assert.equal(given.metrics[key], m[key], key);

  // An index of the whole catalog is another gallery: refused, saying what it holds.
  const whole = join(dir, 'whole-index');
  assert.equal((await m6(['index', 'build', '--run', run, '--data', spec, '--out', whole])).status, 0);
  const refused = await m6(['eval', '--run', run, '--data', spec, '--tasks', 'search', '--index', whole]);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, new RegExp(`holds 80 rows, of which ${testIds.length} are the ${testIds.length} held-out rows judged \\(0 missing, ${80 - testIds.length} others\\)`));
  assert.doesNotMatch(refused.stderr, /\n\s+at /, 'one line, no stack');
});
