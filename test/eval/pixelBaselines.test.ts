// The pixel baselines on tiny known inputs: solid-colour PNGs whose distances are worked out by hand;
// on the synthetic catalog's products (the demo) and on any labelled rows (m6 eval's describe).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { corpusNote, loadPixelCorpus, nearestImages, nearestNeighbourCopies, pixelSearchBaseline, productsForTitle, type PixelRow } from '../../src/eval/pixelBaselines.js';
import { catalogPixelRows, nearestNeighbourDescribe, type CatalogItem } from '../../src/eval/syntheticEval.js';
import { evaluateDescribe, type DescribeEvaluation } from '../../src/eval/describeEval.js';
import { sampleExamples, type EvalContext } from '../../src/eval/evaluation.js';
import type { DataRow } from '../../src/data/manifest.js';
import type { DatasetSpec } from '../../src/data/datasetSpec.js';
import type { Pipeline } from '../../src/pipelines/index.js';
import type { TaskData } from '../../src/tasks/taskData.js';
import { TASKS } from '../../src/tasks/instructions.js';
import { tempDir, writeSolidImage } from '../data/fixtures.js';

type Rgb = [number, number, number];
const RED: Rgb = [220, 30, 30], DARK_RED: Rgb = [180, 20, 20], BLUE: Rgb = [30, 30, 220], GREEN: Rgb = [30, 200, 30], YELLOW: Rgb = [230, 200, 40];

async function product(dir: string, id: string, rgb: Rgb | null, a: { category: string; colour: string; title: string }): Promise<CatalogItem> {
  // null: no image file (a product whose image cannot be read).
  if (rgb !== null) await writeSolidImage(join(dir, `${id}.png`), { width: 32, height: 32, rgb, format: 'png' });
  return { id, image: `${id}.png`, ...a, description: `A ${a.colour} ${a.category}.`, qa: [] };
}

test('nearestImages: squared distance on the bytes; a tie goes to the first', () => {
  const a = Uint8Array.from([10, 10, 10]), b = Uint8Array.from([200, 0, 0]), c = Uint8Array.from([12, 9, 10]);
  assert.deepEqual(nearestImages([b, a, a], [c, b, a]), [1, 0, 1]);
  assert.deepEqual(nearestImages([a], []), []);
  assert.throws(() => nearestImages([], [a]), /empty corpus/);
});

test('productsForTitle: the exact title (case and punctuation aside), else the most words in common, else all', () => {
  const titles = ['Red Dress', 'red dress', 'Blue Hat', 'Green Boots'];
  assert.deepEqual(productsForTitle('RED dress.', titles), { indices: [0, 1], exact: true });
  assert.deepEqual(productsForTitle('Green Dress', titles), { indices: [0, 1, 3], exact: false });
  assert.deepEqual(productsForTitle('Blue Boots Hat', titles), { indices: [2], exact: false });
  assert.deepEqual(productsForTitle('Yellow Scarf', titles), { indices: [0, 1, 2, 3], exact: false });
});

test('nearest-neighbour describe: the nearest training product\'s caption, judged like the model\'s', async (t) => {
  const dir = tempDir(t, 'm6-pixels-');
  const train = await loadPixelCorpus(catalogPixelRows([
    await product(dir, 't0', RED, { category: 'dress', colour: 'red', title: 'Red Dress' }),
    await product(dir, 't1', BLUE, { category: 'hat', colour: 'blue', title: 'Blue Hat' }),
    await product(dir, 't2', GREEN, { category: 'boot', colour: 'green', title: 'Green Boots' }),
  ], dir));
  assert.equal(train.rows.length, 3);
  const r = await nearestNeighbourDescribe(train, [
    await product(dir, 'h0', [200, 40, 40], { category: 'skirt', colour: 'red', title: 'Red Skirt' }),   // → t0: colour right, category wrong
    await product(dir, 'h1', [40, 40, 200], { category: 'hat', colour: 'blue', title: 'Blue Hat' }),     // → t1: both right
    await product(dir, 'h2', [60, 190, 50], { category: 'boot', colour: 'green', title: 'Green Boots' }), // → t2: both right
    await product(dir, 'h3', null, { category: 'hat', colour: 'red', title: 'Red Hat' }),                // unreadable: left out
  ], dir);
  assert.equal(r.items, 3);
  assert.equal(r.failed, 1);
  assert.equal(r.categoryAccuracy, 2 / 3);
  assert.equal(r.colourAccuracy, 1);
  assert.deepEqual(r.examples.map((e) => e.nearest), ['t0', 't1', 't2']);
  assert.equal(r.examples[0]!.caption, 'Red Dress A red dress.');
  assert.ok(r.ciderD > 0);
});

