// Recommendations out of a trained M6 (the recommend task): a shopper's items in time order →
// one query → a score for every item of the run's item table; "more like this" is the cosine of
// two items' vectors. The item vectors are computed once per call and every item is scored: a
// catalog is a few thousand to a few hundred thousand rows, one matrix product.
import * as torch from '../torch/index.js';
import type { ItemVocabulary } from '../data/itemVocabulary.js';
import type { M6Model } from '../model/index.js';
import { encodeSource } from '../data/loader.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { TASKS } from '../tasks/instructions.js';
import { RECOMMEND_WINDOW } from '../tasks/recommendData.js';
import { chunks, sourceTensors } from './inputs.js';
import type { ComputeContext } from './text.js';

export interface RecommendedItem { id: string; score: number }

export type RecommendResult = { ok: true; items: RecommendedItem[]; unknown: string[] } | { ok: false; error: string };

export interface RecommendOptions {
  /** Items per history (default 10). */
  k?: number;
  /** Leave out items already in the history (default true: a shopper has seen them). */
  excludeHistory?: boolean;
  /** Only items this keeps are recommended (a filter of the catalog's columns). */
  keep?: (id: string) => boolean;
  /** Histories run at once (default 64). */
  batchSize?: number;
  context?: ComputeContext;
}

const asIs: ComputeContext = (fn) => fn();

/** A score per item (the vocabulary's order) for each history of item indices (time order, non-empty). */
export function scoreHistories(model: M6Model, tokenizer: Tokenizer, histories: readonly (readonly number[])[], o: { batchSize?: number; context?: ComputeContext } = {}): Float32Array[] {
  const out: Float32Array[] = [];
  const instruction = encodeSource(tokenizer, TASKS.recommend.instruction, model.cfg.maxTextLen);
  const N = model.items?.count ?? 0;
  for (const chunk of chunks(histories, o.batchSize ?? 64)) {
    const scores = (o.context ?? asIs)(() => torch.noGrad(() => torch.scope(() => {
      // The most recent items, as many as a training window held.
      const window = chunk.map((h) => h.slice(-RECOMMEND_WINDOW));
      const T = Math.max(...window.map((h) => h.length));
      const flat = new Int32Array(chunk.length * T).fill(-1);
      window.forEach((h, b) => flat.set(h, b * T));
      const device = model.device;
      const history = torch.tensor(flat, { shape: [chunk.length, T], dtype: 'int64', device });
      const prompt = sourceTensors(chunk.map(() => instruction), tokenizer.padId, device);
      const q = model.recommendQueries({ history, ...prompt }).queries;
      // Each history's query is its last item's state.
      const last = torch.tensor(Int32Array.from(window, (h, b) => b * T + h.length - 1), { dtype: 'int64', device });
      const queries = q.reshape(chunk.length * T, -1).indexSelect(0, last);
      return model.itemScores(queries, model.itemVectors()).float().toTypedArray() as Float32Array;
    })));
    for (let b = 0; b < chunk.length; b++) out.push(scores.subarray(b * N, (b + 1) * N));
  }
  return out;
}

/** The k best items of a score vector, leaving out `exclude` and what `keep` rejects. */
export function topItems(scores: Float32Array, vocabulary: ItemVocabulary, k: number, exclude: ReadonlySet<number>, keep?: (id: string) => boolean): RecommendedItem[] {
  const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const out: RecommendedItem[] = [];
  for (const i of order) {
    if (out.length >= k) break;
    const id = vocabulary.ids[i]!;
    if (exclude.has(i) || (keep !== undefined && !keep(id))) continue;
    out.push({ id, score: scores[i]! });
  }
  return out;
}

/** Recommendations for each history of item ids; ids the run does not know are reported, not fatal. */
export function recommendFor(model: M6Model, tokenizer: Tokenizer, vocabulary: ItemVocabulary, histories: readonly (readonly string[])[], o: RecommendOptions = {}): RecommendResult[] {
  const known = histories.map((h) => h.map((id) => vocabulary.index(id)).filter((i): i is number => i !== undefined));
  const todo = known.map((h, i) => (h.length > 0 ? i : -1)).filter((i) => i >= 0);
  const scores = scoreHistories(model, tokenizer, todo.map((i) => known[i]!), o);
  const results: RecommendResult[] = histories.map((h) => ({ ok: false, error: h.length === 0 ? 'empty history: give at least one item id' : `none of the history's ${h.length} items are items of this run (${h.slice(0, 3).join(', ')}${h.length > 3 ? ', …' : ''})` }));
  todo.forEach((i, b) => {
    const exclude = o.excludeHistory === false ? new Set<number>() : new Set(known[i]);
    results[i] = { ok: true, items: topItems(scores[b]!, vocabulary, o.k ?? 10, exclude, o.keep), unknown: histories[i]!.filter((id) => vocabulary.index(id) === undefined) };
  });
  return results;
}

/** Every item's vector (N × D, row-major, unit length): what "similar items" and an index compare. */
export function allItemVectors(model: M6Model): Float32Array {
  return torch.noGrad(() => torch.scope(() => model.itemVectors().float().toTypedArray() as Float32Array));
}

/** Cosine of every item's vector with item `index`'s. */
export function similarityTo(vectors: Float32Array, dim: number, index: number): Float32Array {
  const n = vectors.length / dim;
  const out = new Float32Array(n);
  const base = index * dim;
  for (let j = 0; j < n; j++) {
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += vectors[base + d]! * vectors[j * dim + d]!;
    out[j] = dot;
  }
  return out;
}
