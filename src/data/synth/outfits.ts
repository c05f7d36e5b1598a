// Synthetic outfits: 2–4 garments of different categories that go together, for the complement
// ("fill in the blank") task. The rule is in the pictures: every item of an outfit shows the
// outfit's colour (as its main or its pattern's second colour), and an outfit is a top with a
// bottom or a dress alone, plus maybe shoes and an accessory. Items are drawn with a heavy-tailed
// popularity, so a few recur in many outfits (what co-occurrence can count) while most appear in
// one or two or none (what only the content rule covers).
import { deriveSeed, Rng } from '../random.js';
import { categoryInfo, COLOURS, type GarmentAttributes } from './attributes.js';

export interface OutfitItem extends GarmentAttributes { id: string }

type Group = 'top' | 'dress' | 'bottom' | 'shoes' | 'accessory';

/** Which groups an outfit is made of: a top and a bottom, or a dress; then shoes and a bag or hat sometimes. */
function drawShape(rng: Rng): Group[] {
  const shape: Group[] = rng.bool(0.5) ? ['top', 'bottom'] : ['dress'];
  if (rng.bool(0.6)) shape.push('shoes');
  if (rng.bool(0.4)) shape.push('accessory');
  // A dress alone is one item: give it shoes so every outfit has at least two.
  if (shape.length === 1) shape.push('shoes');
  return shape;
}

/** `count` outfits as lists of item ids, deterministic in (items, count, seed). */
export function synthesiseOutfits(items: readonly OutfitItem[], count: number, seed: number): string[][] {
  // Each item's popularity: 1/(0.02 + u), u uniform, so weights span 1..50 with a long head.
  const weight = items.map((_it, i) => 1 / (0.02 + new Rng(deriveSeed(seed, 'outfit-popularity', i)).next()));
  const pools = new Map<string, number[]>();   // `${group}|${colour}` → item positions
  items.forEach((it, i) => {
    const group = categoryInfo(it.category).group;
    for (const c of [it.colour, it.secondaryColour]) {
      if (c === null) continue;
      const key = `${group}|${c}`;
      let pool = pools.get(key);
      if (pool === undefined) pools.set(key, (pool = []));
      pool.push(i);
    }
  });
  const outfits: string[][] = [];
  for (let o = 0; o < count; o++) {
    const rng = new Rng(deriveSeed(seed, 'outfit', o));
    // A colour and shape whose slots can all be filled; a small catalog may need a few tries.
    for (let attempt = 0; attempt < 20; attempt++) {
      const colour = rng.pick(COLOURS).name;
      const shape = drawShape(rng);
      const slots = shape.map((g) => pools.get(`${g}|${colour}`) ?? []);
      if (slots.some((s) => s.length === 0)) continue;
      // Pools are keyed by colour, so every item drawn shows the outfit's colour.
      outfits.push(slots.map((pool) => items[pool[rng.weighted(pool.map((i) => weight[i]!))]!]!.id));
      break;
    }
  }
  return outfits;
}
