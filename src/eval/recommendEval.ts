// `m6 eval --tasks recommend`: next-item recommendation judged by full ranking. Each held-out
// shopper's target (their last item for test, the one before for validation) is ranked among every
// item of the run, their history left out (S3-Rec's protocol: no sampled negatives), and HR@k and
// NDCG@k are averaged. Beside the model, in the same run on the same split: popularity and
// item-item co-occurrence counted on the training interactions, and the same figures on cold
// items (items with no training interactions), where a count scores nothing and only what the
// model reads of an item (its title) can rank it.
import type { TaskEvaluation, EvalContext, Skipped } from './evaluation.js';
import { sampleExamples } from './evaluation.js';
import { rankOf, RankingAccumulator, type RankingFigures } from './rankingMetrics.js';
import { itemCoOccurrence, popularity, type ItemScorer } from './recommendBaselines.js';
import { historyIndices } from '../tasks/recommendData.js';

export interface RecommendEvalOptions {
  /** Which held-out item each shopper is judged on (default 'test'; choose settings on 'val'). */
  holdout?: 'val' | 'test';
  ks?: number[];
}

interface Case { user: string; history: number[]; target: number; cold: boolean }

/** Figures as flat metric keys: hr10, ndcg10, … (prefix for the cold-item subset). */
function flat(f: RankingFigures, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(f.hr).map(Number)) {
    out[`${prefix}hr${k}`] = f.hr[k]!;
    out[`${prefix}ndcg${k}`] = f.ndcg[k]!;
  }
  return out;
}

/** The held-out cases in the run's item indices; targets the run has no item for cannot be ranked and are counted. */
function casesOf(ctx: EvalContext, holdout: 'val' | 'test'): { cases: Case[]; unknownTargets: number } | Skipped {
  const rd = ctx.data.recommend;
  if (rd === undefined) return { skipped: ctx.skipReason ?? 'the data has no interactions (give --interactions)' };
  const items = ctx.pipeline.items!;
  const warm = new Set<number>();
  for (const seq of rd.split.train.values()) for (const id of seq) { const i = items.index(id); if (i !== undefined) warm.add(i); }
  let unknownTargets = 0;
  const cases: Case[] = [];
  for (const c of holdout === 'val' ? rd.split.val : rd.split.test) {
    const target = items.index(c.target);
    const history = historyIndices(items, c.history);
    if (target === undefined) { unknownTargets++; continue; }
    if (history.length === 0) continue;
    cases.push({ user: c.user, history, target, cold: !warm.has(target) });
  }
  return { cases, unknownTargets };
}

export async function evaluateRecommend(ctx: EvalContext, o: RecommendEvalOptions = {}): Promise<TaskEvaluation | Skipped> {
  const started = Date.now();
  const holdout = o.holdout ?? 'test';
  const ks = o.ks ?? [5, 10, 20];
  const got = casesOf(ctx, holdout);
  if ('skipped' in got) return got;
  const all = got.cases;
  const cases = sampleExamples(all.map((c) => ({ ...c, id: c.user })), ctx.limit);  // the --limit draw, seeded by the shopper
  if (cases.length === 0) return { skipped: `no held-out ${holdout} interactions (every shopper needs 3 or more items)` };
  const items = ctx.pipeline.items!;
  const rd = ctx.data.recommend!;
  const train = [...rd.split.train.values()].map((seq) => historyIndices(items, seq, Infinity));
  const baselines: ItemScorer[] = [popularity(train, items.size), itemCoOccurrence(train, items.size)];
  const model = { all: new RankingAccumulator(ks), cold: new RankingAccumulator(ks) };
  const base = baselines.map(() => ({ all: new RankingAccumulator(ks), cold: new RankingAccumulator(ks) }));
  const chunk = Math.max(64, ctx.batchSize * 8);
  for (let at = 0; at < cases.length; at += chunk) {
    const part = cases.slice(at, at + chunk);
    const scores = ctx.pipeline.scoreHistories(part.map((c) => c.history), { batchSize: Math.max(ctx.batchSize, 64) });
    part.forEach((c, i) => {
      const rank = rankOf(scores[i]!, c.target, c.history);
      model.all.add(rank);
      if (c.cold) model.cold.add(rank);
      baselines.forEach((b, j) => {
        const r = rankOf(b.scores(c.history), c.target, c.history);
        base[j]!.all.add(r);
        if (c.cold) base[j]!.cold.add(r);
      });
    });
    ctx.log(`recommend: ${Math.min(at + chunk, cases.length)}/${cases.length} shoppers ranked (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  const cold = model.cold.result();
  const metrics = { ...flat(model.all.result()), ...(cold.cases > 0 ? flat(cold, 'cold_') : {}) };
  const baselineFigures = base.map((b, j) => ({ name: baselines[j]!.name, values: { ...flat(b.all.result()), ...(cold.cases > 0 ? flat(b.cold.result(), 'cold_') : {}) } }));
  const notes = [
    `full ranking: each ${holdout} target is ranked among all ${items.size} items, the shopper's history left out (no sampled negatives)`,
    `baselines counted on the training interactions of the same split: ${baselineFigures.map((b) => b.name).join(', ')}`,
    `${cold.cases} of the ${cases.length} targets are cold items (no training interactions): the cold_ figures`,
  ];
  if (got.unknownTargets > 0) notes.push(`${got.unknownTargets} targets are items the run has no row for (not in its items.json): left out`);
  return {
    task: 'recommend', available: all.length, evaluated: cases.length, failures: [], metrics,
    baselines: baselineFigures[0]!.values, baselineName: baselineFigures[0]!.name, moreBaselines: baselineFigures.slice(1), notes,
    items: [], seconds: (Date.now() - started) / 1000,
  };
}
