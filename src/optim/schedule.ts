// Learning-rate schedules as plain functions of the step: lr(step) = baseLr · factor(step).
// A function is all a schedule is; `applySchedule` writes it into an optimizer's groups.
import type { Optimizer } from './optimizer.js';

export type LrSchedule = (step: number) => number;

export const constant = (): LrSchedule => () => 1;

/** Linear warmup from 0 over `warmup` steps, then cosine decay to `minRatio` at `total`. */
export function warmupCosine(o: { warmup: number; total: number; minRatio?: number }): LrSchedule {
  const min = o.minRatio ?? 0.1;
  if (o.total <= o.warmup) throw new RangeError(`warmupCosine: total (${o.total}) must exceed warmup (${o.warmup})`);
  return (step) => {
    if (step < o.warmup) return (step + 1) / o.warmup;
    if (step >= o.total) return min;
    const progress = (step - o.warmup) / (o.total - o.warmup);
    return min + (1 - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
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
