// The baselines every recommender is judged against, over item indices of an ItemVocabulary:
// popularity (PopRec), item-item co-occurrence ("bought X also bought Y") and random. A model that
// does not beat co-occurrence on held-out interactions has learnt nothing a count could not.
import { Rng } from '../data/random.js';
import { rankOf, RankingAccumulator, type RankingFigures } from './rankingMetrics.js';
import { CO_OCCURRENCE_DECAY, coOccurrence, itemCounts, scoreCoOccurrence } from '../search/coOccurrence.js';

export interface ItemScorer { readonly name: string; /** a score per item index (higher = better) for a user with this history (item indices, time order) */ scores(history: readonly number[]): Float32Array }

export function popularity(train: Iterable<readonly number[]>, items: number): ItemScorer {
  const counts = Float32Array.from(itemCounts(train, items));
  return { name: 'popularity', scores: () => counts.slice() };
}

export function randomScorer(items: number, seed: number): ItemScorer {
  const rng = new Rng(seed);
  return {
    name: 'random',
    scores: () => {
      const out = new Float32Array(items);
      for (let i = 0; i < items; i++) out[i] = rng.next();
      return out;
    },
  };
}

export function itemCoOccurrence(
  train: Iterable<readonly number[]>,
  items: number,
  opts: { window?: number; decay?: number; popularityTieBreak?: number } = {},
): ItemScorer {
  const seqs = [...train];
  const sim = coOccurrence(seqs, items, opts.window !== undefined ? { window: opts.window } : {});
  const decay = opts.decay ?? CO_OCCURRENCE_DECAY;
  const weight = opts.popularityTieBreak ?? 1e-6;
  let tieBreak: Float64Array | undefined;
  if (weight > 0) {
    tieBreak = itemCounts(seqs, items);
    let max = 1;
    for (const c of tieBreak) if (c > max) max = c;
    for (let i = 0; i < items; i++) tieBreak[i] = (weight * tieBreak[i]!) / max;
  }
  const scoreOpts = tieBreak !== undefined ? { decay, tieBreak } : { decay };
  return { name: opts.window !== undefined ? `co-occurrence (window ${opts.window})` : 'co-occurrence', scores: (history) => scoreCoOccurrence(sim, history, scoreOpts) };
}

export function evaluateRanking(
  cases: readonly { history: readonly number[]; target: number }[],
  scorer: ItemScorer | ((history: readonly number[]) => Float32Array),
  opts: { ks?: number[]; ties?: 'pessimistic' | 'index'; excludeHistory?: boolean } = {},
): RankingFigures {
  const score = typeof scorer === 'function' ? scorer : (h: readonly number[]) => scorer.scores(h);
  const acc = new RankingAccumulator(opts.ks ?? [5, 10, 20]);
  const rankOpts = opts.ties !== undefined ? { ties: opts.ties } : {};
  for (const c of cases) {
    const scores = score(c.history);
    acc.add(rankOf(scores, c.target, opts.excludeHistory === false ? [] : c.history, rankOpts));
  }
  return acc.result();
}
