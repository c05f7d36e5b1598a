// The pixel baselines on tiny known inputs: solid-colour PNGs whose distances are worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadPixelCorpus, nearestImages, nearestNeighbourDescribe, pixelSearchBaseline, productsForTitle } from '../../src/eval/pixelBaselines.js';
import type { CatalogItem } from '../../src/eval/syntheticEval.js';
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
  const train = await loadPixelCorpus([
    await product(dir, 't0', RED, { category: 'dress', colour: 'red', title: 'Red Dress' }),
    await product(dir, 't1', BLUE, { category: 'hat', colour: 'blue', title: 'Blue Hat' }),
    await product(dir, 't2', GREEN, { category: 'boot', colour: 'green', title: 'Green Boots' }),
  ], dir);
  assert.equal(train.items.length, 3);
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
  const train = await loadPixelCorpus([
    await product(dir, 't0', RED, { category: 'dress', colour: 'red', title: 'Red Dress' }),
    await product(dir, 't1', DARK_RED, { category: 'dress', colour: 'red', title: 'Red Dress' }),
    await product(dir, 't2', BLUE, { category: 'hat', colour: 'blue', title: 'Blue Hat' }),
    await product(dir, 't3', GREEN, { category: 'boot', colour: 'green', title: 'Green Boots' }),
  ], dir);
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
  assert.equal(r.exactTitles, 0.5);
});
