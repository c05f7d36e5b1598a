// The split a run records: written when training starts, read back as a membership test of row ids,
// damage detected, and extended (never shrunk) when a resumed run reads data that splits otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import type { DataRow } from '../../src/data/manifest.js';
import { extendRunSplit, readRunSplit, SPLIT_FILE, TRAIN_IDS_FILE, writeRunSplit } from '../../src/train/runSplit.js';
import { tempDir } from '../data/fixtures.js';

const rows = (n: number, testEvery = 4): DataRow[] => Array.from({ length: n }, (_v, i) => ({ id: `p${i}`, source: 'm.csv', row: i + 1, split: i % testEvery === 0 ? 'test' : 'train' }));

test('writeRunSplit → readRunSplit: exactly the training ids are "trained on"; the rule and the tokenizer are recorded', (t) => {
  const dir = tempDir(t, 'm6-split-');
  const spec = resolveDatasetSpec({ manifest: join(dir, 'm.csv'), split: 'train:0.75,test:0.25', splitSeed: 9 }, dir);
  const all = rows(1000);
  const written = writeRunSplit(dir, spec, all, { texts: 3, digest: 'abc' });
  assert.equal(written.trainRows, 750);
  assert.equal(written.heldOutRows, 250);
  assert.deepEqual(written.rule, { split: [{ name: 'train', fraction: 0.75 }, { name: 'test', fraction: 0.25 }], splitSeed: 9 });
  const back = readRunSplit(dir)!;
  assert.deepEqual(back.split, written);
  for (const r of all) assert.equal(back.trainedOn(r.id), r.split === 'train', r.id);
  assert.equal(back.trainedOn('not-a-row'), false);
  assert.equal(readRunSplit(join(dir, 'elsewhere')), undefined, 'a run without a record');
});

test('a damaged record is an error naming the file; a resumed run on other data adds its new training rows', (t) => {
  const dir = tempDir(t, 'm6-split-');
  const spec = resolveDatasetSpec({ manifest: join(dir, 'm.csv') }, dir);
  writeRunSplit(dir, spec, rows(40), { file: 'tok.json' });
  const more = [...rows(40), { id: 'new-1', source: 'm.csv', row: 41, split: 'train' }, { id: 'new-2', source: 'm.csv', row: 42, split: 'test' }];
  assert.equal(extendRunSplit(dir, readRunSplit(dir)!, more), 1);
  const back = readRunSplit(dir)!;
  assert.equal(back.split.trainRows, 31);
  assert.ok(back.trainedOn('new-1') && !back.trainedOn('new-2') && back.trainedOn('p1'));
  assert.equal(extendRunSplit(dir, back, rows(10)), 0, 'fewer rows never shrink the record');
  const ids = readFileSync(join(dir, TRAIN_IDS_FILE));
  ids[3] = ids[3]! ^ 0xff;
  writeFileSync(join(dir, TRAIN_IDS_FILE), ids);
  assert.throws(() => readRunSplit(dir), /train-ids\.bin does not match the digest in .*split\.json/);
  writeFileSync(join(dir, SPLIT_FILE), '{');
  assert.throws(() => readRunSplit(dir), /split\.json is not valid JSON/);
  writeFileSync(join(dir, SPLIT_FILE), 'null');
  assert.throws(() => readRunSplit(dir), /split\.json: expected a version-1 split record with trainRows and trainIdsDigest, got null/);
});
