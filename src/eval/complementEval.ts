// Complement recommendation, judged as "fill in the blank" (Polyvore-style): hide one item of a
// held-out basket (an outfit), and rank it among every item of its category given the rest. A
// category-wide candidate set asks "which skirt goes with this top and these boots?", not "is
// this a skirt?".
import { deriveSeed, Rng } from '../data/random.js';
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
