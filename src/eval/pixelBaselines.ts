// Baselines that are hard to beat because they look at the pixels, not because they learn anything:
// images shrunk to 16×16 RGB and compared by squared distance. On a catalog whose colour fills the
// picture, a model that does not beat these has learnt less than a thumbnail already says.
//
// - describe: copy the caption of the nearest training image (judged like the model's descriptions).
// - search (text→image): the training products whose title is the query's (else those sharing the
//   most title words) give a mean thumbnail; the gallery is ranked by distance to it.
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { ImageBank } from '../data/imageBank.js';
import { chanceRecall, partRecalls, relevantItems, type EmbedEvalResult, type EmbedItem } from './embedEval.js';
import { recallAtK } from './retrievalMetrics.js';
import { describeReference, judgeDescription, type CatalogItem } from './syntheticEval.js';
import { ciderD, tokenizeForMetrics } from './textMetrics.js';

/** The side of the thumbnails the baselines compare. */
export const BASELINE_PIXELS = 16;

/** Training products as the baselines see them: `items[i]`'s thumbnail is `bank.images[i]`. */
export interface PixelCorpus { items: CatalogItem[]; bank: ImageBank; failed: number }

/** Thumbnails of the products' images (paths relative to imageRoot); a product whose image cannot be read is left out and counted. */
export async function loadPixelCorpus(items: readonly CatalogItem[], imageRoot: string, size = BASELINE_PIXELS): Promise<PixelCorpus> {
  const { bank, kept, failed } = await ImageBank.load(items.map((it) => join(imageRoot, it.image)), size);
  return { items: kept.map((i) => items[i]!), bank, failed: failed.size };
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

/** For each query thumbnail, the index of the nearest corpus thumbnail (ties: the first). */
export function nearestImages(corpus: readonly Uint8Array[], queries: readonly Uint8Array[]): number[] {
  if (!queries.length) return [];
  if (!corpus.length) throw new RangeError('nearestImages: an empty corpus has no nearest image');
  const dim = corpus[0]!.length;
  return torch.scope(() => squaredDistances(queries, corpus, dim).argmin(1).toArray() as number[]);
}

export interface NearestDescribeResult {
  items: number;
  /** Held-out products left out because their image could not be read. */
  failed: number;
  categoryAccuracy: number;
  colourAccuracy: number;
  ciderD: number;
  /** Each judged product's verdicts, for figures by part (seen and novel compositions). */
  judgements: Array<{ id: string; categoryOk: boolean; colourOk: boolean }>;
  examples: Array<{ id: string; nearest: string; caption: string }>;
}

/** describe's nearest-neighbour baseline: each held-out product gets the caption of the training product whose thumbnail is nearest. */
export async function nearestNeighbourDescribe(train: PixelCorpus, heldOut: readonly CatalogItem[], imageRoot: string): Promise<NearestDescribeResult> {
  const queries = await loadPixelCorpus(heldOut, imageRoot, train.bank.size);
  const nearest = nearestImages(train.bank.images, queries.bank.images);
  const judged = queries.items.map((it, q) => {
    const from = train.items[nearest[q]!]!;
    return { it, from, caption: describeReference(from), ...judgeDescription(it, describeReference(from)) };
  });
  const share = (xs: boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : 0);
  return {
    items: judged.length, failed: queries.failed,
    categoryAccuracy: share(judged.map((j) => j.categoryOk)),
    colourAccuracy: share(judged.map((j) => j.colourOk)),
    // Against the same references as the model's descriptions (evaluateSynthetic).
    ciderD: ciderD(judged.map((j) => ({ candidate: j.caption, references: [describeReference(j.it)] }))),
    judgements: judged.map((j) => ({ id: j.it.id, categoryOk: j.categoryOk, colourOk: j.colourOk })),
    examples: judged.slice(0, 6).map((j) => ({ id: j.it.id, nearest: j.from.id, caption: j.caption })),
  };
}

/**
 * The training products a title stands for: those with exactly this title (case and punctuation
 * aside), else those sharing the most distinct title words with it, else (no word in common) all.
 */
export function productsForTitle(title: string, trainTitles: readonly string[]): { indices: number[]; exact: boolean } {
  const want = tokenizeForMetrics(title).join(' ');
  const exact = trainTitles.flatMap((t, i) => (tokenizeForMetrics(t).join(' ') === want ? [i] : []));
  if (exact.length) return { indices: exact, exact: true };
  const words = new Set(tokenizeForMetrics(title));
  const common = trainTitles.map((t) => {
    let n = 0;
    for (const w of new Set(tokenizeForMetrics(t))) if (words.has(w)) n++;
    return n;
  });
  const best = Math.max(0, ...common);
  return { indices: common.flatMap((c, i) => (c === best ? [i] : [])), exact: false };
}

export interface PixelSearchResult {
  items: number;
  /** Gallery items left out because their image could not be read. */
  failed: number;
  /** The pixel nearest-neighbour ranking's recall@k, text→image. */
  textToImage: Record<string, number>;
  /** A random ranking's recall@k (chanceRecall) over the same gallery and relevance. */
  chanceTextToImage: Record<string, number>;
  /** Share of queries whose title some training product has exactly. */
  exactTitles: number;
  /** Recall of each part's queries (items with a `part`), as evaluateEmbed reports the model's. */
  byPart?: EmbedEvalResult['byPart'];
}

/**
 * Search's pixel baseline, scored as evaluateEmbed scores the model: every gallery item's text is a
 * query over all gallery images, relevance by group (relevantItems), recall@k. `items[i].image` is a path.
 */
export async function pixelSearchBaseline(train: PixelCorpus, items: readonly EmbedItem[], o: { ks?: number[] } = {}): Promise<PixelSearchResult> {
  const ks = o.ks ?? [1, 5, 10];
  const { bank, kept, failed } = await ImageBank.load(items.map((it) => it.image), train.bank.size);
  const gallery = kept.map((i) => items[i]!);
  const n = gallery.length, dim = 3 * bank.size * bank.size;
  const titles = train.items.map((it) => it.title);
  const means = new Map<string, Float64Array>();
  const exactKeys = new Set<string>();
  let exact = 0;
  // Many queries share a title: each title's mean thumbnail is computed once.
  const queries = gallery.map((it) => {
    const key = tokenizeForMetrics(it.text).join(' ');
    let mean = means.get(key);
    if (mean === undefined) {
      const from = productsForTitle(it.text, titles);
      mean = new Float64Array(dim);
      for (const i of from.indices) {
        const px = train.bank.images[i]!;
        for (let d = 0; d < dim; d++) mean[d] = mean[d]! + px[d]! / from.indices.length;
      }
      means.set(key, mean);
      if (from.exact) exactKeys.add(key);
    }
    if (exactKeys.has(key)) exact++;
    return mean;
  });
  const relevant = relevantItems(gallery);
  const chance = Object.fromEntries(ks.map((k) => [`recall@${k}`, chanceRecall(relevant.map((r) => r.length), n, k)]));
  if (n === 0 || train.items.length === 0) return { items: n, failed: failed.size, textToImage: {}, chanceTextToImage: chance, exactTitles: n ? exact / n : 0 };
  return torch.scope(() => {
    const similarity = squaredDistances(queries, bank.images, dim).neg();
    const byPart = partRecalls(gallery, similarity, relevant, ks);
    return { items: n, failed: failed.size, textToImage: recallAtK(similarity, relevant, ks), chanceTextToImage: chance, exactTitles: exact / n, ...(byPart !== undefined ? { byPart } : {}) };
  });
}
