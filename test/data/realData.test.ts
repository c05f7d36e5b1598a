// The real datasets in ../shared/data (see its README): each read through the same dataset spec a
// user would write, counts checked against the files themselves, every image decoded or reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { inspectDataset, type InspectReport } from '../../src/data/inspect.js';
import { readDataset } from '../../src/data/manifest.js';
import { hasSharedData, sharedData } from '../helpers.js';

const skip = hasSharedData ? false : `../shared/data is absent (expected at ${sharedData}); real-data tests skipped`;

/** Non-empty lines of a text file: the record count of a file without quoted newlines. */
function nonEmptyLines(file: string): number {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').length;
}

/** Every row is usable, or reported with a reason; every image either decoded or was reported. */
function assertAccountedFor(report: InspectReport): void {
  assert.equal(report.usableRows + report.badRows.total, report.rows, 'usable + bad = rows');
  assert.equal(report.imagesDecoded, report.usableRows, 'each usable row has a decoded image');
}

test('clothing/ through its CSV: 5,403 rows, every image decoded or reported, 20 labels', { skip }, async () => {
  const root = join(sharedData, 'clothing');
  const spec = resolveDatasetSpec({ manifest: join(root, 'images.csv'), imageRoot: join(root, 'images'), imageCol: 'image', imageExt: '.jpg', labelCol: 'label', split: 'train:0.9,test:0.1' });
  const report = await inspectDataset(spec);
  assert.equal(report.rows, nonEmptyLines(join(root, 'images.csv')) - 1);
  assert.deepEqual(report.columns, ['image', 'sender_id', 'label', 'kids']);
  assertAccountedFor(report);
  assert.equal(report.imagesChecked, report.rows);
  // Whatever was not decoded must really be unusable: check the files behind the missing ones.
  for (const b of report.badRows.byReason) {
    assert.ok(['missing file', 'truncated image', 'not an image', 'empty file', 'unreadable image'].includes(b.reason), b.reason);
    if (b.reason === 'missing file') for (const f of b.examples) assert.ok(!existsSync(join(root, 'images', f)), f);
  }
  assert.equal(report.labels?.length, 20);
  assert.ok(report.labels?.some((l) => l.label === 'Not sure'));
  assert.ok(report.imageWidth!.max <= 160 && report.imageHeight!.max <= 160);
  const test = report.splits!.find((s) => s.split === 'test')!.count;
  assert.ok(test > report.usableRows * 0.07 && test < report.usableRows * 0.13, `test split ${test}`);
});

test('grocery/ through its header-less lists + classes.csv: names, descriptions, counts', { skip }, async () => {
  const root = join(sharedData, 'grocery', 'dataset');
  const classes = readFileSync(join(root, 'classes.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  const names = new Set(classes.map((c) => c[0]!));
  assert.equal(names.size, 81);
  const labels = new Set<string>();
  for (const part of ['train', 'val', 'test']) {
    const spec = resolveDatasetSpec({
      manifest: join(root, `${part}.txt`),
      columns: 'image,fine,coarse',
      imageCol: 'image',
      join: join(root, 'classes.csv'),
      joinOn: 'fine=Class ID (int)',
      labelCol: 'Class Name (str)',
      textFileCol: 'Product Description Path (str)',
    });
    const report = await inspectDataset(spec);
    assert.equal(report.rows, nonEmptyLines(join(root, `${part}.txt`)), part);
    assertAccountedFor(report);
    for (const l of report.labels ?? []) {
      assert.ok(names.has(l.label), `${part}: label '${l.label}' is a class name`);
      labels.add(l.label);
    }
    const dataset = await readDataset(spec);
    const apple = dataset.rows.find((r) => r.label === 'Golden-Delicious');
    assert.ok(apple?.text?.includes('Golden Delicious'), 'the product description is the text');
    assert.ok(dataset.rows.every((r) => (r.text ?? '').length > 20));
  }
  assert.equal(labels.size, 81);
});

test('product-qa/ as text-only TSV: every file\'s rows, with question and answer as text', { skip }, async () => {
  const root = join(sharedData, 'product-qa');
  const files: Array<[string, string]> = [
    ['hetPQA/answer_generation/train.csv', 'question,answer'],
    ['hetPQA/answer_generation/dev.csv', 'question,answer'],
    ['hetPQA/answer_generation/test.csv', 'question,answer'],
    ['semiPQA/data-to-text/train.csv', 'data,text'],
    ['semiPQA/data-to-text/dev.csv', 'data,text'],
    ['semiPQA/data-to-text/test_seen.csv', 'data,text'],
    ['semiPQA/data-to-text/test_unseen.csv', 'data,text'],
  ];
  for (const [file, textCol] of files) {
    const spec = resolveDatasetSpec({ manifest: join(root, file), textCol });
    const dataset = await readDataset(spec);
    assert.equal(dataset.totalRows, nonEmptyLines(join(root, file)) - 1, file);
    assert.equal(dataset.rows.length + dataset.bad.total, dataset.totalRows, file);
    assert.ok(dataset.rows.length >= dataset.totalRows * 0.99, `${file}: ${dataset.bad.total} bad rows`);
    assert.ok(dataset.rows.every((r) => r.text !== undefined && r.imagePath === undefined));
  }
  const het = await readDataset(resolveDatasetSpec({ manifest: join(root, 'hetPQA/answer_generation/test.csv'), textCol: 'question,candidate,answer', labelCol: 'source' }));
  // A quoted field with a doubled quote: the file has `"two 9.84\"" square…"`, the text `two 9.84\" square…`.
  assert.ok(het.rows.some((r) => r.text!.includes('two 9.84\\" square green plates')));
});
