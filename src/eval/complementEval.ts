// Complement recommendation, judged as "fill in the blank" (Polyvore-style): hide one item of a
// held-out basket (an outfit), and rank it among every item of its category given the rest. A
// category-wide candidate set asks "which skirt goes with this top and these boots?", not "is
// this a skirt?".
import { deriveSeed, Rng } from '../data/random.js';
import { readInteractions } from '../data/interactions.js';
import { holdOutBaskets } from '../data/interactionSplit.js';
import type { EvalContext, Skipped, TaskEvaluation } from './evaluation.js';
import { complementScores } from '../search/recommendations.js';
import { coOccurrence, itemCounts, scoreCoOccurrence } from '../search/coOccurrence.js';
import { rankOf, RankingAccumulator, type RankingFigures } from './rankingMetrics.js';

/** Scores for `candidates` (one per candidate, higher = goes better) given the rest of a basket. */
export type ComplementScorer = (rest: readonly number[], candidates: readonly number[]) => Float32Array;

export function fillInTheBlank(
  baskets: ReadonlyMap<string, readonly number[]>,
  categoryOf: (item: number) => string | undefined,
  scorer: (rest: readonly number[], candidates: readonly number[]) => Float32Array,
  opts: { seed: number; ks?: number[]; /** Item indices are 0..items-1 (default: the largest index in the baskets + 1). */ items?: number },
): RankingFigures {
  let items = opts.items ?? 0;
  if (opts.items === undefined) for (const b of baskets.values()) for (const i of b) items = Math.max(items, i + 1);
  const byCategory = new Map<string, number[]>();
  for (let i = 0; i < items; i++) {
    const c = categoryOf(i);
    if (c === undefined) continue;
    let list = byCategory.get(c);
    if (list === undefined) byCategory.set(c, (list = []));
    list.push(i);
  }
  const acc = new RankingAccumulator(opts.ks ?? [1, 5, 10]);
  for (const [id, basket] of baskets) {
    // Nothing to condition on in a one-item basket.
    if (basket.length < 2) continue;
    // The hidden position depends on the basket id alone: stable when baskets come and go.
    const hide = new Rng(deriveSeed(opts.seed, 'blank', id)).int(basket.length);
    const target = basket[hide]!;
    const candidates = byCategory.get(categoryOf(target) ?? '');
    if (candidates === undefined) continue;
    const rest = basket.filter((_it, i) => i !== hide);
    const scores = scorer(rest, candidates);
    if (scores.length !== candidates.length) throw new RangeError(`fillInTheBlank: the scorer gave ${scores.length} scores for ${candidates.length} candidates`);
    // The rest's own items are not answers (a basket can hold two items of one category).
    const position = new Map(candidates.map((c, i) => [c, i]));
    const exclude = rest.map((r) => position.get(r)).filter((p): p is number => p !== undefined);
    acc.add(rankOf(scores, position.get(target)!, exclude));
  }
  return acc.result();
}

/** "Often bought together": cosine co-occurrence of items within training baskets, summed over the rest; popularity breaks ties. */
export function coOccurrenceComplement(train: Iterable<readonly number[]>, items: number, opts: { popularityTieBreak?: number } = {}): ComplementScorer {
  const baskets = [...train];
  const sim = coOccurrence(baskets, items);
  const counts = itemCounts(baskets, items);
  let max = 1;
  for (const c of counts) if (c > max) max = c;
  const weight = opts.popularityTieBreak ?? 1e-6;
  for (let i = 0; i < items; i++) counts[i] = (weight * counts[i]!) / max;
  return (rest, candidates) => {
    // A basket is a set: every item of the rest counts the same (decay 1).
    const all = scoreCoOccurrence(sim, rest, weight > 0 ? { decay: 1, tieBreak: counts } : { decay: 1 });
    return Float32Array.from(candidates, (c) => all[c]!);
  };
}

export function randomComplement(seed: number): ComplementScorer {
  const rng = new Rng(seed);
  return (_rest, candidates) => Float32Array.from(candidates, () => rng.next());
}

/** Share of baskets held out for `m6 eval --tasks complement` (by basket id: stable as baskets come and go). */
export const HELD_OUT_BASKETS = 0.2;

