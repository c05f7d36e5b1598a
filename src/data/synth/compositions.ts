// The synthetic catalog's compositional hold-out: a seeded set of attribute combinations
// (category × colour × pattern) whose products never train. Every held-out product of such a
// combination is a *novel composition*: "a green polka-dot dress" when the model has seen green
// things, polka-dot things and dresses, but never that combination. The rest of the catalog is split
// by a seeded hash of the product id into train / validation / test as usual, so the held-out
// splits hold both seen and novel compositions and every figure can be reported for each.
import { deriveSeed, Rng, unitHash } from '../random.js';
import { CATEGORIES, COLOURS, PATTERNS, type GarmentAttributes } from './attributes.js';

/** Share of the category × colour × pattern combinations held out whole. */
export const NOVEL_COMPOSITION_SHARE = 0.15;
/** Split of the products of seen combinations, by a seeded hash of their id. */
export const SEEN_SPLIT = { train: 0.84, val: 0.08, test: 0.08 } as const;

export type Composition = 'seen' | 'novel';
export type CatalogSplit = 'train' | 'val' | 'test';

export function compositionKey(a: Pick<GarmentAttributes, 'category' | 'colour' | 'pattern'>): string {
  return `${a.category}|${a.colour}|${a.pattern}`;
}

/**
 * The held-out combinations for a seed: a seeded draw of NOVEL_COMPOSITION_SHARE of them, keeping
 * every pair (category × colour, category × pattern, colour × pattern) of each held-out combination
 * seen in some training combination — otherwise a "novel" product would test a pair never shown,
 * not the composition of known parts.
 */
export function novelCompositions(seed: number): ReadonlySet<string> {
  const all: Array<[string, string, string]> = [];
  for (const c of CATEGORIES) for (const k of COLOURS) for (const p of PATTERNS) all.push([c.name, k.name, p.name]);
  const order = all.map((_v, i) => i);
  new Rng(deriveSeed(seed, 'novel-compositions')).shuffle(order);
  const want = Math.round(all.length * NOVEL_COMPOSITION_SHARE);
  // How many seen combinations carry each pair; a combination is held out only if none drops to 0.
  const pairs = (c: readonly string[]) => [`c${c[0]}|${c[1]}`, `p${c[0]}|${c[2]}`, `k${c[1]}|${c[2]}`];
  const seenCount = new Map<string, number>();
  for (const combo of all) for (const p of pairs(combo)) seenCount.set(p, (seenCount.get(p) ?? 0) + 1);
  const novel = new Set<string>();
  for (const i of order) {
    if (novel.size === want) break;
    const combo = all[i]!;
    if (pairs(combo).some((p) => seenCount.get(p)! <= 1)) continue;
    for (const p of pairs(combo)) seenCount.set(p, seenCount.get(p)! - 1);
    novel.add(combo.join('|'));
  }
  return novel;
}

/** A product's split: a novel composition's products are validation or test (half each); the rest by SEEN_SPLIT. */
export function catalogSplit(id: string, composition: Composition, seed: number): CatalogSplit {
  const u = unitHash(id, deriveSeed(seed, 'catalog-split'));
  if (composition === 'novel') return u < 0.5 ? 'val' : 'test';
  if (u < SEEN_SPLIT.train) return 'train';
  return u < SEEN_SPLIT.train + SEEN_SPLIT.val ? 'val' : 'test';
}

/** Bumped whenever the catalog's rows or their splits change, so that cached catalogs are re-synthesised. */
export const CATALOG_VERSION = 5;  // 5: a seeded price per product
