// The dataset specs under examples/ (the README's "Real datasets" runs) read the real data in
// ../shared/data as intended: paths resolve from the spec file's folder, clothing's describe target
// is its label with a seeded ~80/10/10 train/val/test split by sender (every photo of a sender on one side), and grocery's train and test lists keep their
// own splits. Only the specs are checked here (no images decoded, no training).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { readDataset } from '../../src/data/manifest.js';
import { buildTaskData } from '../../src/tasks/taskData.js';
import { TASKS } from '../../src/tasks/instructions.js';
import { hasSharedData, repoRoot, sharedData } from '../helpers.js';

const skip = hasSharedData ? false : `../shared/data is absent (expected at ${sharedData}); the examples/ specs cannot be read`;

const spec = (name: string) => resolveDatasetSpec(loadDatasetSpecFile(join(repoRoot, 'examples', name)), '/nonexistent-cwd');

test('examples/clothing.json: every row of images.csv, describe target = label, 20 labels, ~80/10/10 train/val/test by sender', { skip }, async () => {
  const s = spec('clothing.json');
  assert.equal(s.manifest, join(sharedData, 'clothing', 'images.csv'), 'relative to the spec file, not the working directory');
  const dataset = await readDataset(s);
  const lines = readFileSync(s.manifest!, 'utf8').split('\n').filter((l) => l.trim() !== '').length;
  assert.equal(dataset.rows.length, lines - 1);
  assert.ok(dataset.rows.every((r) => r.text === r.label && r.imagePath === join(sharedData, 'clothing', 'images', `${r.id}.jpg`)));
  assert.equal(new Set(dataset.rows.map((r) => r.label)).size, 20);
  // Whole senders go to one side, so the shares are lumpy (seed 7: 4,378 / 417 / 608 rows).
  const count = (split: string) => dataset.rows.filter((r) => r.split === split).length;
  assert.equal(count('train') + count('val') + count('test'), dataset.rows.length, 'every row in one of the three');
  assert.ok(count('train') > 0.77 * lines && count('train') < 0.83 * lines, `train rows ${count('train')}`);
  assert.ok(count('val') > 0.06 * lines && count('val') < 0.12 * lines, `val rows ${count('val')}`);
  assert.ok(count('test') > 0.08 * lines && count('test') < 0.12 * lines, `test rows ${count('test')}`);
  // By sender: no sender has photos on both sides (one sent 646; near-duplicates of a garment stay together).
  const senders = new Map<string, Set<string>>();
  const sender = new Map(readFileSync(s.manifest!, 'utf8').split('\n').slice(1).filter((l) => l.trim() !== '').map((l) => [l.split(',')[0]!, l.split(',')[1]!]));
  for (const r of dataset.rows) senders.set(sender.get(r.id)!, (senders.get(sender.get(r.id)!) ?? new Set()).add(r.split!));
  assert.ok([...senders.values()].every((sides) => sides.size === 1), 'a sender on both sides');
  // The split is by sender and seed: the same spec gives the same held-out rows.
  const again = await readDataset(spec('clothing.json'));
  assert.deepEqual(again.rows.map((r) => r.split), dataset.rows.map((r) => r.split));
});

test('examples/grocery-{train,test}.json: the lists as they are, text = class name + product description', { skip }, async () => {
  const train = await buildTaskData(spec('grocery-train.json'), [{ name: 'describe', weight: 1 }]);
  assert.equal(train.train[0]!.examples.length, 2640);
  assert.equal(train.eval[0]!.examples.length, 0, 'the train list holds nothing out');
  const testList = await buildTaskData(spec('grocery-test.json'), [{ name: 'describe', weight: 1 }]);
  assert.deepEqual(testList.train, []);
  const held = testList.heldOutOnly[0]!.examples;
  assert.equal(held.length, 2485, 'the whole test list is held out');
  const apple = held.find((e) => e.id.startsWith('test/Fruit/Apple/Golden-Delicious/'))!;
  assert.equal(apple.source, TASKS.describe.instruction);
  assert.match(apple.target!, /^Golden-Delicious\nGolden Delicious has a white juicy pulp/);
  assert.equal(new Set(testList.rows.map((r) => r.label)).size, 81);
});
