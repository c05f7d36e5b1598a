// `m6 data synth`: the synthetic catalog: images/<id>.png, catalog.jsonl, shoppers.jsonl,
// interactions.jsonl, outfits.jsonl and a dataset.json spec for `m6 data inspect --data`. Each
// product names its split (train / val / test) and whether its attribute combination is one the
// training split never shows (compositions.ts). One seed → byte-identical
// files: every random choice comes from a per-product Rng derived from (seed, index), and every
// JSON line is written with a fixed key order.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deriveSeed, Rng } from '../random.js';
import { mapConcurrent } from '../inspect.js';
import { drawAttributes, drawPlacement, type GarmentAttributes } from './attributes.js';
import { catalogSplit, compositionKey, novelCompositions, type CatalogSplit, type Composition } from './compositions.js';
import { drawPrice } from './price.js';
import { renderGarmentPng } from './render.js';
import { synthesiseOutfits } from './outfits.js';
import { drawTaste, NEW_ARRIVAL_SHARE, simulateShopper } from './shoppers.js';
import { describe, questionsAndAnswers, titleEn, titleZh, type QaPair } from './text.js';

export interface SyntheticProduct extends GarmentAttributes {
  id: string;
  image: string;
  title: string;
  titleZh: string;
  description: string;
  /** Seeded within the category's band (price.ts). */
  price: number;
  qa: QaPair[];
  /** Whether the training split has products of this category × colour × pattern. */
  composition: Composition;
  split: CatalogSplit;
}

export interface SynthOptions {
  out: string;
  count: number;
  seed: number;
  size: number;
  /** Default: count / 10, at least 10. */
  shoppers?: number;
  /** Events drawn per shopper (each may lead to click, cart, purchase). */
  eventsPerShopper?: number;
  /** Outfits written to outfits.jsonl; default: count / 2, at least 10. */
  outfits?: number;
}

export function productId(index: number): string {
  return `p${String(index + 1).padStart(6, '0')}`;
}

/** The catalog rows alone (no files), deterministic in (seed, count). */
export function synthesiseProducts(count: number, seed: number): Array<{ product: SyntheticProduct; rng: Rng }> {
  const out: Array<{ product: SyntheticProduct; rng: Rng }> = [];
  const novel = novelCompositions(seed);
  for (let i = 0; i < count; i++) {
    const rng = new Rng(deriveSeed(seed, 'product', i));
    const attrs = drawAttributes(rng);
    const id = productId(i);
    const composition: Composition = novel.has(compositionKey(attrs)) ? 'novel' : 'seen';
    const product: SyntheticProduct = {
      id,
      image: `images/${id}.png`,
      category: attrs.category,
      colour: attrs.colour,
      pattern: attrs.pattern,
      secondaryColour: attrs.secondaryColour,
      sleeve: attrs.sleeve,
      title: titleEn(attrs),
      titleZh: titleZh(attrs),
      description: describe(attrs, rng),
      price: drawPrice(attrs.category, seed, i),
      qa: questionsAndAnswers(attrs, rng),
      composition,
      split: catalogSplit(id, composition, seed),
    };
    out.push({ product, rng });
  }
  return out;
}

/** Items grouped by (category, colour, pattern): what the shopper simulation samples from. */
function itemGroups(products: ReadonlyArray<GarmentAttributes & { id: string }>): { attrs: GarmentAttributes; items: string[] }[] {
  const groups = new Map<string, { attrs: GarmentAttributes; items: string[] }>();
  for (const product of products) {
    const key = `${product.category}|${product.colour}|${product.pattern}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { attrs: product, items: [] }));
    g.items.push(product.id);
  }
  return [...groups.values()];
}

export async function writeSyntheticCatalog(opts: SynthOptions): Promise<{ products: number; shoppers: number; interactions: number; outfits: number }> {
  if (![64, 96, 128].includes(opts.size)) throw new RangeError(`size must be 64, 96 or 128, got ${opts.size}`);
  await mkdir(join(opts.out, 'images'), { recursive: true });
  const products = synthesiseProducts(opts.count, opts.seed);
  await mapConcurrent(products, 4, async ({ product, rng }) => {
    const png = await renderGarmentPng(product, drawPlacement(rng, product), opts.size);
    await writeFile(join(opts.out, product.image), png);
  });
  await writeFile(join(opts.out, 'catalog.jsonl'), products.map(({ product }) => JSON.stringify(product) + '\n').join(''));

  // New arrivals (a seeded share) are left out of the histories but for some shoppers' last visit.
  const isArrival = (id: string) => new Rng(deriveSeed(opts.seed, 'arrival', id)).bool(NEW_ARRIVAL_SHARE);
  const groupList = itemGroups(products.map(({ product }) => product).filter((p) => !isArrival(p.id)));
  const arrivals = itemGroups(products.map(({ product }) => product).filter((p) => isArrival(p.id)));
  const shopperCount = opts.shoppers ?? Math.max(10, Math.floor(opts.count / 10));
  const tastes: string[] = [];
  const interactions: string[] = [];
  for (let s = 0; s < shopperCount; s++) {
    const rng = new Rng(deriveSeed(opts.seed, 'shopper', s));
    const taste = drawTaste(`u${String(s + 1).padStart(5, '0')}`, rng);
    tastes.push(JSON.stringify(taste) + '\n');
    for (const event of simulateShopper(taste, groupList, opts.eventsPerShopper ?? 30, rng, arrivals)) interactions.push(JSON.stringify(event) + '\n');
  }
  await writeFile(join(opts.out, 'shoppers.jsonl'), tastes.join(''));
  await writeFile(join(opts.out, 'interactions.jsonl'), interactions.join(''));
  const outfits = synthesiseOutfits(products.map(({ product }) => product), opts.outfits ?? Math.max(10, Math.floor(opts.count / 2)), opts.seed);
  const outfitRows = outfits.flatMap((items, o) => items.map((item) => JSON.stringify({ outfit: `o${String(o + 1).padStart(6, '0')}`, item }) + '\n'));
  await writeFile(join(opts.out, 'outfits.jsonl'), outfitRows.join(''));
  const spec = {
    manifest: 'catalog.jsonl', imageCol: 'image', textCol: ['title', 'description'], labelCol: 'category', idCol: 'id', splitCol: 'split',
    priceCol: 'price', attributeCol: ['colour', 'pattern', 'sleeve'],
    interactions: 'interactions.jsonl', userCol: 'shopper', itemCol: 'item', timeCol: 'step', eventCol: 'event',
    // No time column: each outfit reads as a basket, a set of items that go together.
    baskets: { file: 'outfits.jsonl', userCol: 'outfit', itemCol: 'item' },
  };
  await writeFile(join(opts.out, 'dataset.json'), JSON.stringify(spec, null, 2) + '\n');
  return { products: products.length, shoppers: shopperCount, interactions: interactions.length, outfits: outfits.length };
}
