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
 * The share of products that are new arrivals: they enter the catalog after every history was
 * logged but its last visit, so they occur only as a shopper's final item, the test target of a
 * leave-last-out split. They have no training interactions: cold items, which only a model that reads
 * titles and images can rank.
 */
export const NEW_ARRIVAL_SHARE = 0.08;
/** How often a shopper's last visit is to a new arrival. */
export const NEW_ARRIVAL_VISIT = 0.2;

type ItemGroups = ReadonlyArray<{ attrs: GarmentAttributes; items: readonly string[] }>;

/**
 * A shopper's history. Items are grouped by (category, colour, pattern) so sampling costs a pass
 * over the few hundred groups, not over the whole catalog, per shopper.
 */
export function simulateShopper(taste: ShopperTaste, groups: ItemGroups, events: number, rng: Rng, arrivals: ItemGroups = []): Interaction[] {
  const weightsOf = (gs: ItemGroups) => gs.map((g) => g.items.length * Math.exp(1.5 * affinity(taste, g.attrs)));
  const weights = weightsOf(groups);
  const out: Interaction[] = [];
  const at = { step: 0 };
  // A shopper comes back to items they know (a cart, a purchase) straight after a view, but does not
  // browse to them again later: the next item is always a new one, as after 5-core deduplication.
  const seen = new Set<string>();
  for (let i = 0; i < events; i++) {
    const g = groups[rng.weighted(weights)]!;
    const item = rng.pick(g.items);
    if (seen.has(item)) continue;
    seen.add(item);
    visit(taste, g.attrs, item, rng, at, out);
  }
  // The last visit, now and then, is to a new arrival (drawn by the same taste).
  if (arrivals.length > 0 && out.length > 0 && rng.bool(NEW_ARRIVAL_VISIT)) {
    const g = arrivals[rng.weighted(weightsOf(arrivals))]!;
    visit(taste, g.attrs, rng.pick(g.items), rng, at, out);
  }
  return out;
}

/** One item's events: a view, then perhaps a click, a cart and a purchase, as the taste matches. */
function visit(taste: ShopperTaste, attrs: GarmentAttributes, item: string, rng: Rng, at: { step: number }, out: Interaction[]): void {
  const a = affinity(taste, attrs);
  const push = (event: InteractionEvent) => out.push({ shopper: taste.id, item, event, step: at.step++ });
  push('view');
  if (!rng.bool(0.1 + 0.2 * a)) return;
  push('click');
  if (!rng.bool(0.05 + 0.12 * a)) return;
  push('cart');
  if (rng.bool(0.5)) push('purchase');
}
