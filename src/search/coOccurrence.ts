// Item-item co-occurrence ("customers who bought X also bought Y"): cosine similarity of items by
// the sequences or baskets that hold both, stored as sparse rows. It is the baseline every
// recommender is judged against (eval/recommendBaselines.ts) and what complements are served from
// (items of other categories bought together), so it lives with search, below both.

export function checkItem(i: number, items: number, where: string): void {
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

