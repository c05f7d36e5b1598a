// The baselines every recommender is judged against, over item indices of an ItemVocabulary:
// popularity (PopRec), item-item co-occurrence ("bought X also bought Y") and random. A model that
// does not beat co-occurrence on held-out interactions has learnt nothing a count could not.
import { Rng } from '../data/random.js';
import { rankOf, RankingAccumulator, type RankingFigures } from './rankingMetrics.js';

export interface ItemScorer { readonly name: string; /** a score per item index (higher = better) for a user with this history (item indices, time order) */ scores(history: readonly number[]): Float32Array }

function checkItem(i: number, items: number, where: string): void {
  if (!(Number.isInteger(i) && i >= 0 && i < items)) throw new RangeError(`${where}: item index ${i} is outside 0..${items - 1}`);
}

/** How often each item occurs over the sequences. */
export function itemCounts(train: Iterable<readonly number[]>, items: number): Float64Array {
  const counts = new Float64Array(items);
  for (const seq of train) {
    for (const i of seq) {
      checkItem(i, items, 'itemCounts');
      counts[i]!++;
    }
  }
  return counts;
}

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

/** Item-item similarity as compressed rows: row i's neighbours are cols[start[i]..start[i+1]). */
export interface CoOccurrence { items: number; start: Int32Array; cols: Int32Array; values: Float32Array }

/**
 * Cosine co-occurrence c(i,j)/sqrt(n_i n_j): c counts the sequences holding both (or, with a
 * window, the position pairs at most `window` apart), n_i the sequences holding i. Built row by
 * row from an inverted index with a dense scratch row, so the cost is the sum of squared sequence
 * lengths (Beauty: well under a second), not items².
 */
export function coOccurrence(train: Iterable<readonly number[]>, items: number, opts: { window?: number } = {}): CoOccurrence {
  const seqs = [...train];
  const window = opts.window;
  if (window !== undefined && !(Number.isInteger(window) && window > 0)) throw new RangeError(`coOccurrence: window must be a positive integer, got ${window}`);
  // Occurrences of each item: (sequence, position) pairs; n_i = distinct sequences holding i.
  const occStart = new Int32Array(items + 1);
  const n = new Float64Array(items);
  const lastSeq = new Int32Array(items).fill(-1);
  seqs.forEach((seq, s) => {
    for (const i of seq) {
      checkItem(i, items, 'coOccurrence');
      occStart[i + 1]!++;
      if (lastSeq[i] !== s) { lastSeq[i] = s; n[i]!++; }
    }
  });
  for (let i = 0; i < items; i++) occStart[i + 1]! += occStart[i]!;
  const occSeq = new Int32Array(occStart[items]!);
  const occPos = new Int32Array(occStart[items]!);
  const fill = occStart.slice(0, items);
  seqs.forEach((seq, s) => seq.forEach((i, p) => { const k = fill[i]!++; occSeq[k] = s; occPos[k] = p; }));

  const scratch = new Float64Array(items);
  // Whole-sequence mode counts j once per (row, sequence) visit: seen[j] holds the last visit.
  const seen = new Int32Array(items).fill(-1);
  let visit = 0;
  const touched: number[] = [];
  const start = new Int32Array(items + 1);
  const cols: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < items; i++) {
    let prevSeq = -1;
    for (let k = occStart[i]!; k < occStart[i + 1]!; k++) {
      const s = occSeq[k]!;
      const seq = seqs[s]!;
      if (window === undefined && s === prevSeq) continue;
      prevSeq = s;
      visit++;
      const lo = window === undefined ? 0 : Math.max(0, occPos[k]! - window);
      const hi = window === undefined ? seq.length - 1 : Math.min(seq.length - 1, occPos[k]! + window);
      for (let p = lo; p <= hi; p++) {
        const j = seq[p]!;
        if (j === i || (window === undefined && seen[j] === visit)) continue;
        if (window === undefined) seen[j] = visit;
        if (scratch[j] === 0) touched.push(j);
        scratch[j]!++;
      }
    }
    touched.sort((a, b) => a - b);
    for (const j of touched) {
      cols.push(j);
      values.push(scratch[j]! / Math.sqrt(n[i]! * n[j]!));
      scratch[j] = 0;
    }
    touched.length = 0;
    start[i + 1] = cols.length;
  }
  return { items, start, cols: Int32Array.from(cols), values: Float32Array.from(values) };
}

/**
 * Sum of the similarity rows of the history's items, the most recent weighted 1 and each step back
 * `decay` times less; plus `popularityTieBreak` × count/max count, so that items no history item
 * co-occurs with (and cold users) fall back to popularity instead of a pessimistic tie.
 */
export function scoreCoOccurrence(sim: CoOccurrence, history: readonly number[], opts: { decay: number; tieBreak?: Float64Array }): Float32Array {
  const acc = new Float64Array(sim.items);
  if (opts.tieBreak !== undefined) acc.set(opts.tieBreak);
  let w = 1;
  for (let t = history.length - 1; t >= 0; t--, w *= opts.decay) {
    const h = history[t]!;
    if (!(h >= 0 && h < sim.items)) continue;      // an item training never saw adds nothing
    for (let k = sim.start[h]!; k < sim.start[h + 1]!; k++) acc[sim.cols[k]!]! += w * sim.values[k]!;
  }
  return Float32Array.from(acc);
}

/** The default recency decay; see the Beauty test for the validation figures that chose it. */
export const CO_OCCURRENCE_DECAY = 0.6;

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
