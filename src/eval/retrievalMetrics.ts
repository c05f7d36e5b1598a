// Retrieval metrics: recall@k from a query × item similarity matrix, with relevance given per query
// (e.g. items with the same attributes count as relevant for a text query), its chance level, and
// the relevance of an image–caption benchmark (embedEval.ts scores the model on it, pixelBaselines.ts
// the pixel baseline).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

/**
 * Fraction of queries with at least one relevant item among their top k. `relevant[q]` lists the
 * relevant item indices of query q. Ties are broken by libtorch's topk.
 */
export function recallAtK(similarity: Tensor, relevant: readonly (readonly number[])[], ks: readonly number[] = [1, 5, 10]): Record<string, number> {
  const [Q, I] = similarity.shape;
  if (relevant.length !== Q) throw new RangeError(`recallAtK: ${relevant.length} relevance lists for ${Q} queries`);
  const kmax = Math.min(Math.max(...ks), I);
  const top = torch.scope(() => similarity.topk(kmax, 1).indices.toArray() as number[][]);
  const out: Record<string, number> = {};
  for (const k of ks) {
    let hits = 0;
    top.forEach((row, q) => {
      const rel = new Set(relevant[q]);
      if (row.slice(0, k).some((i) => rel.has(i))) hits++;
    });
    out[`recall@${k}`] = Q ? hits / Q : 0;
  }
  return out;
}

export interface EmbedItem {
  id: string;
  image: string;
  text: string;
  /** Items of one group are relevant to each other's queries (default: the caption text). */
  group?: string;
  /** A part of the benchmark to report on its own (the synthetic catalog's seen and novel compositions): its queries against the whole gallery. */
  part?: string;
}

/** Text→image recall of each part's queries over the whole gallery, with its chance level. */
export type PartRecalls = Record<string, { queries: number; textToImage: Record<string, number>; chanceTextToImage: Record<string, number> }>;

/** P(at least one of g relevant items among k random picks of n): the chance level of recall@k. */
export function chanceRecall(groupSizes: readonly number[], n: number, k: number): number {
  let sum = 0;
  for (const g of groupSizes) {
    let missAll = 1;
    for (let i = 0; i < Math.min(k, n); i++) missAll *= Math.max(0, n - g - i) / (n - i);
    sum += 1 - missAll;
  }
  return groupSizes.length ? sum / groupSizes.length : 0;
}

/** For each item, the indices of the items relevant to its query: those of its group (itself included). */
export function relevantItems(items: readonly EmbedItem[]): number[][] {
  const groupOf = (it: EmbedItem) => it.group ?? it.text.trim().toLowerCase();
  const members = new Map<string, number[]>();
  items.forEach((it, i) => {
    const g = groupOf(it);
    members.set(g, [...(members.get(g) ?? []), i]);
  });
  return items.map((it) => members.get(groupOf(it))!);
}

/**
 * Image→text recall over the gallery's **distinct** captions: every image ranks each caption once,
 * and the captions relevant to it are those of its group's items. Ranked with their repeats, a
 * caption that many items share (a label: "dress" for ~90 photos) fills all of an image's top k
 * with one tied score, so recall@10 could not exceed recall@1 while a random ranking's picks stay
 * diverse: the model scored below chance at 5 and 10 by construction. `similarity` is (texts,
 * images), row i the caption of item i.
 */