test('pixel search: a title\'s training products give a mean thumbnail; the gallery is ranked by distance to it', async (t) => {
  const dir = tempDir(t, 'm6-pixels-');
  const train = await loadPixelCorpus(catalogPixelRows([
    await product(dir, 't0', RED, { category: 'dress', colour: 'red', title: 'Red Dress' }),
    await product(dir, 't1', DARK_RED, { category: 'dress', colour: 'red', title: 'Red Dress' }),
    await product(dir, 't2', BLUE, { category: 'hat', colour: 'blue', title: 'Blue Hat' }),
    await product(dir, 't3', GREEN, { category: 'boot', colour: 'green', title: 'Green Boots' }),
  ], dir));
  const gallery = [];
  for (const [id, rgb, text] of [['g0', [200, 25, 25], 'Red Dress'], ['g1', BLUE, 'Blue Hat'], ['g2', GREEN, 'Green Dress'], ['g3', YELLOW, 'Yellow Scarf']] as const) {
    await writeSolidImage(join(dir, `${id}.png`), { width: 32, height: 32, rgb: [...rgb], format: 'png' });
    gallery.push({ id, image: join(dir, `${id}.png`), text, group: id });
  }
  gallery.push({ id: 'g4', image: join(dir, 'missing.png'), text: 'Red Dress', group: 'g4' });
  // g0: the mean of t0, t1 is nearest g0 (rank 1). g1: t2 = g1 exactly (rank 1).
  // g2 "Green Dress": one word in common with t0, t1 and t3; their mean (143.3, 83.3, 26.7) is nearest
  // red (6,617), then yellow (21,300), then green (26,466): rank 3.
  // g3 "Yellow Scarf": no word in common, the mean of all four (115, 70, 75): yellow is the farthest: rank 4.
  const r = await pixelSearchBaseline(train, gallery, { ks: [1, 2, 3, 4] });
  assert.equal(r.items, 4);
  assert.equal(r.failed, 1);
  assert.deepEqual(r.textToImage, { 'recall@1': 0.5, 'recall@2': 0.5, 'recall@3': 0.75, 'recall@4': 1 });
  assert.deepEqual(r.chanceTextToImage, { 'recall@1': 0.25, 'recall@2': 0.5, 'recall@3': 0.75, 'recall@4': 1 });
  // Image→text, the same distances read by image: g0 and g1 are their caption's mean exactly (rank 1).
  // Image g2 (green) is nearer the mean of all (26,150) than its own caption's mean (26,466): rank 2.
  // Image g3 (yellow) is nearest "Green Dress"'s mean (21,300), then its own, the mean of all (31,350): rank 2.
  assert.deepEqual(r.imageToText, { 'recall@1': 0.5, 'recall@2': 1, 'recall@3': 1, 'recall@4': 1 });
  assert.equal(r.exactTitles, 0.5);
});

test('nearestImages: queries past one distance matrix\'s worth come out the same as one at a time', () => {
  const corpus = [Uint8Array.from([0, 0, 0]), Uint8Array.from([100, 100, 100]), Uint8Array.from([255, 255, 255])];
  const queries = Array.from({ length: 2500 }, (_v, i) => Uint8Array.from([i % 256, i % 256, i % 256]));
  const want = queries.map((q) => (q[0]! <= 50 ? 0 : q[0]! <= 177 ? 1 : 2));   // half way between the corpus's greys: 50 (a tie: the first) and 177.5
  assert.deepEqual(nearestImages(corpus, queries), want);
});

async function rows(dir: string, list: ReadonlyArray<readonly [string, Rgb | null, string]>): Promise<PixelRow[]> {
  const out: PixelRow[] = [];
  for (const [id, rgb, text] of list) {
    if (rgb !== null) await writeSolidImage(join(dir, `${id}.png`), { width: 32, height: 32, rgb: [...rgb], format: 'png' });
    out.push({ id, image: join(dir, `${id}.png`), text });
  }
  return out;
}

test('loadPixelCorpus: at most `limit` rows, a seeded sample by id (the same rows every time), and the note says so', async (t) => {
  const dir = tempDir(t, 'm6-pixels-');
  const all = await rows(dir, [['a', RED, 'x'], ['b', BLUE, 'x'], ['c', GREEN, 'x'], ['d', YELLOW, 'x'], ['e', null, 'x']]);
  const whole = await loadPixelCorpus(all);
  assert.deepEqual([whole.rows.length, whole.failed, whole.offered], [4, 1, 5]);
  assert.equal(corpusNote(whole), 'the 16×16 RGB thumbnails of all 5 training rows, 1 unreadable and left out');
  const part = await loadPixelCorpus(all, { limit: 3, seed: 2 });
  const drawn = sampleExamples(all, 3, 2).map((r) => r.id);
  assert.deepEqual([...part.rows.map((r) => r.id), ...(part.failed ? ['e'] : [])].sort(), [...drawn].sort());
  assert.deepEqual((await loadPixelCorpus(all, { limit: 3, seed: 2 })).rows.map((r) => r.id), part.rows.map((r) => r.id));
  assert.match(corpusNote(part), /^the 16×16 RGB thumbnails of a seeded sample of 3 of the 5 training rows \(at most 20000\)/);
});

