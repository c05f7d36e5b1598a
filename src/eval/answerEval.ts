// `m6 eval` for answer: answer each held-out question (with its product image when the row has one)
// and count exact matches after trimming, lower-casing and dropping a final full stop
// (syntheticEval's normaliseAnswer). The baseline is what a model that never looks at the image
// would get: for each question, the commonest answer to the same question in the training rows.
import { examplesOrSkip, inChunks, type EvalContext, type ItemFailure, type Skipped, type TaskEvaluation } from './evaluation.js';
import { TASKS } from '../tasks/instructions.js';
import { majorityShare, normaliseAnswer } from './syntheticEval.js';

export interface AnswerRecord {
  id: string;
  image?: string;
  question: string;
  reference: string;
  generated: string;
  ok: boolean;
}

export interface AnswerEvaluation extends TaskEvaluation<AnswerRecord> {
  task: 'answer';
}

/**
 * The no-image prior: each question's commonest training answer (normalised), and for a question
 * never asked in training the commonest training answer of all. Returns the share it gets right.
 */
export function noImagePrior(train: ReadonlyArray<{ question: string; answer: string }>, items: ReadonlyArray<{ question: string; reference: string }>): number {
  const key = (q: string) => q.trim().toLowerCase();
  const byQuestion = new Map<string, Map<string, number>>();
  const overall = new Map<string, number>();
  for (const t of train) {
    const a = normaliseAnswer(t.answer);
    const counts = byQuestion.get(key(t.question)) ?? new Map<string, number>();
    counts.set(a, (counts.get(a) ?? 0) + 1);
    byQuestion.set(key(t.question), counts);
    overall.set(a, (overall.get(a) ?? 0) + 1);
  }
  // Ties go to the answer seen first: a deterministic choice that does not peek at the test rows.
  const commonest = (counts: Map<string, number> | undefined) => (counts === undefined || counts.size === 0 ? undefined : [...counts].reduce((best, x) => (x[1] > best[1] ? x : best))[0]);
  const fallback = commonest(overall);
  const right = items.filter((it) => (commonest(byQuestion.get(key(it.question))) ?? fallback) === normaliseAnswer(it.reference)).length;
  return items.length ? right / items.length : 0;
}

export async function evaluateAnswer(ctx: EvalContext): Promise<AnswerEvaluation | Skipped> {
  const started = Date.now();
  const examples = examplesOrSkip(ctx);
  if (!Array.isArray(examples)) return examples;
  const questions = examples.map((e) => ({ question: e.source!, ...(e.imagePath !== undefined ? { image: e.imagePath } : {}) }));
  const generated = await inChunks(ctx, 'generated', questions, (part) => ctx.pipeline.answer(part, { batchSize: ctx.batchSize }));
  const failures: ItemFailure[] = [];
  const items: AnswerRecord[] = [];
  examples.forEach((e, i) => {
    const r = generated[i]!;
    if (!r.ok) {
      failures.push({ id: e.id, error: r.error });
      return;
    }
    items.push({
      id: e.id, ...(e.imagePath !== undefined ? { image: e.imagePath } : {}), question: e.source!, reference: e.target!, generated: r.text,
      ok: normaliseAnswer(r.text) === normaliseAnswer(e.target!),
    });
  });
  const train = (ctx.data.train.find((t) => t.name === 'answer')?.examples ?? []).map((e) => ({ question: e.source!, answer: e.target! }));
  const notes = [
    'exact match after trimming, lower-casing and dropping a final full stop',
    `baseline: the no-image prior, each question's commonest answer among the ${train.length} training questions (the commonest of all for a question never asked in training); always giving the commonest held-out answer would score ${(100 * majorityShare(items.map((a) => normaliseAnswer(a.reference)))).toFixed(1)}%`,
  ];
  if (failures.length > 0) notes.push(`${failures.length} item(s) failed (e.g. ${failures[0]!.id}: ${failures[0]!.error}) and are left out of the metric`);
  return {
    task: 'answer', available: ctx.available, evaluated: items.length, failures,
    metrics: { exactMatch: items.length ? items.filter((a) => a.ok).length / items.length : 0 },
    baselines: { exactMatch: noImagePrior(train, items) },
    notes, items, seconds: (Date.now() - started) / 1000,
  };
}