export function imageToTextRecall(similarity: Tensor, items: readonly EmbedItem[], ks: readonly number[] = [1, 5, 10]): { recall: Record<string, number>; chance: Record<string, number>; captions: number } {
  const captionOf = (it: EmbedItem) => it.text.trim().toLowerCase();
  const groupOf = (it: EmbedItem) => it.group ?? captionOf(it);
  const first = new Map<string, number>();                 // caption → its column among the distinct ones
  const reps: number[] = [];
  items.forEach((it, i) => { if (!first.has(captionOf(it))) { first.set(captionOf(it), reps.length); reps.push(i); } });
  const captionsOfGroup = new Map<string, Set<number>>();
  items.forEach((it) => {
    const g = groupOf(it);
    if (!captionsOfGroup.has(g)) captionsOfGroup.set(g, new Set());
    captionsOfGroup.get(g)!.add(first.get(captionOf(it))!);
  });
  const relevant = items.map((it) => [...captionsOfGroup.get(groupOf(it))!]);
  const recall = torch.scope(() => recallAtK(similarity.indexSelect(0, torch.tensor(Int32Array.from(reps), { dtype: 'int64' })).transpose(0, 1), relevant, ks));
  const chance = Object.fromEntries(ks.map((k) => [`recall@${k}`, chanceRecall(relevant.map((r) => r.length), reps.length, k)]));
  return { recall, chance, captions: reps.length };
}

/** Text→image recall of each part's queries against the whole gallery (undefined when no item names a part). */
export function partRecalls(kept: readonly EmbedItem[], sim: Tensor, relevant: readonly number[][], ks: readonly number[]): PartRecalls | undefined {
  const parts = new Map<string, number[]>();
  kept.forEach((it, i) => { if (it.part !== undefined) parts.set(it.part, [...(parts.get(it.part) ?? []), i]); });
  if (parts.size === 0) return undefined;
  const out: PartRecalls = {};
  for (const [part, rows] of [...parts].sort(([a], [b]) => a.localeCompare(b))) {
    const rel = rows.map((q) => relevant[q]!);
    const chance: Record<string, number> = {};
    for (const k of ks) chance[`recall@${k}`] = chanceRecall(rel.map((r) => r.length), kept.length, k);
    const textToImage = recallAtK(sim.indexSelect(0, torch.tensor(Int32Array.from(rows), { dtype: 'int64' })), rel, ks);
    out[part] = { queries: rows.length, textToImage, chanceTextToImage: chance };
  }
  return out;
}

/**
 * Recall@k and nDCG@k of ranked result lists (best first), binary relevance: `ranked[q]` holds item
 * indices, `relevant[q]` those that count for query q. nDCG's ideal ranking puts every relevant item
 * first, so a query with g relevant items scores 1 when its top min(g, k) are all relevant.
 */
export function rankedListMetrics(ranked: readonly (readonly number[])[], relevant: readonly (readonly number[])[], ks: readonly number[], ndcgK: number): Record<string, number> {
  if (ranked.length !== relevant.length) throw new RangeError(`rankedListMetrics: ${ranked.length} result lists for ${relevant.length} relevance lists`);
  const out: Record<string, number> = {};
  const Q = ranked.length;
  for (const k of ks) {
    const hits = ranked.filter((row, q) => { const rel = new Set(relevant[q]); return row.slice(0, k).some((i) => rel.has(i)); }).length;
    out[`recall@${k}`] = Q ? hits / Q : 0;
  }
  let sum = 0;
  ranked.forEach((row, q) => {
    const rel = new Set(relevant[q]);
    const dcg = row.slice(0, ndcgK).reduce((s, i, r) => s + (rel.has(i) ? 1 / Math.log2(r + 2) : 0), 0);
    sum += dcg / idealDcg(rel.size, ndcgK);
  });
  out[`ndcg@${ndcgK}`] = Q ? sum / Q : 0;
  return out;
}

/** DCG of a ranking with its g relevant items first, cut at k. */
function idealDcg(g: number, k: number): number {
  let s = 0;
  for (let r = 0; r < Math.min(g, k); r++) s += 1 / Math.log2(r + 2);
  return s;
}

/** The nDCG@k a random ranking of n items scores, averaged over queries with these relevant-set sizes: each position holds a relevant item with probability g/n. */
export function chanceNdcg(groupSizes: readonly number[], n: number, k: number): number {
  if (!groupSizes.length || n === 0) return 0;
  let positions = 0;
  for (let r = 0; r < Math.min(k, n); r++) positions += 1 / Math.log2(r + 2);
  return groupSizes.reduce((s, g) => s + ((g / n) * positions) / idealDcg(g, k), 0) / groupSizes.length;
}
