import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRanking, rankOf, RankingAccumulator } from '../../src/eval/rankingMetrics.js';

test('rankOf: items scored higher rank above; history is taken out; the target never is', () => {
  const s = Float32Array.from([0.1, 0.9, 0.5, 0.7, 0.3]);
  assert.equal(rankOf(s, 1, []), 0);
  assert.equal(rankOf(s, 2, []), 2);
  assert.equal(rankOf(s, 2, [1]), 1);
  assert.equal(rankOf(s, 2, [1, 3, 1, 0]), 0, 'repeats count once; items below the target change nothing');
  assert.equal(rankOf(s, 2, [2]), 2, 'the target is never excluded');
  assert.throws(() => rankOf(s, 5, []), RangeError);
});

test('rankOf ties: pessimistic by default, by index on request (numpy argsort of -score)', () => {
  const s = Float32Array.from([0.5, 0.5, 0.9, 0.5]);
  assert.equal(rankOf(s, 1, []), 3, 'both other 0.5s and the 0.9 rank above');
  assert.equal(rankOf(s, 1, [], { ties: 'index' }), 2, 'only index 0 of the ties ranks above');
  assert.equal(rankOf(s, 0, [], { ties: 'index' }), 1);
  assert.equal(rankOf(s, 3, [0], { ties: 'index' }), 2);
  // All-equal scores: a constant scorer gets the worst rank, never a lucky first.
  assert.equal(rankOf(new Float32Array(100), 0, []), 99);
  // A NaN target ranks last.
  assert.equal(rankOf(Float32Array.from([NaN, 0.1, 0.2]), 0, []), 2);
});

test('HR@k and NDCG@k over cases', () => {
  const acc = new RankingAccumulator([1, 5]);
  for (const r of [0, 1, 4, 5, 100]) acc.add(r);
  const f = acc.result();
  assert.equal(f.cases, 5);
  assert.equal(f.hr[1], 1 / 5);
  assert.equal(f.hr[5], 3 / 5);
  assert.ok(Math.abs(f.ndcg[1]! - 1 / 5) < 1e-12);
  assert.ok(Math.abs(f.ndcg[5]! - (1 + 1 / Math.log2(3) + 1 / Math.log2(6)) / 5) < 1e-12);
  assert.deepEqual(new RankingAccumulator().result(), { cases: 0, hr: { 5: 0, 10: 0, 20: 0 }, ndcg: { 5: 0, 10: 0, 20: 0 } });
  assert.match(formatRanking(f), /^HR@1 0\.2000  NDCG@1 0\.2000  HR@5 0\.6000/);
  assert.throws(() => new RankingAccumulator([0]), RangeError);
  assert.throws(() => acc.add(-1), RangeError);
});
