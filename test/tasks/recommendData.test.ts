// The recommend task's data: windows of each shopper's training sequence, the time split that never
// lets a held-out interaction into training, the item vocabulary (catalog rows first, then id-only
// items), titles withheld for held-out catalog rows, and a loader that batches similar lengths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSyntheticCatalog } from '../../src/data/synth/catalog.js';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { buildTaskData, parseTaskList, taskTexts } from '../../src/tasks/taskData.js';
import { RECOMMEND_WINDOW, sequenceWindows } from '../../src/tasks/recommendData.js';
import { MixtureSampler } from '../../src/data/loader.js';
import { specWith, tempDir } from '../data/fixtures.js';

test('windows cover every step of a sequence once, newest window whole', () => {
  assert.deepEqual(sequenceWindows([0, 1, 2], 50).map((w) => [...w]), [[0, 1, 2]]);
  const long = Array.from({ length: 7 }, (_, i) => i);
  // Windows of up to 3 + 1 items ending at 7, 4, and 1 (too short to predict anything: dropped).
  assert.deepEqual(sequenceWindows(long, 3).map((w) => [...w]), [[3, 4, 5, 6], [0, 1, 2, 3]]);
  const predicted = sequenceWindows(long, 3).flatMap((w) => [...w].slice(1));
  assert.deepEqual(predicted.sort(), [1, 2, 3, 4, 5, 6]);
});

test('recommend from the synthetic catalog: held-out interactions never train, and held-out rows lend no titles', async (t) => {
  const dir = tempDir(t, 'm6-recdata-');
  await writeSyntheticCatalog({ out: dir, count: 60, seed: 3, size: 64, shoppers: 20 });
  const spec = resolveDatasetSpec(specWith(join(dir, 'dataset.json'), { split: 'train:0.8,test:0.2' }));
  const data = await buildTaskData(spec, parseTaskList('recommend'));
  const rd = data.recommend!;
  assert.equal(data.train[0]!.name, 'recommend');
  // Every held-out target sits after the shopper's training sequence (the split asserts it too).
  for (const c of [...rd.split.val, ...rd.split.test]) {
    const train = rd.split.train.get(c.user)!;
    assert.deepEqual(c.history.slice(0, train.length), train);
    assert.ok(c.history.length >= train.length);
  }
  const trained = new Set<string>();
  for (const e of data.train[0]!.examples) for (const i of e.items!) trained.add(`${e.id.split('#')[0]}:${rd.items.vocabulary.ids[i]}`);
  for (const c of rd.split.test) {
    const seq = rd.split.train.get(c.user)!;
    if (!seq.includes(c.target)) assert.ok(!trained.has(`${c.user}:${c.target}`), `${c.user}'s test item ${c.target} was trained on`);
  }
  assert.ok(data.train[0]!.examples.every((e) => e.items!.length >= 2 && e.items!.length <= RECOMMEND_WINDOW + 1));
  // Catalog items come first and keep their titles, except the held-out rows'.
  assert.equal(rd.items.vocabulary.ids[0], 'p000001');
  const heldOut = data.rows.filter((r) => r.split === 'test').map((r) => rd.items.vocabulary.index(r.id)!);
  assert.ok(heldOut.length > 0);
  for (const i of heldOut) assert.equal(rd.items.titles[i], undefined);
  // (Titles repeat across products: only a title no training row has would be a leak.)
  const texts = new Set(taskTexts(data));
  const trainTitles = new Set(data.rows.filter((x) => x.split !== 'test').map((x) => x.caption));
  const unique = data.rows.filter((x) => x.split === 'test' && !trainTitles.has(x.caption));
  assert.ok(unique.length > 0);
  for (const r of unique) assert.ok(!texts.has(r.caption!), `held-out title '${r.caption}' reached the tokenizer`);
  // Warm = occurs in a training sequence.
  const warm = new Set([...rd.split.train.values()].flat().map((id) => rd.items.vocabulary.index(id)!));
  rd.items.warm.forEach((w, i) => assert.equal(w === 1, warm.has(i)));
});

test('interactions only (no catalog): items known by id; a spec without interactions skips recommend with the reason', async (t) => {
  const dir = tempDir(t, 'm6-recdata2-');
  const lines = ['u1 a b c d', 'u2 b c e', 'u3 a c d e f', 'u4 x'];
  writeFileSync(join(dir, 'seq.txt'), lines.join('\n') + '\n');
  const data = await buildTaskData(resolveDatasetSpec({ interactions: join(dir, 'seq.txt') }), parseTaskList('recommend'));
  const rd = data.recommend!;
  assert.deepEqual(rd.items.vocabulary.ids, ['a', 'b', 'c', 'd', 'e', 'f', 'x']);
  assert.ok(rd.items.titles.every((x) => x === undefined));
  assert.deepEqual(rd.split.test.map((c) => [c.user, c.target]), [['u1', 'd'], ['u2', 'e'], ['u3', 'f']]);
  await writeSyntheticCatalog({ out: join(dir, 'cat'), count: 10, seed: 1, size: 64 });
  const plain = resolveDatasetSpec({ manifest: join(dir, 'cat', 'catalog.jsonl'), imageCol: 'image', textCol: 'title', idCol: 'id' });
  const none = await buildTaskData(plain, parseTaskList('recommend'));
  assert.equal(none.train.length, 0);
  assert.match(none.skipped.join('\n'), /recommend: skipped: the dataset names no interactions file/);
});

test('histories are drawn in runs of similar length, deterministically', () => {
  const lengths = Array.from({ length: 512 }, (_, i) => 2 + ((i * 37) % 50));
  const sampler = () => new MixtureSampler([512], [1], 7, { lengths: [lengths], run: 16 });
  const a = sampler(), b = sampler();
  let spread = 0;
  for (let batch = 0; batch < 32; batch++) {
    const picks = Array.from({ length: 16 }, () => a.nextOf(0).example);
    assert.deepEqual(picks, Array.from({ length: 16 }, () => b.nextOf(0).example));
    const ls = picks.map((i) => lengths[i]!);
    spread += Math.max(...ls) - Math.min(...ls);
  }
  // Random batches of 16 from lengths 2..51 would span ~45 on average; runs span a few.
  assert.ok(spread / 32 < 6, `mean length spread in a batch ${spread / 32}`);
});
