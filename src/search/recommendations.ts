// Recommendations, once for every door (`m6 recommend`, and the server): a shopper's history, an
// item's look-alikes or its complements → the k best items that pass a filter, with the catalog's
// columns from the index. The run scores every item it knows; the filter is applied to that
// ranking page by page, so a filter that keeps 1% of the catalog still returns k items whenever
// k exist. Complements are items of *other* categories bought together (co-occurrence in baskets
// and sessions); an item with too few of them is completed by the run's own item vectors, so a
// new item still gets an answer.
import type { Pipeline } from '../pipelines/index.js';
import type { ItemVocabulary } from '../data/itemVocabulary.js';
import { InputError } from '../torch/inputError.js';
import type { CatalogIndex } from './catalogIndex.js';
import { coOccurrence, itemCounts, scoreCoOccurrence, type CoOccurrence } from './coOccurrence.js';
import { compileFilter, parseFilter, sqlString, type ColumnReader } from './filter.js';
import type { StoredRow } from './rows.js';

export type RecommendQuery = { history: readonly string[] } | { similar: string } | { complement: string };

export interface RecommendHit {
  id: string;
  score: number;
  title: string;
  label: string;
  price: number | null;
  imagePath: string;
}

/** A query the run cannot answer: `field` names what was wrong (history, similar, complement, user). */
export class RecommendQueryError extends InputError {
  override name = 'RecommendQueryError';
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** What complements are learnt from: co-occurrence over baskets and sessions, how often each item occurs in them, and each item's category. */
export interface ComplementSource {
  sim: CoOccurrence;
  counts: Float64Array;
  categoryOf: (item: number) => string | undefined;
}

/**
 * The share of the run's item vectors (against popularity) in ranking candidates that nothing of
 * the basket co-occurs with. 0.25 was best on the synthetic catalog's validation baskets (the sweep
 * is printed by `m6 eval --tasks complement`, which chooses it again on each dataset's own).
 */
export const COMPLEMENT_MIX = 0.25;

/** Co-occurrence over the run's items from baskets (outfits, orders) and sessions (shoppers' sequences); items the run lacks are left out. */
export function complementSource(vocabulary: ItemVocabulary, groups: Iterable<readonly string[]>, categoryOf: (item: number) => string | undefined): ComplementSource {
  const rows: number[][] = [];
  for (const g of groups) {
    const idx = g.map((id) => vocabulary.index(id)).filter((i): i is number => i !== undefined);
    if (idx.length >= 2) rows.push(idx);
  }
  return { sim: coOccurrence(rows, vocabulary.size), counts: itemCounts(rows, vocabulary.size), categoryOf };
}

/**
 * How well each candidate goes with the rest of a basket: items that co-occur with it first
 * (2 + summed cosine), then the others by popularity blended with the run's item-vector cosine to
 * the rest (`mix` of the latter, in [0, 1]): few co-occurrences are completed rather than cut short,
 * and a new item still gets an answer.
 */
export function complementScores(source: Pick<ComplementSource, 'sim' | 'counts'>, rest: readonly number[], candidates: readonly number[], similarity: (item: number) => Float32Array, mix = COMPLEMENT_MIX): Float32Array {
  const co = scoreCoOccurrence(source.sim, rest, { decay: 1 });
  const items = source.sim.items;
  const cos = new Float32Array(items);
  for (const r of rest) { const s = similarity(r); for (let i = 0; i < items; i++) cos[i]! += s[i]! / rest.length; }
  let max = 1;
  for (const c of source.counts) if (c > max) max = c;
  return Float32Array.from(candidates, (c) => (co[c]! > 0 ? 2 + co[c]! : (1 - mix) * (source.counts[c]! / max) + mix * (cos[c]! + 1) / 2));
}

/**
 * The run's item scores. The server passes one that queues them on its model lane (one batch of
 * model work at a time, histories scored together); the default calls the pipeline directly.
 */
export interface RecommendScorer {
  /** A score for every item (items.ids order) for a history of item indices. */
  history(items: readonly number[]): Promise<Float32Array>;
  /** The cosine of every item's vector with item `item`'s. */
  similarities(item: number): Promise<Float32Array>;
}

/** Scores straight from the pipeline, on the caller's turn (the CLI). */
export function directScorer(pipeline: Pipeline): RecommendScorer {
  return {
    history: async (items) => pipeline.scoreHistories([items])[0]!,
    similarities: async (item) => pipeline.itemSimilarities(item),
  };
}

export interface RecommendContext {
  pipeline: Pipeline;
  /** Default: directScorer(pipeline). */
  scorer?: RecommendScorer;
  /** The catalog's columns (title, label, price, image) and filters; without it results carry ids and scores only. */
  index?: CatalogIndex;
  /** Item id → category from the data's manifest: a result's label where the index has no row (or there is no index). */
  labels?: ReadonlyMap<string, string>;
  complements?: ComplementSource;
}

export interface RecommendCallOptions {
  k: number;
  /** The SQL-like filter of `m6 search` (`label = 'dress' AND price < 40`); needs an index. */
  where?: string;
}

function rowReader(row: StoredRow | undefined): ColumnReader {
  return (column) => (row === undefined ? null : column === 'imagePath' ? row.imagePath : row[column]);
}

/** The compiled filter, if any; one without an index to read columns from is a RecommendQueryError on `where`. */
function filterOf(o: { where?: string; index?: CatalogIndex }): ((read: ColumnReader) => boolean) | undefined {
  if (o.where === undefined) return undefined;
  if (o.index === undefined) throw new RecommendQueryError('where', 'where: a filter needs the catalog index (--index): the run alone has no catalog columns');
  return compileFilter(parseFilter(o.where));
}

/**
 * The first k of `ranked` (best first) that the filter keeps, with their catalog columns. Rows are
 * fetched from the index a page at a time: a selective filter reads further down the ranking
 * instead of returning fewer than k.
 */
export async function firstPassing(ranked: ReadonlyArray<{ id: string; score: number }>, o: RecommendCallOptions & { index?: CatalogIndex; labels?: ReadonlyMap<string, string> }): Promise<RecommendHit[]> {
  const keep = filterOf(o);
  const out: RecommendHit[] = [];
  const page = Math.max(64, 4 * o.k);
  for (let at = 0; at < ranked.length && out.length < o.k; at += page) {
    const part = ranked.slice(at, at + page);
    const rows = o.index !== undefined ? new Map((await o.index.get(part.map((r) => r.id))).map((r) => [r.id, r])) : new Map<string, StoredRow>();
    for (const r of part) {
      const row = rows.get(r.id);
      if (keep !== undefined && !keep(rowReader(row))) continue;
      out.push({ id: r.id, score: r.score, title: row?.title ?? '', label: row?.label ?? o.labels?.get(r.id) ?? '', price: row?.price ?? null, imagePath: row?.imagePath ?? '' });
      if (out.length >= o.k) break;
    }
  }
  return out;
}

/** Item ids by score, best first, leaving out `exclude` (item indices). */
function ranking(vocabulary: ItemVocabulary, scores: Float32Array, exclude: ReadonlySet<number>): Array<{ id: string; score: number }> {
  const order = Array.from(scores.keys()).filter((i) => !exclude.has(i));
  order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  return order.map((i) => ({ id: vocabulary.ids[i]!, score: scores[i]! }));
}

function itemIndex(vocabulary: ItemVocabulary, id: string, field: string): number {
  const i = vocabulary.index(id);
  if (i === undefined) throw new RecommendQueryError(field, `${field}: unknown item '${id}': the run's ${vocabulary.size} items (its items.json) do not include it`);
  return i;
}

/** Complement scores for every item, items of the item's own category (and the item) left out. */
async function complementOf(ctx: RecommendContext, scorer: RecommendScorer, item: number): Promise<{ scores: Float32Array; exclude: Set<number> }> {
  const source = ctx.complements;
  if (source === undefined) throw new RecommendQueryError('complement', 'complement: the data names no baskets or interactions to learn complements from (give the dataset spec with baskets or interactions)');
  const all = Array.from({ length: source.sim.items }, (_, i) => i);
  const similarity = await scorer.similarities(item);
  const scores = complementScores(source, [item], all, () => similarity);
  const own = source.categoryOf(item);
  const exclude = new Set<number>([item]);
  if (own !== undefined) for (const i of all) if (source.categoryOf(i) === own) exclude.add(i);
  return { scores, exclude };
}

/**
 * An item the run has no vector for (added to the catalog after training) but the index has: its
 * nearest items by the index's own (embed) vectors; for complements, only other categories.
 */
async function byIndexVector(ctx: RecommendContext, id: string, mode: 'similar' | 'complement', o: RecommendCallOptions): Promise<RecommendHit[] | undefined> {
  const [row] = ctx.index !== undefined ? await ctx.index.get([id]) : [];
  if (row === undefined || ctx.index === undefined) return undefined;
  const clauses = [o.where, mode === 'complement' && row.label !== '' ? `label != ${sqlString(row.label)}` : undefined].filter((c): c is string => c !== undefined);
  const hits = await ctx.index.search(row.fused, { k: o.k + 1, vectorColumn: 'fused', ...(clauses.length ? { where: clauses.map((c) => `(${c})`).join(' AND ') } : {}) });
  return hits.filter((h) => h.id !== id).slice(0, o.k).map((h) => ({ id: h.id, score: h.score, title: h.title, label: h.label, price: h.price, imagePath: h.imagePath }));
}

/** The k best items for the query that pass the filter. */
export async function recommendItems(ctx: RecommendContext, q: RecommendQuery, o: RecommendCallOptions): Promise<RecommendHit[]> {
  const vocabulary = ctx.pipeline.items;
  ctx.pipeline.require('recommend');
  // A bad filter is told before any scoring is spent on the query.
  filterOf({ ...o, ...(ctx.index !== undefined ? { index: ctx.index } : {}) });
  if (!('history' in q)) {
    const id = 'similar' in q ? q.similar : q.complement;
    if (vocabulary!.index(id) === undefined) {
      const hits = await byIndexVector(ctx, id, 'similar' in q ? 'similar' : 'complement', o);
      if (hits !== undefined) return hits;
    }
  }
  const scorer = ctx.scorer ?? directScorer(ctx.pipeline);
  let scores: Float32Array, exclude: Set<number>;
  if ('history' in q) {
    const known = q.history.map((id) => vocabulary!.index(id)).filter((i): i is number => i !== undefined);
    if (known.length === 0) throw new RecommendQueryError('history', q.history.length === 0 ? 'history: empty: give at least one item id' : `history: none of its ${q.history.length} items are items of the run (${q.history.slice(0, 3).join(', ')}${q.history.length > 3 ? ', …' : ''})`);
    scores = await scorer.history(known);
    exclude = new Set(known);
  } else if ('similar' in q) {
    const item = itemIndex(vocabulary!, q.similar, 'similar');
    scores = await scorer.similarities(item);
    exclude = new Set([item]);
  } else {
    ({ scores, exclude } = await complementOf(ctx, scorer, itemIndex(vocabulary!, q.complement, 'complement')));
  }
  return firstPassing(ranking(vocabulary!, scores, exclude), { ...o, ...(ctx.index !== undefined ? { index: ctx.index } : {}), ...(ctx.labels !== undefined ? { labels: ctx.labels } : {}) });
}
