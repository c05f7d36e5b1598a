// `m6 train --tasks …,recommend`, `m6 eval --tasks recommend` and `m6 recommend` as a user runs them,
// on a tiny synthetic catalog with shoppers and outfits: the figures come with their baselines and
// say they are full-ranking; recommendations leave the history out, honour a filter that keeps
// few items, and complements are of other categories; unknown users and items are clear errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { m6, writeTinyConfig } from '../data/fixtures.js';

let dir = '';
let run = '';
let data: string[] = [];
interface Hit { id: string; score: number; title: string; label: string }

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'm6-recommend-cli-'));
  const synth = await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '60', '--seed', '4', '--size', '64', '--shoppers', '12']);
  assert.equal(synth.status, 0, synth.stderr);
  writeTinyConfig(join(dir, 'tiny.json'));
  data = ['--data', join(dir, 'catalog', 'dataset.json')];
  run = join(dir, 'run');
  const trained = await m6(['train', ...data, '--config', join(dir, 'tiny.json'), '--batch-size', '4', '--vocab', '300', '--workers', '0', '--steps', '3', '--tasks', 'embed,recommend', '--out', run]);
  assert.equal(trained.status, 0, trained.stderr);
  assert.match(trained.stderr, /recommend \(\d+ train, 12 val, 0 test held out/);
  const built = await m6(['index', 'build', '--run', run, ...data, '--out', join(dir, 'index'), '--store', 'exact']);
  assert.equal(built.status, 0, built.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('m6 eval --tasks recommend: full ranking beside popularity and co-occurrence, on test or val', async () => {
  const r = await m6(['eval', '--run', run, ...data, '--tasks', 'recommend', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { tasks: Array<{ task: string; evaluated: number; metrics: Record<string, number>; baselines: Record<string, number>; moreBaselines: Array<{ name: string; values: Record<string, number> }>; notes: string[] }> };
  const t = report.tasks[0]!;
  assert.equal(t.task, 'recommend');
  assert.equal(t.evaluated, 12);
  for (const key of ['hr5', 'hr10', 'hr20', 'ndcg5', 'ndcg10', 'ndcg20']) {
    assert.ok(t.metrics[key]! >= 0 && t.metrics[key]! <= 1, key);
    assert.ok(key in t.baselines && key in t.moreBaselines[0]!.values, key);
  }
  assert.ok(t.metrics.ndcg10! <= t.metrics.hr10!);
  assert.equal(t.moreBaselines[0]!.name, 'co-occurrence');
  assert.match(t.notes.join('\n'), /full ranking: each test target is ranked among all 60 items/);
  const val = await m6(['eval', '--run', run, ...data, '--tasks', 'recommend', '--holdout', 'val']);
  assert.equal(val.status, 0, val.stderr);
  assert.match(val.stdout, /NDCG@10 +\d\.\d{4} +\d\.\d{4} \/ \d\.\d{4}/);
  assert.match(val.stdout, /each val target is ranked/);
  const bad = await m6(['eval', '--run', run, ...data, '--tasks', 'recommend', '--holdout', 'future']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--holdout must be val or test/);
});

test('m6 recommend: a shopper, a session, items like one, complements, filters and clear errors', async () => {
  const index = join(dir, 'index');
  const events = readFileSync(join(dir, 'catalog', 'interactions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { shopper: string; item: string });
  const seen = new Set(events.filter((e) => e.shopper === 'u00001').map((e) => e.item));
  const user = await m6(['recommend', '--index', index, ...data, '--user', 'u00001', '--k', '5', '--json']);
  assert.equal(user.status, 0, user.stderr);
  const hits = JSON.parse(user.stdout) as Hit[];
  assert.equal(hits.length, 5);
  assert.ok(hits.every((h) => !seen.has(h.id)), 'already-seen items are left out');
  assert.ok(hits.every((h, i) => i === 0 || hits[i - 1]!.score >= h.score));
  assert.ok(hits.every((h) => h.title.length > 0), 'titles come from the index');
  // A filter that keeps one category still fills k (the ranking is read further down).
  const where = await m6(['recommend', '--index', index, '--history', 'p000001,p000002', '--where', "label = 'hat'", '--k', '3', '--json']);
  assert.equal(where.status, 0, where.stderr);
  const hats = JSON.parse(where.stdout) as Hit[];
  const catalog = readFileSync(join(dir, 'catalog', 'catalog.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; category: string });
  assert.equal(hats.length, Math.min(3, catalog.filter((p) => p.category === 'hat').length));
  assert.ok(hats.every((h) => h.label === 'hat'));
  const similar = await m6(['recommend', '--run', run, '--similar', 'p000003', '--k', '4', '--json']);
  assert.equal(similar.status, 0, similar.stderr);
  assert.ok((JSON.parse(similar.stdout) as Hit[]).every((h) => h.id !== 'p000003'));
  // Without an index, the data's manifest labels the results (no titles: those are the index's).
  const labelled = await m6(['recommend', '--run', run, ...data, '--similar', 'p000003', '--k', '4', '--json']);
  assert.equal(labelled.status, 0, labelled.stderr);
  const category = new Map(catalog.map((p) => [p.id, p.category]));
  const lh = JSON.parse(labelled.stdout) as Hit[];
  assert.deepEqual(lh.map((h) => h.label), lh.map((h) => category.get(h.id)), labelled.stdout);
  const complement = await m6(['recommend', '--index', index, ...data, '--complement', 'p000003', '--k', '6', '--json']);
  assert.equal(complement.status, 0, complement.stderr);
  const own = catalog.find((p) => p.id === 'p000003')!.category;
  const comps = JSON.parse(complement.stdout) as Hit[];
  assert.equal(comps.length, 6);
  assert.ok(comps.every((h) => h.label !== own), `complements of a ${own} are other categories: ${comps.map((h) => h.label).join(', ')}`);
  for (const [args, message] of [
    [['--user', 'nobody', ...data], /unknown user 'nobody'/],
    [['--similar', 'p999999'], /unknown item 'p999999'/],
    [['--history', 'p000001', '--where', "label = 'hat'"], /a filter needs the catalog index/],
    [['--history', 'p000001', '--similar', 'p000002'], /give exactly one of --user/],
  ] as const) {
    const r = await m6(['recommend', '--run', run, ...args]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, message);
  }
});
