// Amazon Beauty (S3-Rec's Beauty.txt): the ranking pipeline must reproduce the published PopRec
// row exactly before any figure of ours on it means anything. Then the honest baselines, counted
// on train only, that a recommender trained here has to beat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readInteractions } from '../../src/data/interactions.js';
import { assertNoLeak, leaveLastOut, type HeldOutCase } from '../../src/data/interactionSplit.js';
import { ItemVocabulary } from '../../src/data/itemVocabulary.js';
import { evaluateRanking, itemCoOccurrence, popularity } from '../../src/eval/recommendBaselines.js';
import { formatRanking, type RankingFigures } from '../../src/eval/rankingMetrics.js';
import { sharedData } from '../helpers.js';

const dir = join(sharedData, 'amazon-beauty');
const skip = existsSync(join(dir, 'Beauty.txt')) ? false : `${dir}/Beauty.txt is absent; the Amazon Beauty check is skipped`;

const round4 = (f: RankingFigures): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const k of [5, 10, 20]) {
    out[`HR@${k}`] = Number(f.hr[k]!.toFixed(4));
    out[`NDCG@${k}`] = Number(f.ndcg[k]!.toFixed(4));
  }
  return out;
};

test('Amazon Beauty: the published PopRec row exactly, then popularity and co-occurrence on train only', { skip }, async (t) => {
  const log = await readInteractions({ file: join(dir, 'Beauty.txt'), format: 'sequences', userCol: 'user', itemCol: 'item' });
  assert.equal(log.bad.total, 0);
  assert.equal(log.sequences.size, 22363);
  const vocab = ItemVocabulary.from([...log.sequences.values()].flat());
  assert.equal(vocab.size, 12101);
  assert.equal([...log.sequences.values()].reduce((n, s) => n + s.length, 0), 198502);
  const split = leaveLastOut(log.sequences);
  assertNoLeak(split, log.sequences);
  assert.equal(split.test.length, 22363, 'every user has at least 5 items (5-core)');
  const idx = (items: readonly string[]): number[] => items.map((i) => vocab.index(i)!);
  const cases = (c: readonly HeldOutCase[]): Array<{ history: number[]; target: number }> => c.map((x) => ({ history: idx(x.history), target: vocab.index(x.target)! }));
  const test = cases(split.test);
  const val = cases(split.val);

  // PopRec as S3-Rec reports it: popularity counted over ALL interactions (test targets included,
  // which is why it is not an honest baseline), full ranking over the 12,101 items with the user's
  // earlier items excluded (S3-Rec's `rating_pred[train_matrix > 0] = 0`). Exclusion is what makes
  // it exact: without it HR@10 is 0.0148. The tie rule is not: pessimistic ties and numpy-style
  // index ties give the same figures to 4 places (popular items rarely tie in count).
  const popAll = popularity([...log.sequences.values()].map(idx), vocab.size);
  const published = { 'HR@5': 0.0080, 'NDCG@5': 0.0044, 'HR@10': 0.0152, 'NDCG@10': 0.0068, 'HR@20': 0.0217, 'NDCG@20': 0.0084 };
  const pessimistic = evaluateRanking(test, popAll);
  assert.deepEqual(round4(pessimistic), published);
  assert.deepEqual(round4(evaluateRanking(test, popAll, { ties: 'index' })), published);
  assert.notDeepEqual(round4(evaluateRanking(test, popAll, { excludeHistory: false })), published);
  t.diagnostic(`PopRec (all interactions, published protocol), test: ${formatRanking(pessimistic)}`);

  // The honest baselines: counted on train only (each user's sequence without its last two items).
  const train = [...split.train.values()].map(idx);
  const pop = popularity(train, vocab.size);
  const t0 = performance.now();
  const co = itemCoOccurrence(train, vocab.size);
  const built = performance.now() - t0;
  const co3 = itemCoOccurrence(train, vocab.size, { window: 3 });
  const figures: Record<string, RankingFigures> = {};
  for (const [name, scorer] of [['popularity', pop], ['co-occurrence', co], ['co-occurrence, window 3', co3]] as const) {
    for (const [part, cs] of [['val', val], ['test', test]] as const) {
      figures[`${name} ${part}`] = evaluateRanking(cs, scorer);
      t.diagnostic(`${name} (train only), ${part}: ${formatRanking(figures[`${name} ${part}`]!)}`);
    }
  }
  t.diagnostic(`co-occurrence built in ${built.toFixed(0)} ms`);
  assert.ok(built < 10000, `co-occurrence took ${built.toFixed(0)} ms to build`);
  for (const part of ['val', 'test']) {
    assert.ok(figures[`co-occurrence ${part}`]!.hr[10]! > 2 * figures[`popularity ${part}`]!.hr[10]!, `co-occurrence should beat popularity well on ${part}`);
  }
});
