// The synthetic catalog's attribute vocabulary: what a garment can be, with English and Chinese
// names. Every image is drawn from these attributes, so each one's truth is known exactly.
import type { Rng } from '../random.js';

export type Category =
  | 't-shirt' | 'shirt' | 'dress' | 'skirt' | 'trousers' | 'shorts' | 'sneaker' | 'boot' | 'handbag' | 'hat';
export type Pattern = 'solid' | 'striped' | 'polka-dot' | 'checked';
export type Sleeve = 'sleeveless' | 'short' | 'long';

export interface CategoryInfo {
  name: Category;
  en: string;
  /** Plural-free noun for "this …" sentences. */
  noun: string;
  zh: string;
  /** Sleeve lengths this garment can have; empty when sleeves do not apply. */
  sleeves: readonly Sleeve[];
  group: 'top' | 'dress' | 'bottom' | 'shoes' | 'accessory';
}

export const CATEGORIES: readonly CategoryInfo[] = [
  { name: 't-shirt', en: 'T-Shirt', noun: 't-shirt', zh: 'T恤', sleeves: ['short', 'long'], group: 'top' },
  { name: 'shirt', en: 'Shirt', noun: 'shirt', zh: '衬衫', sleeves: ['short', 'long'], group: 'top' },
  { name: 'dress', en: 'Dress', noun: 'dress', zh: '连衣裙', sleeves: ['sleeveless', 'short', 'long'], group: 'dress' },
  { name: 'skirt', en: 'Skirt', noun: 'skirt', zh: '半身裙', sleeves: [], group: 'bottom' },
  { name: 'trousers', en: 'Trousers', noun: 'pair of trousers', zh: '长裤', sleeves: [], group: 'bottom' },
  { name: 'shorts', en: 'Shorts', noun: 'pair of shorts', zh: '短裤', sleeves: [], group: 'bottom' },
  { name: 'sneaker', en: 'Sneakers', noun: 'sneaker', zh: '运动鞋', sleeves: [], group: 'shoes' },
  { name: 'boot', en: 'Boots', noun: 'boot', zh: '靴子', sleeves: [], group: 'shoes' },
  { name: 'handbag', en: 'Handbag', noun: 'handbag', zh: '手提包', sleeves: [], group: 'accessory' },
  { name: 'hat', en: 'Hat', noun: 'hat', zh: '帽子', sleeves: [], group: 'accessory' },
];

export interface ColourInfo {
  name: string;
  zh: string;
  hex: string;
  rgb: readonly [number, number, number];
}

function colour(name: string, zh: string, hex: string): ColourInfo {
  const n = parseInt(hex.slice(1), 16);
  return { name, zh, hex, rgb: [(n >> 16) & 255, (n >> 8) & 255, n & 255] };
}

export const COLOURS: readonly ColourInfo[] = [
  colour('red', '红色', '#d32f2f'),
  colour('orange', '橙色', '#f57c00'),
  colour('yellow', '黄色', '#fbc02d'),
  colour('green', '绿色', '#388e3c'),
  colour('teal', '青色', '#00897b'),
  colour('blue', '蓝色', '#1e88e5'),
  colour('navy', '藏青色', '#1a237e'),
  colour('purple', '紫色', '#7b1fa2'),
  colour('pink', '粉色', '#ec407a'),
  colour('brown', '棕色', '#6d4c41'),
  colour('black', '黑色', '#212121'),
  colour('white', '白色', '#fafafa'),
  colour('grey', '灰色', '#9e9e9e'),
  colour('beige', '米色', '#d7c4a3'),
];

export const PATTERNS: ReadonlyArray<{ name: Pattern; en: string; zh: string }> = [
  { name: 'solid', en: 'Solid', zh: '纯色' },
  { name: 'striped', en: 'Striped', zh: '条纹' },
  { name: 'polka-dot', en: 'Polka-Dot', zh: '波点' },
  { name: 'checked', en: 'Checked', zh: '格子' },
];

export const SLEEVES: ReadonlyArray<{ name: Sleeve; en: string; zh: string }> = [
  { name: 'sleeveless', en: 'Sleeveless', zh: '无袖' },
  { name: 'short', en: 'Short-Sleeve', zh: '短袖' },
  { name: 'long', en: 'Long-Sleeve', zh: '长袖' },
];

/** Light studio backdrops; one that contrasts with the garment is picked per image. */
export const BACKGROUNDS: ReadonlyArray<readonly [number, number, number]> = [
  [255, 255, 255], [240, 240, 240], [250, 244, 230], [228, 238, 248], [248, 232, 236], [232, 244, 232], [200, 200, 205], [60, 60, 66],
];

export function colourDistance(a: readonly number[], b: readonly number[]): number {
  return Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);
}

/** Everything that is true about one synthetic product's picture. */
export interface GarmentAttributes {
  category: Category;
  colour: string;
  pattern: Pattern;
  /** The pattern's second colour; null for solid. */
  secondaryColour: string | null;
  /** Null where sleeves do not apply. */
  sleeve: Sleeve | null;
}

/** The picture's layout: position, scale, tilt and backdrop (not attributes of the product). */
export interface Placement {
  dx: number;
  dy: number;
  scale: number;
  rotate: number;
  background: readonly [number, number, number];
}

export function categoryInfo(name: Category): CategoryInfo {
  return CATEGORIES.find((c) => c.name === name)!;
}

export function colourInfo(name: string): ColourInfo {
  const c = COLOURS.find((x) => x.name === name);
  if (c === undefined) throw new Error(`unknown colour '${name}'`);
  return c;
}

export function drawAttributes(rng: Rng): GarmentAttributes {
  const category = rng.pick(CATEGORIES);
  const main = rng.pick(COLOURS);
  const pattern = rng.pick(PATTERNS).name;
  let secondaryColour: string | null = null;
  if (pattern !== 'solid') {
    // A second colour the eye (and a classifier) can tell apart from the main one.
    const options = COLOURS.filter((c) => colourDistance(c.rgb, main.rgb) > 120);
    secondaryColour = rng.pick(options).name;
  }
  const sleeve = category.sleeves.length > 0 ? rng.pick(category.sleeves) : null;
  return { category: category.name, colour: main.name, pattern, secondaryColour, sleeve };
}

export function drawPlacement(rng: Rng, attrs: GarmentAttributes): Placement {
  const main = colourInfo(attrs.colour).rgb;
  const backgrounds = BACKGROUNDS.filter((b) => colourDistance(b, main) > 90);
  return {
    dx: Math.round(rng.uniform(-8, 8)),
    dy: Math.round(rng.uniform(-6, 6)),
    scale: Math.round(rng.uniform(0.72, 0.98) * 100) / 100,
    rotate: Math.round(rng.uniform(-6, 6)),
    background: rng.pick(backgrounds),
  };
}

/** Bumped whenever render.ts draws products differently, so that cached catalogs are re-synthesised. */
export const RENDER_VERSION = 2;
