import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateRanking, itemCoOccurrence, popularity, randomScorer } from '../../src/eval/recommendBaselines.js';
import { coOccurrence } from '../../src/search/coOccurrence.js';
import { Rng } from '../../src/data/random.js';

test('popularity counts items over the sequences', () => {
  const pop = popularity([[0, 1], [1, 2, 1]], 4);
  assert.equal(pop.name, 'popularity');
  assert.deepEqual([...pop.scores([])], [1, 3, 1, 0]);
  assert.throws(() => popularity([[4]], 4), /outside 0\.\.3/);
});

/** c(i,j)/sqrt(n_i n_j) the slow way: every pair of every sequence. */
function bruteCosine(seqs: number[][], items: number, window?: number): number[][] {
  const c = Array.from({ length: items }, () => new Array<number>(items).fill(0));
  const n = new Array<number>(items).fill(0);
  for (const seq of seqs) {
    for (const i of new Set(seq)) n[i]!++;
    if (window === undefined) {
      const set = [...new Set(seq)];
      for (const i of set) for (const j of set) if (i !== j) c[i]![j]!++;
    } else {
      for (let p = 0; p < seq.length; p++) for (let q = 0; q < seq.length; q++) {
        if (p !== q && Math.abs(p - q) <= window && seq[p] !== seq[q]) c[seq[p]!]![seq[q]!]!++;
      }
    }
  }
  return c.map((row, i) => row.map((v, j) => (v === 0 ? 0 : v / Math.sqrt(n[i]! * n[j]!))));
}

test('co-occurrence matches the pairwise count, whole sequence and windowed', () => {
  const rng = new Rng(3);
  const items = 30;
  const seqs = Array.from({ length: 80 }, () => Array.from({ length: 2 + rng.int(8) }, () => rng.int(items)));
  for (const window of [undefined, 2]) {
    const sim = coOccurrence(seqs, items, window !== undefined ? { window } : {});
    const want = bruteCosine(seqs, items, window);
    for (let i = 0; i < items; i++) {
      const row = new Array<number>(items).fill(0);
      for (let k = sim.start[i]!; k < sim.start[i + 1]!; k++) row[sim.cols[k]!] = sim.values[k]!;
      for (let j = 0; j < items; j++) assert.ok(Math.abs(row[j]! - want[i]![j]!) < 1e-6, `window ${window}: (${i},${j}) ${row[j]} vs ${want[i]![j]}`);
    }
  }
});

test('co-occurrence scores sum the history rows, recent items weighted more; popularity breaks ties', () => {
  const train = [[0, 1], [0, 1], [2, 3], [3, 4], [4, 4, 4]];
  const scorer = itemCoOccurrence(train, 6, { decay: 0.5 });
  const s = scorer.scores([0, 2]);
  // Item 2 (most recent, weight 1) co-occurs with 3; item 0 (weight 0.5) with 1.
  assert.ok(s[3]! > s[1]! && s[1]! > s[4]!, [...s].join(' '));
  // 4 (seen 4 times) and 5 (never) get no co-occurrence: popularity orders them.
  assert.ok(s[4]! > s[5]!);
  const plain = itemCoOccurrence(train, 6, { popularityTieBreak: 0 });
  assert.equal(plain.scores([0])[4], 0);
  // A 12k-item, 200k-interaction log builds quickly (the Beauty test times the real one).
  const rng = new Rng(1);
  const big = Array.from({ length: 20000 }, () => Array.from({ length: 10 }, () => Math.floor(12000 * rng.next() ** 2)));
  const t0 = performance.now();
  const co = itemCoOccurrence(big, 12000);
  co.scores(big[0]!);
  assert.ok(performance.now() - t0 < 20000, `${(performance.now() - t0).toFixed(0)} ms`);
});

test('evaluateRanking: history excluded by default; a scorer that knows the answer gets HR 1', () => {
  const cases = [{ history: [0, 1], target: 2 }, { history: [2], target: 3 }];
  const oracle = (h: readonly number[]): Float32Array => {
    const s = new Float32Array(5);
    s[h.includes(0) ? 2 : 3] = 1;
    return s;
  };
  assert.deepEqual(evaluateRanking(cases, oracle, { ks: [1] }), { cases: 2, hr: { 1: 1 }, ndcg: { 1: 1 } });
  // Popularity [0]=.., history items rank above the target unless excluded.
  const pop = popularity([[0, 0, 0, 1, 1, 2]], 5);
  assert.equal(evaluateRanking([cases[0]!], pop, { ks: [1] }).hr[1], 1);
  assert.equal(evaluateRanking([cases[0]!], pop, { ks: [1, 3], excludeHistory: false }).hr[1], 0);
  const random = randomScorer(5, 9);
  assert.equal(random.scores([]).length, 5);
  assert.notDeepEqual(random.scores([]), random.scores([]));
  assert.deepEqual(randomScorer(5, 9).scores([]), randomScorer(5, 9).scores([]));
});
