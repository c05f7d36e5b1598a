// `m6 eval` for answer: answer each held-out question (with its product image when the row has one)
// and count exact matches after trimming, lower-casing and dropping a final full stop
// (syntheticEval's normaliseAnswer). The baseline is always giving the commonest reference answer.
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
  const notes = ['exact match after trimming, lower-casing and dropping a final full stop; baseline: always the commonest reference answer'];
  if (failures.length > 0) notes.push(`${failures.length} item(s) failed (e.g. ${failures[0]!.id}: ${failures[0]!.error}) and are left out of the metric`);
  return {
    task: 'answer', available: ctx.available, evaluated: items.length, failures,
    metrics: { exactMatch: items.length ? items.filter((a) => a.ok).length / items.length : 0 },
    baselines: { exactMatch: majorityShare(items.map((a) => normaliseAnswer(a.reference))) },
    notes, items, seconds: (Date.now() - started) / 1000,
  };
}
