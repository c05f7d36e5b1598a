// Simulated shoppers with stable tastes, for recommendation tests: each prefers a few categories,
// colours and one pattern, and browses, clicks, carts and buys mostly what matches. Their tastes
// are written out too, so a recommender can be scored against the truth.
import type { Rng } from '../random.js';
import { CATEGORIES, COLOURS, PATTERNS, type Category, type GarmentAttributes, type Pattern } from './attributes.js';

export interface ShopperTaste {
  id: string;
  categories: Category[];
  colours: string[];
  pattern: Pattern;
}

export type InteractionEvent = 'view' | 'click' | 'cart' | 'purchase';

export interface Interaction {
  shopper: string;
  item: string;
  event: InteractionEvent;
  /** Order of events within a shopper's history. */
  step: number;
}

export function drawTaste(id: string, rng: Rng): ShopperTaste {
  return {
    id,
    categories: rng.sample(CATEGORIES.map((c) => c.name), 2),
    colours: rng.sample(COLOURS.map((c) => c.name), 3),
    pattern: rng.pick(PATTERNS).name,
  };
}

export function affinity(taste: ShopperTaste, attrs: GarmentAttributes): number {
  return (taste.categories.includes(attrs.category) ? 2 : 0) + (taste.colours.includes(attrs.colour) ? 1.2 : 0) + (attrs.pattern === taste.pattern ? 0.8 : 0);
}

/**
 * A shopper's history. Items are grouped by (category, colour, pattern) so sampling costs a pass
 * over the few hundred groups, not over the whole catalog, per shopper.
 */
export function simulateShopper(taste: ShopperTaste, groups: ReadonlyArray<{ attrs: GarmentAttributes; items: readonly string[] }>, events: number, rng: Rng): Interaction[] {
  const weights = groups.map((g) => g.items.length * Math.exp(1.5 * affinity(taste, g.attrs)));
  const out: Interaction[] = [];
  let step = 0;
  // A shopper comes back to items they know (a cart, a purchase) straight after a view, but does not
  // browse to them again later: the next item is always a new one, as after 5-core deduplication.
  const seen = new Set<string>();
  for (let i = 0; i < events; i++) {
    const g = groups[rng.weighted(weights)]!;
    const item = rng.pick(g.items);
    if (seen.has(item)) continue;
    seen.add(item);
    const a = affinity(taste, g.attrs);
    out.push({ shopper: taste.id, item, event: 'view', step: step++ });
    if (!rng.bool(0.1 + 0.2 * a)) continue;
    out.push({ shopper: taste.id, item, event: 'click', step: step++ });
    if (!rng.bool(0.05 + 0.12 * a)) continue;
    out.push({ shopper: taste.id, item, event: 'cart', step: step++ });
    if (rng.bool(0.5)) out.push({ shopper: taste.id, item, event: 'purchase', step: step++ });
  }
  return out;
}
