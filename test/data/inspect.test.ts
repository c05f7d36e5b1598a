import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { formatInspectReport, inspectDataset, mapConcurrent, percentiles } from '../../src/data/inspect.js';
import { tempDir, writeSolidImage } from './fixtures.js';

test('percentiles of a list', () => {
  const p = percentiles(Array.from({ length: 100 }, (_v, i) => 100 - i))!;
  assert.deepEqual(p, { min: 1, p5: 6, p50: 51, p95: 96, max: 100 });
  assert.equal(percentiles([]), undefined);
});

test('mapConcurrent keeps order and bounds concurrency', async () => {
  let active = 0;
  let peak = 0;
  const out = await mapConcurrent([5, 1, 4, 2, 3], 2, async (x) => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((r) => setTimeout(r, x));
    active--;
    return x * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30]);
  assert.equal(peak, 2);
});

/** A small catalog with one bad row of each kind an image can have. */
async function messyCatalog(dir: string): Promise<void> {
  await writeSolidImage(join(dir, 'a.jpg'), { width: 100, height: 50 });
  await writeSolidImage(join(dir, 'b.png'), { width: 40, height: 80, format: 'png' });
  await writeSolidImage(join(dir, 'c.webp'), { width: 60, height: 60, format: 'webp' });
  writeFileSync(join(dir, 'empty.jpg'), '');
  writeFileSync(join(dir, 'text.jpg'), 'hello');
  const raw = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31) % 256;
  const jpg = await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
  writeFileSync(join(dir, 'cut.jpg'), jpg.subarray(0, jpg.length >> 1));
  writeFileSync(
    join(dir, 'items.csv'),
    [
      'image,title,label',
      'a.jpg,Red hat,hat',
      'b.png,Red scarf,scarf',
      'c.webp,Red hat two,hat',
      'missing.jpg,Gone,hat',
      'empty.jpg,Empty,hat',
      'text.jpg,Text,hat',
      'cut.jpg,Cut,hat',
      '../../etc/passwd,Escape,hat',
      'a.jpg,,hat',
    ].join('\n'),
  );
}

test('inspect counts rows, usable rows, decoded images and bad rows by reason', async (t) => {
  const dir = tempDir(t);
  await messyCatalog(dir);
  const report = await inspectDataset(resolveDatasetSpec({ manifest: 'items.csv', imageCol: 'image', textCol: 'title', labelCol: 'label' }, dir));
  assert.equal(report.rows, 9);
  assert.equal(report.usableRows, 3);
  assert.equal(report.imagesChecked, 7);
  assert.equal(report.imagesDecoded, 3);
  const byReason = Object.fromEntries(report.badRows.byReason.map((b) => [b.reason, b.examples]));
  assert.deepEqual(byReason, {
    'empty file': ['empty.jpg'],
    'empty text': ['items.csv:10'],
    'missing file': ['missing.jpg'],
    'not an image': ['text.jpg'],
    'path escapes root': ['items.csv:9'],
    'truncated image': ['cut.jpg'],
  });
  assert.deepEqual(report.labels, [{ label: 'hat', count: 2 }, { label: 'scarf', count: 1 }]);
  assert.deepEqual(report.imageWidth, { min: 40, p5: 40, p50: 60, p95: 100, max: 100 });
  assert.deepEqual(report.imageFormats, { jpeg: 1, png: 1, webp: 1 });
  assert.equal(report.textLength?.max, 11);
  assert.ok(report.usable);
  const text = formatInspectReport(report);
  assert.match(text, /usable rows\s+3 \(33\.3%\)/);
  assert.match(text, /truncated image\s+1\s+e\.g\. cut\.jpg/);
  assert.match(text, /labels\s+2: hat 2, scarf 1/);
});

test('a dataset with no usable row is reported as not usable', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'items.csv'), 'image\nnope1.jpg\nnope2.jpg\n');
  const report = await inspectDataset(resolveDatasetSpec({ manifest: 'items.csv', imageCol: 'image' }, dir));
  assert.equal(report.usable, false);
  assert.equal(report.badRows.byReason[0]!.count, 2);
  assert.match(formatInspectReport(report), /usable\s+no/);
  assert.ok(readFileSync(join(dir, 'items.csv')).length > 0);
});