test('nearestNeighbourCopies: any rows: the nearest training row\'s text, unreadable held-out rows counted', async (t) => {
  const dir = tempDir(t, 'm6-pixels-');
  const train = await loadPixelCorpus(await rows(dir, [['t0', RED, 'red thing'], ['t1', BLUE, 'blue thing']]));
  const r = await nearestNeighbourCopies(train, await rows(dir, [['h0', [40, 40, 200], '?'], ['h1', null, '?'], ['h2', DARK_RED, '?']]));
  assert.deepEqual(r, { copies: [{ id: 'h0', nearest: 't1', text: 'blue thing' }, { id: 'h2', nearest: 't0', text: 'red thing' }], failed: 1 });
});

test('m6 eval describe on labelled rows: the pixel nearest neighbour beside the majority class, its copies judged like the model\'s', async (t) => {
  const dir = tempDir(t, 'm6-pixels-');
  // text = label (clothing's spec): a description counts when it is the label.
  const data: Array<readonly [string, Rgb, string, string | undefined]> = [
    ['t0', RED, 'dress', undefined], ['t1', BLUE, 'hat', undefined], ['t2', GREEN, 'boot', undefined],
    ['h0', [200, 40, 40], 'dress', 'test'], ['h1', [40, 40, 200], 'skirt', 'test'], ['h2', [40, 190, 40], 'boot', 'test'],
  ];
  const dataRows: DataRow[] = [];
  for (const [id, rgb, label, split] of data) {
    await writeSolidImage(join(dir, `${id}.png`), { width: 32, height: 32, rgb: [...rgb], format: 'png' });
    dataRows.push({ id, source: 'rows.csv', row: dataRows.length + 1, imagePath: join(dir, `${id}.png`), text: label, caption: label, label, ...(split !== undefined ? { split } : {}) });
  }
  const heldOut = dataRows.filter((r) => r.split === 'test');
  // The "model" says hat to everything: right about h1 only if h1 were a hat; it is a skirt, so 0 of 3.
  const pipeline = { describe: async (images: string[]) => images.map(() => ({ ok: true, text: 'hat' })) } as unknown as Pipeline;
  const ctx: EvalContext = {
    task: 'describe', pipeline, spec: { format: 'csv', textCols: ['label'], textFileCols: [], textJoin: ' ', splitSeed: 0 } as DatasetSpec,
    data: { train: [], eval: [], skipped: [], heldOutOnly: [], rows: dataRows, badRows: 0 } as TaskData,
    examples: heldOut.map((r) => ({ id: r.id, imagePath: r.imagePath!, source: TASKS.describe.instruction, target: r.text!, heldOut: 'test' as const })),
    available: 3, batchSize: 4, log: () => {},
  };
  const r = await evaluateDescribe(ctx) as DescribeEvaluation;
  assert.equal(r.metrics.categoryAccuracy, 0);
  assert.equal(r.baselines.categoryAccuracy, 1 / 3, 'majority class: each label once');
  assert.equal(r.baselineName, 'majority class');
  const pixel = r.moreBaselines?.find((b) => b.name === 'pixel nearest neighbour');
  assert.ok(pixel !== undefined, JSON.stringify(r.moreBaselines));
  // h0 copies t0's "dress" (right), h1 t1's "hat" (wrong: a skirt), h2 t2's "boot" (right).
  assert.equal(pixel.values.categoryAccuracy, 2 / 3);
  assert.deepEqual(Object.keys(pixel.values), ['bleu4', 'rougeL', 'ciderD', 'categoryAccuracy']);
  assert.ok(pixel.values.ciderD! > r.metrics.ciderD!, 'the copies share words with the references; "hat" shares none');
  assert.match(r.notes.join('\n'), /pixel nearest neighbour: each item gets the text of the training row whose thumbnail is nearest, judged like the model's \(the 16×16 RGB thumbnails of all 3 training rows\)/);
  // The model's own records are untouched by the baseline's judging.
  assert.ok(r.items.every((d) => d.generated === 'hat' && d.labelOk === false));
});
