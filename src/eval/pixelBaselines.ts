// Baselines that are hard to beat because they look at the pixels, not because they learn anything:
// images shrunk to 16×16 RGB and compared by squared distance. On data whose colour or shape fills
// the picture, a model that does not beat these has learnt less than a thumbnail already says.
// They work on any rows with an image and a text (`m6 eval` on any dataset, and the demo's catalog):
//
// - describe: copy the text of the training row whose thumbnail is nearest (the caller judges the
//   copies exactly as it judges the model's descriptions).
// - search (text→image): the training rows whose caption is the query's (else those sharing the
//   most caption words) give a mean thumbnail; the gallery is ranked by distance to it. Image→text
//   reads the same distances the other way: each caption is ranked by how near its mean thumbnail
//   is to the query image.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { ImageBank } from '../data/imageBank.js';
import { sampleExamples } from './evaluation.js';
import { chanceRecall, imageToTextRecall, partRecalls, recallAtK, relevantItems, type EmbedItem, type PartRecalls } from './retrievalMetrics.js';
import { tokenizeForMetrics } from './textMetrics.js';

/** The side of the thumbnails the baselines compare. */
export const BASELINE_PIXELS = 16;

/**
 * Most training rows whose thumbnails a baseline loads (a seeded sample past it): decoding is the
 * cost (~4 ms an image: 17 s for clothing's 4,378), and 20,000 thumbnails (15 MB) are enough for a hard baseline.
 */
export const PIXEL_TRAIN_ROWS = 20_000;

/** A row as the baselines see it. */
export interface PixelRow {
  id: string;
  /** Path of the row's image file. */
  image: string;
  /** What describe writes for the row (the copied text). */
  text: string;
  /** The short text a search is matched against (default: text). */
  caption?: string;
}

/** Training rows as the baselines see them: `rows[i]`'s thumbnail is `bank.images[i]`. */
export interface PixelCorpus {
  rows: PixelRow[];
  bank: ImageBank;
  /** Rows left out because their image could not be read. */
  failed: number;
  /** Rows offered, before the sample of at most `limit`. */
  offered: number;
}

/**
 * Thumbnails of the rows' images: a seeded sample of at most `limit` rows (by a hash of their ids,
 * kept in data order); a row whose image cannot be read is left out and counted.
 */
export async function loadPixelCorpus(rows: readonly PixelRow[], o: { size?: number; limit?: number; seed?: number } = {}): Promise<PixelCorpus> {
  const sampled = sampleExamples(rows, o.limit ?? PIXEL_TRAIN_ROWS, o.seed ?? 0);
  const { bank, kept, failed } = await ImageBank.load(sampled.map((r) => r.image), o.size ?? BASELINE_PIXELS);
  return { rows: kept.map((i) => sampled[i]!), bank, failed: failed.size, offered: rows.length };
}

/** What a baseline compared with, for an evaluation's notes: how many training thumbnails, sampled or not. */
export function corpusNote(train: PixelCorpus): string {
  const loaded = train.rows.length + train.failed;
  const rows = loaded < train.offered ? `a seeded sample of ${loaded} of the ${train.offered} training rows (at most ${PIXEL_TRAIN_ROWS})` : `all ${train.offered} training rows`;
  return `the ${BASELINE_PIXELS}×${BASELINE_PIXELS} RGB thumbnails of ${rows}${train.failed > 0 ? `, ${train.failed} unreadable and left out` : ''}`;
}

/** (Q, N) float64 squared distances between rows; exact for byte values (every sum is an integer below 2^53). */
function squaredDistances(queries: readonly ArrayLike<number>[], gallery: readonly ArrayLike<number>[], dim: number): Tensor {
  const matrix = (rows: readonly ArrayLike<number>[]) => {
    const flat = new Float64Array(rows.length * dim);
    rows.forEach((r, i) => flat.set(r, i * dim));
    return torch.tensor(flat, { shape: [rows.length, dim], dtype: 'float64' });
  };
  return torch.scope(() => {
    const q = matrix(queries), g = matrix(gallery);
    // ‖q‖² + ‖g‖² − 2 q·g: one matmul instead of Q × N loops over 768 values in JS.
    return q.square().sum(1, { keepdim: true }).add(g.square().sum(1).unsqueeze(0)).sub(q.mm(g.transpose(0, 1)).mul(2));
  });
}

/** Queries per distance matrix: 1,024 × 20,000 float64 distances are about 160 MB, where all of a large held-out set at once would be gigabytes. */
const QUERY_CHUNK = 1024;

/** For each query thumbnail, the index of the nearest corpus thumbnail (ties: the first). */
export function nearestImages(corpus: readonly Uint8Array[], queries: readonly Uint8Array[]): number[] {
  if (!queries.length) return [];
  if (!corpus.length) throw new RangeError('nearestImages: an empty corpus has no nearest image');
  const dim = corpus[0]!.length;
  const out: number[] = [];
  for (let at = 0; at < queries.length; at += QUERY_CHUNK) {
    out.push(...torch.scope(() => squaredDistances(queries.slice(at, at + QUERY_CHUNK), corpus, dim).argmin(1).toArray() as number[]));
  }
  return out;
}

export interface NearestCopies {
  /** One per held-out row whose image could be read, in order: its id, the nearest training row's id and text. */
  copies: Array<{ id: string; nearest: string; text: string }>;
  /** Held-out rows left out because their image could not be read. */
  failed: number;
}

