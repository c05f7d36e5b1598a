// A seeded price per synthetic product, so a catalog index has a number column to filter on
// (`m6 search --where "label = 'dress' AND price < 40"`). Each category has its own band (a hat
// costs less than boots); the draw comes from an Rng of its own, so adding prices left every other
// draw of the catalog (attributes, texts, placement in the image) as it was.
import { deriveSeed, Rng } from '../random.js';

/** Price bands by category, low and high, in the catalog's currency. */
export const PRICE_BANDS: Readonly<Record<string, readonly [number, number]>> = Object.freeze({
  't-shirt': [9, 35], shirt: [19, 70], dress: [25, 120], skirt: [15, 70], trousers: [25, 90],
  shorts: [12, 45], sneaker: [39, 140], boot: [59, 200], handbag: [29, 250], hat: [9, 40],
});

/** The product's price: whole units in its category's band, ending in .99; deterministic in (seed, index). */
export function drawPrice(category: string, seed: number, index: number): number {
  const band = PRICE_BANDS[category];
  if (band === undefined) throw new RangeError(`drawPrice: no price band for category '${category}'`);
  const rng = new Rng(deriveSeed(seed, 'price', index));
  return Math.floor(rng.uniform(band[0], band[1])) + 0.99;
}
