// The dataset flags over a spec file: a split rule from the flags replaces the file's, of either kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { datasetSpecFromFlags } from '../../src/cli/datasetOptions.js';
import { tempDir } from '../data/fixtures.js';

test('--split over a spec file with a split column replaces it, and --split-col replaces a file\'s --split', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'rows.csv'), 'id,image,split\na,a.png,train\n');
  writeFileSync(join(dir, 'col.json'), JSON.stringify({ manifest: 'rows.csv', imageCol: 'image', idCol: 'id', splitCol: 'split' }));
  writeFileSync(join(dir, 'frac.json'), JSON.stringify({ manifest: 'rows.csv', imageCol: 'image', idCol: 'id', split: 'train:0.5,test:0.5' }));
  assert.equal(datasetSpecFromFlags({ data: join(dir, 'col.json') }).splitCol, 'split');
  const bySplit = datasetSpecFromFlags({ data: join(dir, 'col.json'), split: 'train:0.8,val:0.1,test:0.1' });
  assert.equal(bySplit.splitCol, undefined);
  assert.deepEqual(bySplit.split?.map((s) => s.name), ['train', 'val', 'test']);
  const byCol = datasetSpecFromFlags({ data: join(dir, 'frac.json'), splitCol: 'split' });
  assert.equal(byCol.split, undefined);
  assert.equal(byCol.splitCol, 'split');
  // Both in the flags is still the user's contradiction.
  assert.throws(() => datasetSpecFromFlags({ data: join(dir, 'col.json'), split: 'train:0.9,test:0.1', splitCol: 'split' }), /either --split-col NAME or --split/);
});
