// The training loop (nanoGPT's train.py as a function): a seeded multitask loader, AdamW with
// warmup + cosine, gradient accumulation, optional bf16 autocast, one tensor scope per step,
// periodic eval and checkpoints, NaN/Inf steps skipped and counted, and a clean stop on request
// (Ctrl-C) with a checkpoint.
//
// Exact resume: what step k does depends only on (weights, optimizer state, k): the loader replays
// its seeded plan to batch k·gradAccum, libtorch's generator is re-seeded from (seed, k) before each
// step (dropout), and the learning rate is a function of k. So 20 steps straight and 10 + resume +
// 10 give the same weights.
import * as torch from '../torch/index.js';
import { deriveSeed } from '../data/random.js';
import { DataLoader, type Batch, type TaskSource } from '../data/loader.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { formatBadRow } from '../data/badRows.js';
import type { M6Model } from '../model/index.js';
import { AdamW, clipGradNorm, type OptimizerState } from '../optim/index.js';
import { batchToTensors } from './batchTensors.js';
import { batchLoss, CONTRASTIVE_TASKS } from './objectives.js';
import { DEFAULT_LOSS_MEAN, type LossMean } from './lossMean.js';
import { saveCheckpoint, type TrainerState } from './checkpoint.js';
import { MetricsLog, readMetrics, type StepTiming } from './metrics.js';
import { writePlots } from './plots.js';
import { formatDuration, ProgressLine } from './progress.js';
import { join } from 'node:path';

export interface TrainOptions {
  runDir: string;
  model: M6Model;
  tokenizer: Tokenizer;
  tasks: TaskSource[];
  /** Held-out examples per task (empty: eval falls back to training examples). */
  evalTasks: TaskSource[];
  /** The step the run ends at (and the cosine schedule's length); null with `minutes`. */
  steps: number | null;
  /** Wall-clock budget of this invocation. */
  minutes: number | null;
  /** Stop (with a checkpoint) at this step even though the schedule plans for more. */
  stopAt?: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  warmup: number;
  minLrRatio: number;
  weightDecay: number;
  clipNorm: number;
  bf16: boolean;
  seed: number;
  evalEvery: number;
  evalBatches: number;
  saveEvery: number;
  keepCheckpoints: number;
  /** Consecutive NaN/Inf steps that stop the run. */
  maxNonFinite: number;
  augment: boolean;
  /** How the generative loss averages over target tokens (objectives.ts). Default DEFAULT_LOSS_MEAN. */
  lossMean?: LossMean;
  workers?: number;
  resume?: { trainer: TrainerState; optimizer: OptimizerState };
  progress?: ProgressLine;
  /** Set to stop after the current step (Ctrl-C). */
  stop?: AbortSignal;
  /** Tests: steps whose loss is made NaN, to exercise the non-finite path. */
  injectNonFinite?: ReadonlySet<number>;
}

export type TrainStatus = 'done' | 'interrupted' | 'non-finite' | 'time';

export interface TrainResult {
  status: TrainStatus;
  step: number;
  /** The last checkpoint written (undefined when none was). */
  checkpoint: string | undefined;
  /** Mean loss over the last few finite steps. */
  finalLoss: number;
  firstLoss: number;
  nonFiniteSteps: number;
  stepsPerSecond: number;
  tokensPerSecond: number;
  message: string;
}

/** AdamW with decay on matrices only (nanoGPT): biases, norms' gains and 1-D parameters are not decayed. */
export function makeOptimizer(model: M6Model, lr: number, weightDecay: number): AdamW {
  const params = model.parameters();
  const decay = params.filter((p) => p.ndim >= 2), noDecay = params.filter((p) => p.ndim < 2);
  return new AdamW([{ params: decay, weightDecay }, { params: noDecay, weightDecay: 0 }], { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8 });
}

