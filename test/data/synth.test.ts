import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { CATEGORIES, COLOURS, colourInfo, categoryInfo, PATTERNS } from '../../src/data/synth/attributes.js';
import { synthesiseProducts, writeSyntheticCatalog, type SyntheticProduct } from '../../src/data/synth/catalog.js';
import { synthesiseOutfits } from '../../src/data/synth/outfits.js';
import { novelCompositions } from '../../src/data/synth/compositions.js';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../../src/data/datasetSpec.js';
import { readInteractions } from '../../src/data/interactions.js';
import { NEW_ARRIVAL_VISIT } from '../../src/data/synth/shoppers.js';
import { tempDir } from './fixtures.js';

function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, prefix: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
      else out.set(prefix + e.name, createHash('sha256').update(readFileSync(join(d, e.name))).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

test('the vocabulary is wide enough: 8+ categories, 12+ colours, 4 patterns', () => {
  assert.ok(CATEGORIES.length >= 8);
  assert.ok(COLOURS.length >= 12);
  assert.deepEqual(PATTERNS.map((p) => p.name), ['solid', 'striped', 'polka-dot', 'checked']);
});

test('same seed → byte-identical files; another seed → different files', async (t) => {
  const a = tempDir(t);
  const b = tempDir(t);
  const c = tempDir(t);
  await writeSyntheticCatalog({ out: a, count: 40, seed: 5, size: 64 });
  await writeSyntheticCatalog({ out: b, count: 40, seed: 5, size: 64 });
  await writeSyntheticCatalog({ out: c, count: 40, seed: 6, size: 64 });
  const da = treeDigest(a);
  assert.equal(da.size, 40 + 5, 'images + catalog.jsonl, shoppers.jsonl, interactions.jsonl, outfits.jsonl, dataset.json');
  assert.deepEqual(da, treeDigest(b));
  assert.notEqual(da.get('catalog.jsonl'), treeDigest(c).get('catalog.jsonl'));
});

test('catalog rows: attributes agree with titles, descriptions and Q&A', () => {
  const products = synthesiseProducts(500, 1).map((p) => p.product);
  const categories = new Set(products.map((p) => p.category));
  const colours = new Set(products.map((p) => p.colour));
  assert.ok(categories.size >= 8 && colours.size >= 12);
  const descriptions = new Set<string>();
  for (const p of products) {
    const info = categoryInfo(p.category);
    assert.equal(p.sleeve === null, info.sleeves.length === 0, `${p.id}: sleeve only where it applies`);
    if (p.sleeve !== null) assert.ok(info.sleeves.includes(p.sleeve));
    assert.equal(p.secondaryColour === null, p.pattern === 'solid');
    assert.notEqual(p.secondaryColour, p.colour);
    assert.ok(p.title.toLowerCase().startsWith(p.colour), p.title);
    assert.ok(p.title.endsWith(info.en), p.title);
    assert.ok(p.titleZh.startsWith(colourInfo(p.colour).zh) && p.titleZh.endsWith(info.zh), p.titleZh);
    assert.ok(p.description.toLowerCase().includes(p.colour), p.description);
    if (p.secondaryColour !== null) assert.ok(p.description.includes(p.secondaryColour), p.description);
    const sentences = p.description.split(/(?<=\.)\s/).length;
    assert.ok(sentences >= 1 && sentences <= 3, p.description);
    const answers = new Map(p.qa.map((q) => [q.question, q.answer]));
    assert.ok([...answers.values()].includes(p.colour));
    assert.ok([...answers.values()].includes(p.category));
    assert.equal(answers.get('How long are the sleeves?'), p.sleeve ?? undefined);
    const yesNo = p.qa.find((q) => q.question.startsWith('Is this'))!;
    assert.equal(yesNo.answer, yesNo.question.endsWith(` ${p.colour}?`) ? 'yes' : 'no');
    descriptions.add(p.description.replace(p.colour, 'C').replace(p.category, 'K'));
  }
  assert.ok(descriptions.size > 50, 'descriptions vary in wording');
});

test('pictures are an exact oracle: a solid garment shows its colour on a contrasting background', async (t) => {
  const dir = tempDir(t);
  await writeSyntheticCatalog({ out: dir, count: 60, seed: 2, size: 96 });
  const rows = readFileSync(join(dir, 'catalog.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SyntheticProduct);
  let checked = 0;
  for (const p of rows.filter((r) => r.pattern === 'solid').slice(0, 12)) {
    const { data, info } = await sharp(join(dir, p.image)).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, 96);
    const want = colourInfo(p.colour).rgb;
    // Count pixels within a small distance of the garment's colour: a visible share of the picture.
    let near = 0;
    for (let i = 0; i < data.length; i += info.channels) {
      if (Math.hypot(data[i]! - want[0], data[i + 1]! - want[1], data[i + 2]! - want[2]) < 12) near++;
    }
    assert.ok(near > 96 * 96 * 0.04, `${p.id} (${p.title}): only ${near} pixels of ${p.colour}`);
    checked++;
  }
  assert.ok(checked >= 5);
});

test('interactions: known shoppers and items, tastes drive behaviour', async (t) => {
  const dir = tempDir(t);
  const result = await writeSyntheticCatalog({ out: dir, count: 300, seed: 9, size: 64, shoppers: 40 });
  const items = new Map(readFileSync(join(dir, 'catalog.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SyntheticProduct).map((p) => [p.id, p]));
  const tastes = new Map(readFileSync(join(dir, 'shoppers.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; categories: string[] }).map((s) => [s.id, s]));
  const events = readFileSync(join(dir, 'interactions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { shopper: string; item: string; event: string });
  assert.equal(events.length, result.interactions);
  assert.equal(tastes.size, 40);
  let liked = 0;
  let views = 0;
  for (const e of events) {
    assert.ok(items.has(e.item) && tastes.has(e.shopper));
    assert.ok(['view', 'click', 'cart', 'purchase'].includes(e.event));
    if (e.event === 'view') {
      views++;
      if (tastes.get(e.shopper)!.categories.includes(items.get(e.item)!.category)) liked++;
    }
  }
  // Two favourite categories of ten would get ~20% of views by chance.
  assert.ok(liked / views > 0.5, `only ${((100 * liked) / views).toFixed(0)}% of views in favourite categories`);
});

test('new arrivals occur only as a shopper\'s last item (cold targets: no training interaction), for about NEW_ARRIVAL_VISIT of the shoppers', async (t) => {
  const dir = tempDir(t);
  await writeSyntheticCatalog({ out: dir, count: 400, seed: 4, size: 64, shoppers: 300 });
  const events = readFileSync(join(dir, 'interactions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { shopper: string; item: string });
  const byShopper = new Map<string, string[]>();
  for (const e of events) {
    const seq = byShopper.get(e.shopper) ?? [];
    if (seq.at(-1) !== e.item) seq.push(e.item);
    byShopper.set(e.shopper, seq);
  }
  const counts = new Map<string, number>();
  for (const seq of byShopper.values()) for (const item of seq.slice(0, -1)) counts.set(item, (counts.get(item) ?? 0) + 1);
  const coldLast = [...byShopper.values()].filter((seq) => !counts.has(seq.at(-1)!)).length;
  const share = coldLast / byShopper.size;
  // Shoppers whose last item is one no history holds before its end: the new arrivals' visits (and, rarely, an item only ever seen last).
  assert.ok(share >= NEW_ARRIVAL_VISIT * 0.6 && share <= NEW_ARRIVAL_VISIT * 1.6, `${(100 * share).toFixed(1)}% of shoppers end on a cold item`);
});

test('dataset.json names the interactions and the outfits; both read back through the spec', async (t) => {
  const dir = tempDir(t);
  const result = await writeSyntheticCatalog({ out: dir, count: 60, seed: 3, size: 64, shoppers: 12 });
  const spec = resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'dataset.json')));
  assert.equal(spec.manifest, join(dir, 'catalog.jsonl'));
  assert.deepEqual(spec.interactions, { file: join(dir, 'interactions.jsonl'), format: 'events', userCol: 'shopper', itemCol: 'item', timeCol: 'step', eventCol: 'event' });
  const log = await readInteractions(spec.interactions!);
  assert.equal(log.ordered, true);
  assert.equal(log.rows, result.interactions);
  assert.equal(log.bad.total, 0);
  assert.equal(log.sequences.size, 12);
  // A view, click and cart of one item are one step, so no item follows itself.
  for (const seq of log.sequences.values()) for (let i = 1; i < seq.length; i++) assert.notEqual(seq[i], seq[i - 1]);
  const outfits = await readInteractions(spec.baskets!);
  assert.equal(outfits.ordered, false);
  assert.equal(outfits.sequences.size, result.outfits);
  assert.equal(outfits.bad.total, 0);
});

test('outfits: 2–4 items of different categories sharing a colour; most items in few outfits', () => {
  const products = synthesiseProducts(1000, 4).map((p) => p.product);
  const byId = new Map(products.map((p) => [p.id, p]));
  const outfits = synthesiseOutfits(products, 500, 4);
  assert.equal(outfits.length, 500);
  assert.deepEqual(synthesiseOutfits(products, 500, 4), outfits, 'deterministic per seed');
  const uses = new Map<string, number>();
  for (const outfit of outfits) {
    assert.ok(outfit.length >= 2 && outfit.length <= 4, `${outfit.length} items`);
    const items = outfit.map((id) => byId.get(id)!);
    const groups = items.map((p) => categoryInfo(p.category).group);
    assert.equal(new Set(groups).size, items.length, `one item per group: ${groups.join(',')}`);
    assert.ok(groups.includes('dress') !== (groups.includes('top') && groups.includes('bottom')), `a dress or a top with a bottom: ${groups.join(',')}`);
    const shared = COLOURS.map((c) => c.name).filter((c) => items.every((p) => p.colour === c || p.secondaryColour === c));
    assert.ok(shared.length > 0, `no colour shared by ${items.map((p) => p.title).join(' + ')}`);
    for (const id of outfit) uses.set(id, (uses.get(id) ?? 0) + 1);
  }
  const counts = [...uses.values()].sort((a, b) => b - a);
  const few = counts.filter((n) => n <= 2).length;
  assert.ok(few / counts.length > 0.6, `${few} of ${counts.length} items in at most 2 outfits`);
  assert.ok(counts[0]! >= 8, `the most used item is in ${counts[0]} outfits: popular items recur`);
});

test('compositional hold-out: 15% of category × colour × pattern combinations never train, every pair of each still does', () => {
  const novel = novelCompositions(0);
  const combos = CATEGORIES.length * COLOURS.length * PATTERNS.length;
  assert.equal(novel.size, Math.round(combos * 0.15));
  assert.deepEqual([...novelCompositions(0)], [...novel], 'seeded');
  assert.notDeepEqual([...novelCompositions(1)].sort(), [...novel].sort(), 'another seed holds out other combinations');
  const seenPairs = new Set<string>();
  for (const c of CATEGORIES) for (const k of COLOURS) for (const p of PATTERNS) {
    if (novel.has(`${c.name}|${k.name}|${p.name}`)) continue;
    seenPairs.add(`c${c.name}|${k.name}`).add(`p${c.name}|${p.name}`).add(`k${k.name}|${p.name}`);
  }
  for (const key of novel) {
    const [c, k, p] = key.split('|');
    for (const pair of [`c${c}|${k}`, `p${c}|${p}`, `k${k}|${p}`]) assert.ok(seenPairs.has(pair), `${key}: ${pair} is never trained`);
  }
});

test('the catalog splits train / val / test, novel compositions only in val and test, and the spec reads the split column', async (t) => {
  const products = synthesiseProducts(4000, 0).map((p) => p.product);
  const novel = novelCompositions(0);
  const count = (f: (p: SyntheticProduct) => boolean) => products.filter(f).length;
  for (const p of products) assert.equal(p.composition, novel.has(`${p.category}|${p.colour}|${p.pattern}`) ? 'novel' : 'seen');
  assert.equal(count((p) => p.composition === 'novel' && p.split === 'train'), 0, 'no novel composition trains');
  const novelShare = count((p) => p.composition === 'novel') / products.length;
  assert.ok(novelShare > 0.11 && novelShare < 0.19, `novel share ${novelShare}`);
  const seen = products.filter((p) => p.composition === 'seen');
  const share = (split: string) => seen.filter((p) => p.split === split).length / seen.length;
  assert.ok(Math.abs(share('train') - 0.84) < 0.03 && Math.abs(share('val') - 0.08) < 0.02 && Math.abs(share('test') - 0.08) < 0.02, `seen split ${share('train')} / ${share('val')} / ${share('test')}`);
  const novelVal = count((p) => p.composition === 'novel' && p.split === 'val') / count((p) => p.composition === 'novel');
  assert.ok(novelVal > 0.4 && novelVal < 0.6, `novel val share ${novelVal}`);
  // Through the spec: the split column, and a --split given over the file replaces it.
  const dir = tempDir(t);
  await writeSyntheticCatalog({ out: dir, count: 60, seed: 0, size: 64, shoppers: 10 });
  const spec = resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'dataset.json')));
  assert.equal(spec.splitCol, 'split');
  const { readDataset } = await import('../../src/data/manifest.js');
  const rows = (await readDataset(spec)).rows;
  const written = new Map(synthesiseProducts(60, 0).map(({ product }) => [product.id, product.split]));
  for (const r of rows) assert.equal(r.split, written.get(r.id));
});
