// Learning-rate schedules as plain functions of the step: lr(step) = baseLr · factor(step).
// A function is all a schedule is; `applySchedule` writes it into an optimizer's groups.
import type { Optimizer } from './optimizer.js';

export type LrSchedule = (step: number) => number;

export const constant = (): LrSchedule => () => 1;

/** The cosine half-wave from 1 at progress 0 to minRatio at progress 1. */
function cosineDecay(progress: number, minRatio: number): number {
  return minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** lr multiplier at a step: linear warmup, then cosine to minRatio at totalSteps (constant while totalSteps is unknown). */
export function lrFactor(step: number, warmup: number, totalSteps: number | null, minRatio: number): number {
  if (step < warmup) return (step + 1) / warmup;
  if (totalSteps === null || totalSteps <= warmup) return 1;
  if (step >= totalSteps) return minRatio;
  return cosineDecay((step - warmup) / (totalSteps - warmup), minRatio);
}

/**
 * lr multiplier of a run bounded by time (--minutes, no --steps): linear warmup in steps, then a
 * cosine over the fraction of the time budget used, so the decay ends when the budget does however
 * the step time drifts (a shared machine's does).
 */
export function timeLrFactor(step: number, warmup: number, budgetFraction: number, minRatio: number): number {
  if (step < warmup) return (step + 1) / warmup;
  return cosineDecay(Math.min(1, Math.max(0, budgetFraction)), minRatio);
}

/** Linear warmup from 0 over `warmup` steps, then cosine decay to `minRatio` at `total` (lrFactor as a schedule). */
export function warmupCosine(o: { warmup: number; total: number; minRatio?: number }): LrSchedule {
  const min = o.minRatio ?? 0.1;
  if (o.total <= o.warmup) throw new RangeError(`warmupCosine: total (${o.total}) must exceed warmup (${o.warmup})`);
  return (step) => lrFactor(step, o.warmup, o.total, min);
}

/** Linear warmup, then decay ∝ 1/√step (the Transformer paper's schedule, normalised to 1 at the end of warmup). */
export function inverseSqrt(o: { warmup: number }): LrSchedule {
  const w = Math.max(1, o.warmup);
  return (step) => (step < w ? (step + 1) / w : Math.sqrt(w / (step + 1)));
}

/** Sets each group's lr to its base lr times the schedule at `step`. Base lrs are captured on first use. */
export function applySchedule(opt: Optimizer<{ lr: number }>, schedule: LrSchedule, step: number, baseLrs = baseLrOf(opt)): void {
  const f = schedule(step);
  opt.groups.forEach((g, i) => { g.hyper.lr = baseLrs[i] * f; });
}

const bases = new WeakMap<object, number[]>();
function baseLrOf(opt: Optimizer<{ lr: number }>): number[] {
  let b = bases.get(opt);
  if (!b) { b = opt.groups.map((g) => g.hyper.lr); bases.set(opt, b); }
  return b;
}
