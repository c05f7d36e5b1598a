// What the training loop knows about its own progress: the losses (first, recent, smoothed per
// task), the MoE drop rate, step times and throughput, and the bad examples it has seen. It turns
// each step's outcome into the metrics.jsonl record and the progress line, and estimates how many
// steps a time budget allows.
import { formatBadRow } from '../data/badRows.js';
import type { Batch } from '../data/loader.js';
import type { MetricsLog, TrainMetric } from './metrics.js';
import type { ProgressLine, ProgressSnapshot } from './progress.js';
import type { StepOutcome } from './trainStep.js';

/** Exponential moving average with factor 0.9; the first value starts it. */
const smooth = (prev: number | undefined, x: number): number => (prev === undefined || Number.isNaN(prev) ? x : 0.9 * prev + 0.1 * x);

export class TrainStats {
  firstLoss = NaN;
  smoothedLoss = NaN;
  lastLr = 0;
  stepsThisRun = 0;
  tokensThisRun = 0;
  /** Positions over the whole run (a resumed run starts from its checkpoint's count). */
  tokensSeen: number;
  private readonly recentLosses: number[] = [];
  private readonly smoothedTasks: Record<string, number> = {};
  private smoothedMoeDropped: number | undefined;
  /** Seconds of each step after the first (which pays one-time costs). */
  private readonly stepTimes: number[] = [];
  private readonly reportedBad = new Set<string>();
  private badRowsSeen = 0;

  constructor(tokensSeen: number, private readonly started: number) {
    this.tokensSeen = tokensSeen;
  }

  /** Seconds since this invocation started training. */
  elapsed(): number {
    return (Date.now() - this.started) / 1000;
  }

  /**
   * Reports the bad examples of a batch: each one named once (they come back every epoch), the
   * first 20 on the progress line; the count goes on in metrics.jsonl.
   */
  noteBadRows(batch: Batch, step: number, progress: ProgressLine, metrics: MetricsLog): void {
    if (batch.bad.length === 0) return;
    this.badRowsSeen += batch.bad.length;
    for (const b of batch.bad) {
      if (this.reportedBad.has(b.source)) continue;
      this.reportedBad.add(b.source);
      if (this.reportedBad.size <= 20) progress.log(`skipped a bad example: ${formatBadRow(b)}`);
      if (this.reportedBad.size === 20) progress.log('(further bad examples are counted in metrics.jsonl, not listed)');
    }
    metrics.write({ kind: 'event', step, event: 'bad-rows', detail: `${batch.bad.length} dropped from batch ${batch.step}` });
  }

  /** Counts a step that ran (finite or not) and took `seconds`. */
  countStep(outcome: StepOutcome, lr: number, seconds: number): void {
    this.stepsThisRun++;
    this.tokensSeen += outcome.positions;
    this.tokensThisRun += outcome.positions;
    this.lastLr = lr;
    if (this.stepsThisRun > 1) this.stepTimes.push(seconds);
  }

  /** The steps a time budget allows, from recent step times (null until three steps are timed). */
  stepsInBudget(step: number, budgetMs: number): number | null {
    if (this.stepTimes.length < 3) return null;
    const recent = this.stepTimes.slice(-50);
    const perStep = recent.reduce((a, b) => a + b, 0) / recent.length;
    return Math.max(step + 1, Math.floor(step + (budgetMs - (Date.now() - this.started)) / 1000 / perStep));
  }

  /** Takes a finite step's losses into the running figures; returns its metrics.jsonl record. */
  recordFinite(step: number, outcome: StepOutcome, o: { lr: number; priorSeconds: number; stepStart: number }): TrainMetric {
    if (Number.isNaN(this.firstLoss)) this.firstLoss = outcome.loss;
    this.recentLosses.push(outcome.loss);
    if (this.recentLosses.length > 20) this.recentLosses.shift();
    this.smoothedLoss = smooth(this.smoothedLoss, outcome.loss);
    const taskLoss: Record<string, number> = {};
    for (const [k, s] of Object.entries(outcome.taskSums)) {
      taskLoss[k] = s.sum / s.n;
      this.smoothedTasks[k] = smooth(this.smoothedTasks[k], taskLoss[k]!);
    }
    const elapsed = this.elapsed();
    const timing = { ...outcome.timing, total: (performance.now() - o.stepStart) / 1000, positions: outcome.positions };
    if (outcome.moe.length > 0) this.smoothedMoeDropped = smooth(this.smoothedMoeDropped, outcome.moe.reduce((n, m) => n + m.dropped, 0) / outcome.moe.length);
    return {
      kind: 'train', step, loss: outcome.loss, taskLoss, lr: o.lr, gradNorm: outcome.gradNorm, tokensPerSecond: this.tokensThisRun / Math.max(elapsed, 1e-9),
      elapsedSeconds: o.priorSeconds + elapsed, timing,
      ...(outcome.moe.length > 0 ? { moe: outcome.moe } : {}),
    };
  }

  /** The progress line's figures after `step`, with the ETA from the steps left and the time budget left. */
  snapshot(step: number, endStep: number, totalSteps: number | null, budgetMs: number, lastStepSeconds: number, nonFiniteSteps: number): ProgressSnapshot {
    const elapsed = this.elapsed();
    const perStep = this.stepTimes.length ? this.stepTimes.reduce((a, b) => a + b, 0) / this.stepTimes.length : lastStepSeconds;
    const stepsLeft = Number.isFinite(endStep) ? endStep - step : null;
    const timeLeft = Number.isFinite(budgetMs) ? Math.max(0, budgetMs / 1000 - elapsed) : null;
    const eta = stepsLeft !== null ? (timeLeft !== null ? Math.min(timeLeft, stepsLeft * perStep) : stepsLeft * perStep) : timeLeft;
    return {
      step, totalSteps: Number.isFinite(endStep) ? endStep : totalSteps, loss: this.smoothedLoss, taskLoss: { ...this.smoothedTasks }, lr: this.lastLr,
      tokensPerSecond: this.tokensThisRun / Math.max(elapsed, 1e-9), etaSeconds: eta, nonFiniteSteps,
      ...(this.smoothedMoeDropped !== undefined ? { moeDropped: this.smoothedMoeDropped } : {}),
    };
  }

  /** Mean loss over the last few finite steps. */
  finalLoss(): number {
    return this.recentLosses.length ? this.recentLosses.reduce((a, b) => a + b, 0) / this.recentLosses.length : NaN;
  }

  /** What the run's closing message says about bad examples ('' when there were none). */
  badRowsNote(): string {
    return this.badRowsSeen > 0 ? `; ${this.reportedBad.size} bad examples were skipped (${this.badRowsSeen} times in all)` : '';
  }
}
