// Full-ranking metrics for recommendation: the held-out item's rank among every item (none
// sampled), the user's history taken out of the ranking, then HR@k and NDCG@k over cases. One
// relevant item per case, so NDCG@k is 1/log2(rank+2) inside the top k and 0 outside.

/** 0-based rank of `target` among all items, items in `exclude` (the user's history) removed from the ranking (the target itself is never excluded). Ties are broken pessimistically (items with an equal score rank above the target) unless opts.ties === 'index' (lower index first, like numpy argsort on -score). */
export function rankOf(scores: Float32Array, target: number, exclude: Iterable<number>, opts: { ties?: 'pessimistic' | 'index' } = {}): number {
  if (!(target >= 0 && target < scores.length) || !Number.isInteger(target)) {
    throw new RangeError(`rankOf: target ${target} is not an index of ${scores.length} scores`);
  }
  const t = scores[target]!;
  const byIndex = opts.ties === 'index';
  // Does item i rank above the target? A NaN score ranks below everything, so a broken scorer
  // cannot look good.
  const above = (i: number): boolean => {
    const s = scores[i]!;
    if (Number.isNaN(t)) return !Number.isNaN(s) || (byIndex ? i < target : true);
    return s > t || (s === t && (!byIndex || i < target));
  };
  let rank = 0;
  for (let i = 0; i < scores.length; i++) if (i !== target && above(i)) rank++;
  // Count each excluded item once, and only where it had counted above the target.
  const seen = new Set<number>();
  for (const i of exclude) {
    if (i === target || seen.has(i) || !(i >= 0 && i < scores.length)) continue;
    seen.add(i);
    if (above(i)) rank--;
  }
  return rank;
}

export interface RankingFigures { cases: number; hr: Record<number, number>; ndcg: Record<number, number> }   // keyed by k

export class RankingAccumulator {
  private readonly ks: readonly number[];
  private readonly hits: number[];
  private readonly gains: number[];
  private cases = 0;

  constructor(ks: readonly number[] = [5, 10, 20]) {
    for (const k of ks) if (!(Number.isInteger(k) && k > 0)) throw new RangeError(`RankingAccumulator: k must be a positive integer, got ${k}`);
    this.ks = ks.slice();
    this.hits = ks.map(() => 0);
    this.gains = ks.map(() => 0);
  }

  add(rank: number): void {
    if (!(rank >= 0)) throw new RangeError(`RankingAccumulator.add: rank must be >= 0, got ${rank}`);
    this.cases++;
    const gain = 1 / Math.log2(rank + 2);
    this.ks.forEach((k, j) => {
      if (rank < k) {
        this.hits[j]!++;
        this.gains[j]! += gain;
      }
    });
  }

  result(): RankingFigures {
    const hr: Record<number, number> = {};
    const ndcg: Record<number, number> = {};
    this.ks.forEach((k, j) => {
      hr[k] = this.cases > 0 ? this.hits[j]! / this.cases : 0;
      ndcg[k] = this.cases > 0 ? this.gains[j]! / this.cases : 0;
    });
    return { cases: this.cases, hr, ndcg };
  }
}

/** `HR@5 0.0080  NDCG@5 0.0044  HR@10 …` with 4 decimals, the way papers print them. */
export function formatRanking(f: RankingFigures): string {
  const ks = Object.keys(f.hr).map(Number).sort((a, b) => a - b);
  return ks.map((k) => `HR@${k} ${f.hr[k]!.toFixed(4)}  NDCG@${k} ${f.ndcg[k]!.toFixed(4)}`).join('  ') + `  (${f.cases} cases)`;
}