/** lr multiplier at a step: linear warmup, then cosine to minRatio at totalSteps (constant while totalSteps is unknown). */
export function lrFactor(step: number, warmup: number, totalSteps: number | null, minRatio: number): number {
  if (step < warmup) return (step + 1) / warmup;
  if (totalSteps === null || totalSteps <= warmup) return 1;
  if (step >= totalSteps) return minRatio;
  const progress = (step - warmup) / (totalSteps - warmup);
  return minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/**
 * lr multiplier of a run bounded by time (--minutes, no --steps): linear warmup in steps, then a
 * cosine over the fraction of the time budget used, so the decay ends when the budget does however
 * the step time drifts (a shared machine's does).
 */
export function timeLrFactor(step: number, warmup: number, budgetFraction: number, minRatio: number): number {
  if (step < warmup) return (step + 1) / warmup;
  const progress = Math.min(1, Math.max(0, budgetFraction));
  return minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/**
 * Closes a loader while holding the event loop open. Why: the image pool unrefs idle workers, and
 * `worker.terminate()` of an unref'd worker does not keep the loop alive, so awaiting it with
 * nothing else pending let Node exit mid-close (exit code 13, "unsettled top-level await").
 */
export async function closeLoader(loader: DataLoader): Promise<void> {
  const keepAlive = setInterval(() => {}, 1000);
  try {
    await loader.close();
  } finally {
    clearInterval(keepAlive);
  }
}

/** Loader batches from `start` on, without end (the loader plans in finite chunks). */
async function* endless(loader: DataLoader, start: number, chunk = 256): AsyncGenerator<Batch> {
  for (let at = start; ; at += chunk) yield* loader.batches({ steps: chunk, startStep: at });
}

function positions(b: Batch, patches: number): number {
  return b.ids.length * ((b.images !== null ? patches : 0) + b.sourceIds.shape[1]! + b.targetIds.shape[1]! - 1);
}

/** Mean loss per task over the first `batches` batches of each task's examples (no grad, eval mode). */
export async function evaluateLoss(model: M6Model, tokenizer: Tokenizer, tasks: readonly TaskSource[], o: { batchSize: number; batches: number; bf16: boolean }): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const wasTraining = model.training;
  model.eval();
  try {
    for (const task of tasks) {
      if (task.examples.length === 0) continue;
      const loader = new DataLoader([task], {
        tokenizer, batchSize: o.batchSize, seed: 0, workers: 0, image: { size: model.cfg.imageSize },
        maxSourceLength: model.cfg.maxTextLen, maxTargetLength: model.cfg.maxTextLen + 1,
      });
      let sum = 0, count = 0;
      try {
        for await (const batch of loader.batches({ steps: Math.min(o.batches, Math.ceil(task.examples.length / o.batchSize)) })) {
          const losses = torch.noGrad(() => torch.scope(() => {
            const t = batchToTensors(batch);
            const run = () => batchLoss(model, t, batch.tasks).rows;
            return o.bf16 ? torch.autocast(run) : run();
          }));
          for (const l of losses) if (Number.isFinite(l)) { sum += l; count++; }
        }
      } finally {
        await closeLoader(loader);
      }
      if (count > 0) out[task.name] = sum / count;
    }
  } finally {
    model.train(wasTraining);
  }
  return out;
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  const { model, tokenizer } = o;
  const cfg = model.cfg;
  const progress = o.progress ?? new ProgressLine(process.stderr, 10_000, false);
  const metrics = new MetricsLog(join(o.runDir, 'metrics.jsonl'));
  torch.keepLargeAllocations();
  model.train();

  const optimizer = makeOptimizer(model, o.lr, o.weightDecay);
  let step = 0, nonFiniteSteps = 0, tokensSeen = 0, priorSeconds = 0;
  let totalSteps: number | null = o.steps;
  if (o.resume) {
    const r = o.resume.trainer;
    optimizer.loadStateDict(o.resume.optimizer);
    step = r.step;
    nonFiniteSteps = r.nonFiniteSteps;
    tokensSeen = r.tokensSeen;
    priorSeconds = r.elapsedSeconds;
    totalSteps = o.steps ?? r.schedule.totalSteps;
    metrics.write({ kind: 'event', step, event: 'resume', detail: `from step ${step}` });
  } else {
    metrics.write({ kind: 'event', step, event: 'start', detail: `${cfg.name}: ${model.numParameters()} parameters; tasks ${o.tasks.map((t) => `${t.name}×${t.examples.length}`).join(', ')}` });
  }
  const endStep = o.stopAt !== undefined ? Math.min(o.stopAt, totalSteps ?? Infinity) : totalSteps ?? Infinity;

  // Augmentation crops mildly: the whole product should stay in view (its category and colour are what is learnt).
  const loader = new DataLoader(o.tasks, {
    tokenizer, batchSize: o.batchSize, seed: o.seed,
    image: { size: cfg.imageSize, augment: o.augment ? { crop: { scale: [0.75, 1], ratio: [4 / 5, 5 / 4] }, hflip: 0.5 } : false },
    maxSourceLength: cfg.maxTextLen, maxTargetLength: cfg.maxTextLen + 1,
    // A contrastive task's rows come as a whole group in every batch: its negatives are its group-mates.
    groupTasks: CONTRASTIVE_TASKS,
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
  });
  const patches = (cfg.imageSize / cfg.patchSize) ** 2;
  // A contrastive task draws no slots: its weight scales its loss against the generative tasks' loss.
  const lossMean = o.lossMean ?? DEFAULT_LOSS_MEAN;
  const lossWeights: Record<string, number> = Object.fromEntries(o.tasks.filter((t) => CONTRASTIVE_TASKS.has(t.name)).map((t) => [t.name, t.weight ?? 1]));
  const batches = endless(loader, step * o.gradAccum);
  const started = Date.now();
  const budgetMs = o.minutes !== null ? o.minutes * 60_000 : Infinity;
  const stepTimes: number[] = [];
  const recentLosses: number[] = [];
  const smoothed: Record<string, number> = {};
  let smoothedLoss = NaN, firstLoss = NaN, lastLr = 0, consecutiveNonFinite = 0, badRowsSeen = 0;
  let smoothedMoeDropped: number | undefined;
  const reportedBad = new Set<string>();
  let lastCheckpoint: string | undefined, lastSavedStep = -1, stepsThisRun = 0, tokensThisRun = 0;

  const trainerState = (): TrainerState => ({
    version: 1, step, dataPosition: step * o.gradAccum, seed: o.seed, gradAccum: o.gradAccum, batchSize: o.batchSize, augment: o.augment, lossMean,
    schedule: { lr: o.lr, warmup: o.warmup, totalSteps, minLrRatio: o.minLrRatio },
    nonFiniteSteps, tokensSeen, elapsedSeconds: priorSeconds + (Date.now() - started) / 1000,
    optimizer: optimizer.stateDict().meta,
    tasks: o.tasks.map((t) => ({ name: t.name, weight: t.weight ?? 1, examples: t.examples.length })),
    savedAt: new Date().toISOString(),
  });
  const save = (): string => {
    if (lastSavedStep === step && lastCheckpoint !== undefined) return lastCheckpoint;
    const opt = optimizer.stateDict();
    lastCheckpoint = saveCheckpoint(o.runDir, { model: model.stateDict(), optimizer: opt, config: cfg, tokenizer, trainer: trainerState() }, o.keepCheckpoints);
    lastSavedStep = step;
    metrics.write({ kind: 'event', step, event: 'checkpoint', detail: lastCheckpoint });
    return lastCheckpoint;
  };
  // Charts are a convenience: a failure to draw them is reported once and never stops training.
  let plotError = false;
  const plot = async (): Promise<void> => {
    try {
      await writePlots(o.runDir, readMetrics(join(o.runDir, 'metrics.jsonl')));
    } catch (err) {
      if (!plotError) progress.log(`could not draw loss.png/eval.png: ${(err as Error).message}`);
      plotError = true;
    }
  };
  const runEval = async (): Promise<void> => {
    const held = o.evalTasks.filter((t) => t.examples.length > 0);
    const on = held.length > 0 ? 'held-out' : 'train';
    const taskLoss = await evaluateLoss(model, tokenizer, held.length > 0 ? held : o.tasks, { batchSize: o.batchSize, batches: o.evalBatches, bf16: o.bf16 });
    metrics.write({ kind: 'eval', step, taskLoss, on });
    await plot();
    progress.log(`eval at step ${step} (${on}): ${Object.entries(taskLoss).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
  };

  let status: TrainStatus = 'done';
  let message = '';
  try {
    while (step < endStep) {
      if (o.stop?.aborted) { status = 'interrupted'; break; }
      if (Date.now() - started >= budgetMs) { status = 'time'; break; }
      const t0 = Date.now();
      const stepStart = performance.now();
      const timing: StepTiming = { data: 0, forward: 0, backward: 0, optimizer: 0, total: 0, positions: 0 };
      const since = (start: number) => (performance.now() - start) / 1000;
      torch.manualSeed(deriveSeed(o.seed, 'step', step));
      const timeBounded = o.steps === null && o.minutes !== null;
      const lr = o.lr * (timeBounded ? timeLrFactor(step, o.warmup, (Date.now() - started) / budgetMs, o.minLrRatio) : lrFactor(step, o.warmup, totalSteps, o.minLrRatio));
      let finite = true, stepLossSum = 0, stepTokens = 0;
      const taskSums: Record<string, { sum: number; n: number }> = {};
      const moeSums = new Map<number, { dropped: number; maxLoad: number; n: number }>();
      for (let micro = 0; micro < o.gradAccum; micro++) {
        const waitStart = performance.now();
        const next = await batches.next();
        timing.data += since(waitStart);
        const batch = next.value as Batch;
        if (batch.bad.length > 0) {
          badRowsSeen += batch.bad.length;
          // Each bad example is named once (they come back every epoch); the count goes on in metrics.jsonl.
          for (const b of batch.bad) {
            if (reportedBad.has(b.source)) continue;
            reportedBad.add(b.source);
            if (reportedBad.size <= 20) progress.log(`skipped a bad example: ${formatBadRow(b)}`);
            if (reportedBad.size === 20) progress.log('(further bad examples are counted in metrics.jsonl, not listed)');
          }
          metrics.write({ kind: 'event', step, event: 'bad-rows', detail: `${batch.bad.length} dropped from batch ${batch.step}` });
        }
        if (batch.ids.length === 0) continue;
        stepTokens += positions(batch, patches);
        const r = torch.scope(() => {
          const forwardStart = performance.now();
          const t = batchToTensors(batch);
          const run = () => batchLoss(model, t, batch.tasks, { lossWeights, mean: lossMean });
          const out = o.bf16 ? torch.autocast(run) : run();
          if (out.loss === undefined) return { value: 0, rows: out.rows, moe: out.moe, skipped: true };
          let loss = out.loss;
          if (o.injectNonFinite?.has(step)) loss = loss.mul(NaN);
          const value = loss.item();
          timing.forward += since(forwardStart);
          if (!Number.isFinite(value)) return { value, rows: [] as number[], moe: [], skipped: false };
          const backwardStart = performance.now();
          loss.div(o.gradAccum).backward();
          timing.backward += since(backwardStart);
          return { value, rows: out.rows, moe: out.moe, skipped: false };
        });
        if (!Number.isFinite(r.value)) { finite = false; break; }
        stepLossSum += r.value / o.gradAccum;
        r.rows.forEach((l, i) => {
          if (!Number.isFinite(l)) return;
          const s = (taskSums[batch.tasks[i]!] ??= { sum: 0, n: 0 });
          s.sum += l; s.n++;
        });
        for (const m of r.moe) {
          const s = moeSums.get(m.layer) ?? { dropped: 0, maxLoad: 0, n: 0 };
          moeSums.set(m.layer, { dropped: s.dropped + m.dropped, maxLoad: s.maxLoad + m.maxLoad, n: s.n + 1 });
        }
      }
      let gradNorm = NaN;
      const optimizerStart = performance.now();
      if (finite) {
        gradNorm = clipGradNorm(optimizer.params, o.clipNorm);
        finite = Number.isFinite(gradNorm);
      }
      if (finite) {
        for (const g of optimizer.groups) g.hyper.lr = lr;
        optimizer.step();
        consecutiveNonFinite = 0;
      } else {
        nonFiniteSteps++;
        consecutiveNonFinite++;
        metrics.write({ kind: 'event', step, event: 'non-finite', detail: `loss ${stepLossSum}, grad norm ${gradNorm}; step skipped (${consecutiveNonFinite} in a row)` });
      }
      optimizer.zeroGrad();
      timing.optimizer = since(optimizerStart);
      step++;
      stepsThisRun++;
      tokensSeen += stepTokens;
      tokensThisRun += stepTokens;
      lastLr = lr;
      const stepSeconds = (Date.now() - t0) / 1000;
      if (stepsThisRun > 1) stepTimes.push(stepSeconds);   // the first step pays one-time costs
      // --minutes without --steps: the steps the budget allows, for the progress bar and ETA,
      // re-estimated from recent step times (trainer.json records the last estimate).
      if (timeBounded && stepTimes.length >= 3) {
        const recent = stepTimes.slice(-50);
        const perStep = recent.reduce((a, b) => a + b, 0) / recent.length;
        totalSteps = Math.max(step + 1, Math.floor(step + (budgetMs - (Date.now() - started)) / 1000 / perStep));
      }
      if (!finite && consecutiveNonFinite >= o.maxNonFinite) {
        status = 'non-finite';
        const kept = lastCheckpoint ?? 'none was written yet';
        message = `stopped: ${consecutiveNonFinite} steps in a row had a NaN/Inf loss or gradient (steps ${step - consecutiveNonFinite}–${step - 1}); the last good checkpoint is ${kept}. Try a lower --lr, --clip-norm, or training without --bf16.`;
        metrics.write({ kind: 'event', step, event: 'stopped', detail: message });
        break;
      }
      if (finite) {
        if (Number.isNaN(firstLoss)) firstLoss = stepLossSum;
        recentLosses.push(stepLossSum);
        if (recentLosses.length > 20) recentLosses.shift();
        smoothedLoss = Number.isNaN(smoothedLoss) ? stepLossSum : 0.9 * smoothedLoss + 0.1 * stepLossSum;
        const taskLoss: Record<string, number> = {};
        for (const [k, s] of Object.entries(taskSums)) {
          taskLoss[k] = s.sum / s.n;
          smoothed[k] = smoothed[k] === undefined ? taskLoss[k]! : 0.9 * smoothed[k]! + 0.1 * taskLoss[k]!;
        }
        const elapsed = (Date.now() - started) / 1000;
        timing.total = since(stepStart);
        timing.positions = stepTokens;
        const moe = [...moeSums].map(([layer, m]) => ({ layer, dropped: m.dropped / m.n, maxLoad: m.maxLoad / m.n }));
        if (moe.length > 0) {
          const dropped = moe.reduce((n, m) => n + m.dropped, 0) / moe.length;
          smoothedMoeDropped = smoothedMoeDropped === undefined ? dropped : 0.9 * smoothedMoeDropped + 0.1 * dropped;
        }
        metrics.write({
          kind: 'train', step, loss: stepLossSum, taskLoss, lr, gradNorm, tokensPerSecond: tokensThisRun / Math.max(elapsed, 1e-9), elapsedSeconds: priorSeconds + elapsed, timing,
          ...(moe.length > 0 ? { moe } : {}),
        });
      }
      const elapsed = (Date.now() - started) / 1000;
      const perStep = stepTimes.length ? stepTimes.reduce((a, b) => a + b, 0) / stepTimes.length : stepSeconds;
      const stepsLeft = Number.isFinite(endStep) ? endStep - step : null;
      const timeLeft = Number.isFinite(budgetMs) ? Math.max(0, budgetMs / 1000 - elapsed) : null;
      const eta = stepsLeft !== null ? (timeLeft !== null ? Math.min(timeLeft, stepsLeft * perStep) : stepsLeft * perStep) : timeLeft;
      progress.update({
        step, totalSteps: Number.isFinite(endStep) ? endStep : totalSteps, loss: smoothedLoss, taskLoss: { ...smoothed }, lr: lastLr,
        tokensPerSecond: tokensThisRun / Math.max(elapsed, 1e-9), etaSeconds: eta, nonFiniteSteps,
        ...(smoothedMoeDropped !== undefined ? { moeDropped: smoothedMoeDropped } : {}),
      }, step === 1 || step === endStep);
      if (o.evalEvery > 0 && step % o.evalEvery === 0) await runEval();
      if (o.saveEvery > 0 && step % o.saveEvery === 0) save();
    }
    if (status !== 'non-finite') {
      if ((status === 'done' || status === 'time') && stepsThisRun > 0 && (o.evalEvery === 0 || step % o.evalEvery !== 0)) await runEval();
      const dir = save();
      if (status === 'interrupted') {
        message = `interrupted at step ${step}: saved ${dir}; continue with --resume`;
        metrics.write({ kind: 'event', step, event: 'interrupted', detail: dir });
      } else {
        message = `${status === 'time' ? `time budget reached at step ${step}` : `done: step ${step}`}; saved ${dir}`;
        metrics.write({ kind: 'event', step, event: 'done', detail: dir });
      }
    }
    await plot();
  } finally {
    progress.done();
    await batches.return(undefined);
    await closeLoader(loader);
  }
  const seconds = (Date.now() - started) / 1000;
  const finalLoss = recentLosses.length ? recentLosses.reduce((a, b) => a + b, 0) / recentLosses.length : NaN;
  if (badRowsSeen > 0) message += `; ${reportedBad.size} bad examples were skipped (${badRowsSeen} times in all)`;
  return {
    status, step, checkpoint: lastCheckpoint, finalLoss, firstLoss, nonFiniteSteps,
    stepsPerSecond: stepsThisRun / Math.max(seconds, 1e-9), tokensPerSecond: tokensThisRun / Math.max(seconds, 1e-9),
    message: message + ` (${stepsThisRun} steps in ${formatDuration(seconds)})`,
  };
}