/** describe's nearest-neighbour baseline: each held-out row gets the text of the training row whose thumbnail is nearest. */
export async function nearestNeighbourCopies(train: PixelCorpus, heldOut: readonly PixelRow[]): Promise<NearestCopies> {
  if (train.rows.length === 0) throw new RangeError('nearestNeighbourCopies: no training thumbnails to copy from');
  const queries = await loadPixelCorpus(heldOut, { size: train.bank.size, limit: Infinity });
  const nearest = nearestImages(train.bank.images, queries.bank.images);
  return {
    copies: queries.rows.map((r, q) => ({ id: r.id, nearest: train.rows[nearest[q]!]!.id, text: train.rows[nearest[q]!]!.text })),
    failed: queries.failed,
  };
}

/**
 * Training captions, tokenised once, for finding the rows a caption stands for: those with exactly
 * this caption (case and punctuation aside), else those sharing the most distinct words with it,
 * else (no word in common) all.
 */
export class CaptionIndex {
  private readonly exact = new Map<string, number[]>();
  private readonly words: Array<Set<string>>;

  constructor(captions: readonly string[]) {
    const tokens = captions.map(tokenizeForMetrics);
    tokens.forEach((t, i) => {
      const key = t.join(' ');
      const rows = this.exact.get(key);
      if (rows !== undefined) rows.push(i);
      else this.exact.set(key, [i]);
    });
    this.words = tokens.map((t) => new Set(t));
  }

  rowsFor(caption: string): { indices: number[]; exact: boolean } {
    const tokens = tokenizeForMetrics(caption);
    const exact = this.exact.get(tokens.join(' '));
    if (exact !== undefined) return { indices: exact, exact: true };
    const want = new Set(tokens);
    const common = this.words.map((ws) => {
      let n = 0;
      for (const w of ws) if (want.has(w)) n++;
      return n;
    });
    const best = Math.max(0, ...common);
    return { indices: common.flatMap((c, i) => (c === best ? [i] : [])), exact: false };
  }
}

/** The training rows a title stands for (CaptionIndex's rule), for one title. */
export function productsForTitle(title: string, trainTitles: readonly string[]): { indices: number[]; exact: boolean } {
  return new CaptionIndex(trainTitles).rowsFor(title);
}

export interface PixelSearchResult {
  items: number;
  /** Gallery items left out because their image could not be read. */
  failed: number;
  /** The pixel ranking's recall@k, text→image: the gallery ranked by distance to the query caption's mean training thumbnail. */
  textToImage: Record<string, number>;
  /** Image→text: the gallery's distinct captions ranked by the distance from their mean training thumbnail to the query image. */
  imageToText: Record<string, number>;
  /** A random ranking's recall@k (chanceRecall) over the same gallery and relevance. */
  chanceTextToImage: Record<string, number>;
  /** The same for image→text over the distinct captions. */
  chanceImageToText: Record<string, number>;
  /** Share of queries whose caption some training row has exactly. */
  exactTitles: number;
  /** Recall of each part's queries (items with a `part`), as evaluateEmbed reports the model's. */
  byPart?: PartRecalls;
}

/** The mean thumbnail of each gallery caption's training rows (CaptionIndex), computed once per distinct caption. */
function meanThumbnails(train: PixelCorpus, captions: readonly string[]): { means: Float64Array[]; exact: number } {
  const dim = 3 * train.bank.size * train.bank.size;
  const index = new CaptionIndex(train.rows.map((r) => r.caption ?? r.text));
  const byKey = new Map<string, { mean: Float64Array; exact: boolean }>();
  let exact = 0;
  const means = captions.map((caption) => {
    const key = tokenizeForMetrics(caption).join(' ');
    let got = byKey.get(key);
    if (got === undefined) {
      const from = index.rowsFor(caption);
      const mean = new Float64Array(dim);
      for (const i of from.indices) {
        const px = train.bank.images[i]!;
        for (let d = 0; d < dim; d++) mean[d] = mean[d]! + px[d]! / from.indices.length;
      }
      got = { mean, exact: from.exact };
      byKey.set(key, got);
    }
    if (got.exact) exact++;
    return got.mean;
  });
  return { means, exact };
}

/**
 * Search's pixel baseline, scored as evaluateEmbed scores the model: every gallery item's text is a
 * query over all gallery images and every image a query over all texts, relevance by group
 * (relevantItems), recall@k. `items[i].image` is a path.
 */
export async function pixelSearchBaseline(train: PixelCorpus, items: readonly EmbedItem[], o: { ks?: number[] } = {}): Promise<PixelSearchResult> {
  const ks = o.ks ?? [1, 5, 10];
  const { bank, kept, failed } = await ImageBank.load(items.map((it) => it.image), train.bank.size);
  const gallery = kept.map((i) => items[i]!);
  const n = gallery.length;
  const relevant = relevantItems(gallery);
  const chance = Object.fromEntries(ks.map((k) => [`recall@${k}`, chanceRecall(relevant.map((r) => r.length), n, k)]));
  if (n === 0 || train.rows.length === 0) return { items: n, failed: failed.size, textToImage: {}, imageToText: {}, chanceTextToImage: chance, chanceImageToText: {}, exactTitles: 0 };
  const { means, exact } = meanThumbnails(train, gallery.map((it) => it.text));
  return torch.scope(() => {
    const similarity = squaredDistances(means, bank.images, 3 * bank.size * bank.size).neg();  // (texts, images)
    const byPart = partRecalls(gallery, similarity, relevant, ks);
    const i2t = imageToTextRecall(similarity, gallery, ks);
    return {
      items: n, failed: failed.size,
      textToImage: recallAtK(similarity, relevant, ks), imageToText: i2t.recall,
      chanceTextToImage: chance, chanceImageToText: i2t.chance, exactTitles: exact / n, ...(byPart !== undefined ? { byPart } : {}),
    };
  });
}