/** m6's complements as `m6 recommend --complement` serves them (search/recommendations.ts), learnt from these baskets. */
export function modelComplement(train: Iterable<readonly number[]>, items: number, similarity: (item: number) => Float32Array, mix: number): ComplementScorer {
  const baskets = [...train];
  const source = { sim: coOccurrence(baskets, items), counts: itemCounts(baskets, items) };
  return (rest, candidates) => complementScores(source, rest, candidates, similarity, mix);
}

/** Blends of popularity and the item vectors tried on validation baskets (a part of the training ones). */
const COMPLEMENT_MIXES = [0, 0.25, 0.5, 0.75, 1];

/** `m6 eval --tasks complement`: fill in the blank over held-out baskets, m6 beside co-occurrence and random. */
export async function evaluateComplement(ctx: EvalContext): Promise<TaskEvaluation | Skipped> {
  const started = Date.now();
  const spec = ctx.spec.baskets;
  if (spec === undefined) return { skipped: 'the data names no baskets (give --baskets FILE, or "baskets" in the spec: one row per (basket, item))' };
  if (!ctx.pipeline.supports('recommend')) return { skipped: ctx.pipeline.whyNot('recommend')! };
  const items = ctx.pipeline.items!;
  const labels = new Map(ctx.data.rows.filter((r) => r.label !== undefined).map((r) => [r.id, r.label!]));
  if (labels.size === 0) return { skipped: 'complements are ranked within the hidden item\'s category: the catalog needs a label column (--label-col)' };
  const log = await readInteractions(spec);
  const { train, test } = holdOutBaskets(log.sequences, HELD_OUT_BASKETS, 0);
  const toIdx = (ids: readonly string[]) => ids.map((id) => items.index(id)).filter((i): i is number => i !== undefined);
  const testIdx = new Map([...test].map(([id, b]) => [id, toIdx(b)]));
  const trainIdx = [...train.values()].map(toIdx);
  const categoryOf = (i: number) => labels.get(items.ids[i]!);
  const opts = { seed: 0, ks: [1, 5, 10], items: items.size };
  // The blend is chosen on validation baskets held out of the training ones; the test baskets are scored once.
  const inner = holdOutBaskets(new Map([...train].map(([id, b]) => [id, b])), HELD_OUT_BASKETS, 1);
  const innerVal = new Map([...inner.test].map(([id, b]) => [id, toIdx(b)]));
  const innerTrain = [...inner.train.values()].map(toIdx);
  const similarity = (i: number) => ctx.pipeline.itemSimilarities(i);
  const valHr = COMPLEMENT_MIXES.map((mix) => fillInTheBlank(innerVal, categoryOf, modelComplement(innerTrain, items.size, similarity, mix), opts).hr[10]!);
  const mix = COMPLEMENT_MIXES[valHr.indexOf(Math.max(...valHr))]!;
  const m6 = fillInTheBlank(testIdx, categoryOf, modelComplement(trainIdx, items.size, similarity, mix), opts);
  const co = fillInTheBlank(testIdx, categoryOf, coOccurrenceComplement(trainIdx, items.size), opts);
  const rnd = fillInTheBlank(testIdx, categoryOf, randomComplement(0), opts);
  const flat = (f: RankingFigures) => Object.fromEntries(Object.keys(f.hr).map((k) => [`hr${k}`, f.hr[Number(k)]!]));
  return {
    task: 'complement', available: test.size, evaluated: m6.cases, failures: [], metrics: flat(m6), baselines: flat(rnd), baselineName: 'random',
    moreBaselines: [{ name: 'co-occurrence', values: flat(co) }],
    notes: [
      `fill in the blank: one seeded item of each of ${m6.cases} held-out baskets (${Math.round(HELD_OUT_BASKETS * 100)}% of ${log.sequences.size}, by basket id) is hidden and ranked among every item of its category, given the rest`,
      `m6 = co-occurrence in the training baskets, the rest by popularity blended with the run's item vectors (share ${mix}, chosen on validation baskets: HR@10 ${valHr.map((h, i) => `${COMPLEMENT_MIXES[i]}: ${h.toFixed(3)}`).join(', ')})`,
    ],
    items: [], seconds: (Date.now() - started) / 1000,
  };
}
