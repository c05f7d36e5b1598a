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
import type { M6Config, M6Model } from '../model/index.js';
import { AdamW, lrFactor, timeLrFactor, type OptimizerState } from '../optim/index.js';
import { batchToTensors } from './batchTensors.js';
import { batchLoss, CONTRASTIVE_TASKS } from './objectives.js';
import { DEFAULT_LOSS_MEAN, type LossMean } from './lossMean.js';
import { CheckpointError, CHECKPOINTS_DIR, checkpointName, saveCheckpoint, type TrainerState } from './checkpoint.js';
import type { ExpertParallel } from './expertParallel.js';
import { DataParallel } from './dataParallel.js';
import type { ProcessGroup } from '../distributed/index.js';
import { MetricsLog, readMetrics, type Metric } from './metrics.js';
import { writePlots } from './plots.js';
import { formatDuration, ProgressLine } from './progress.js';
import { TrainStats } from './trainStats.js';
import { TrainStep, type StepSettings } from './trainStep.js';
import { join } from 'node:path';
import { InputError } from '../torch/inputError.js';
import { ScheduledBatches } from './taskSchedule.js';
import { formatOpProfile, StepOpProfiler, type OpProfileOptions, type OpProfileReport } from './opProfile.js';
import { writeFileAtomic } from '../io/index.js';

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
  /** `dir`: the checkpoint folder they came from, named when its optimizer state does not fit. */
  resume?: { trainer: TrainerState; optimizer: OptimizerState; dir?: string };
  progress?: ProgressLine;
  /** Set to stop after the current step (Ctrl-C). */
  stop?: AbortSignal;
  /** Tests: steps whose loss is made NaN, to exercise the non-finite path. */
  injectNonFinite?: ReadonlySet<number>;
  /** The recommend task: the items it ranks among in training ((N) bool: those with training interactions). */
  itemCandidates?: torch.Tensor;
  /**
   * Data parallel when its world is > 1 (dataParallel.ts): each rank trains on its share of every
   * batch of `batchSize` (the global batch), gradients are averaged once per step, and only rank 0
   * writes metrics, plots and checkpoints.
   */
  group?: ProcessGroup;
  /**
   * Expert parallel (with a group of > 1 ranks): each rank holds 1/W of every MoE layer's experts,
   * tokens go to their experts' ranks (expertParallel.ts); the rest stays data parallel.
   */
  expertParallel?: boolean;
  /** Time a few steps op by op (`m6 train --profile-ops N`): op-profile.json in the run folder, and a table on the log. */
  profileOps?: OpProfileOptions;
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

/** Mean loss per task over the first `batches` batches of each task's examples (no grad, eval mode). */
export async function evaluateLoss(model: M6Model, tokenizer: Tokenizer, tasks: readonly TaskSource[], o: { batchSize: number; batches: number; bf16: boolean }): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const wasTraining = model.training;
  model.eval();
  try {
    for (const task of tasks) {
      if (task.examples.length === 0) continue;
      // Every row of the task, whatever its start in the training schedule.
      const loader = new DataLoader([{ name: task.name, examples: task.examples }], {
        tokenizer, batchSize: o.batchSize, seed: 0, workers: 0, image: { size: model.cfg.imageSize },
        ...textLimits(model.cfg),
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

/** The source and target tokens a row may have: the model's text positions (the target's <bos> is not one). */
export function textLimits(cfg: M6Config): { maxSourceLength: number; maxTargetLength: number } {
  return { maxSourceLength: cfg.maxTextLen, maxTargetLength: cfg.maxTextLen + 1 };
}

/** The data loader of a training run: the seeded task mixture, augmentation, contrastive groups; a rank's share of each batch. */
function trainingLoader(o: TrainOptions, dp: DataParallel | undefined): DataLoader {
  const cfg = o.model.cfg;
  if (dp !== undefined && o.batchSize < dp.worldSize) throw new InputError(`--batch-size ${o.batchSize} is the global batch: it must give each of the ${dp.worldSize} ranks a row at least`);
  // Augmentation crops mildly: the whole product should stay in view (its category and colour are what is learnt).
  return new DataLoader(o.tasks, {
    tokenizer: o.tokenizer, batchSize: o.batchSize, seed: o.seed,
    image: { size: cfg.imageSize, augment: o.augment ? { crop: { scale: [0.75, 1], ratio: [4 / 5, 5 / 4] }, hflip: 0.5 } : false },
    ...textLimits(cfg),
    // A contrastive task's rows come as a whole group in every batch: its negatives are its group-mates.
    groupTasks: CONTRASTIVE_TASKS,
    promptDropout: cfg.designPromptDropout,
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
    ...(dp !== undefined ? { shard: { rank: dp.rank, worldSize: dp.worldSize } } : {}),
  });
}

/**
 * Whether the loop goes on at the top of a step, and the elapsed share of the time budget; with data
 * parallel, as agreed by every rank (a stop request or the budget reaches them at different moments).
 */
async function stepGate(o: TrainOptions, dp: DataParallel | undefined, started: number, budgetMs: number): Promise<{ stop: TrainStatus | undefined; timeFraction: number }> {
  const local = { stop: o.stop?.aborted === true, timeFraction: (Date.now() - started) / budgetMs };
  const g = dp !== undefined ? await dp.agree(local.stop, local.timeFraction) : local;
  return { stop: g.stop ? 'interrupted' : g.timeFraction >= 1 ? 'time' : undefined, timeFraction: g.timeFraction };
}

/**
 * The training loop: from the start (or the resumed step) to the end step, the time budget or a
 * stop request, with evaluation, checkpoints and the progress line on the way. One iteration is
 * one TrainStep; TrainStats keeps the running figures.
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const { model } = o;
  const progress = o.progress ?? new ProgressLine(process.stderr, 10_000, false);
  const { dp, leader, metrics } = await runRole(o);
  torch.keepLargeAllocations();
  model.train();
  const optimizer = resumedOptimizer(o, dp);
  const resumed = o.resume?.trainer;
  let step = resumed?.step ?? 0;
  let totalSteps: number | null = o.steps ?? resumed?.schedule.totalSteps ?? null;
  const priorSeconds = resumed?.elapsedSeconds ?? 0;
  metrics.write(startEvent(o, step));
  const endStep = o.stopAt !== undefined ? Math.min(o.stopAt, totalSteps ?? Infinity) : totalSteps ?? Infinity;
  const trainStep = new TrainStep(model, optimizer, stepSettings(o, dp), metrics, resumed?.nonFiniteSteps ?? 0);
  const loader = trainingLoader(o, dp);
  const started = Date.now();
  const stats = new TrainStats(resumed?.tokensSeen ?? 0, started);
  const budgetMs = o.minutes !== null ? o.minutes * 60_000 : Infinity;
  const timeBounded = o.steps === null && o.minutes !== null;
  const data = new ScheduledBatches(loader, o.tasks, step * o.gradAccum, timeBounded || totalSteps === null ? null : totalSteps * o.gradAccum, resumed?.taskStarts);
  const checkpoints = new RunCheckpoints(o, optimizer, metrics, leader, dp?.experts);
  const save = (): Promise<string> => checkpoints.save(trainerState(o, {
    step, totalSteps, nonFiniteSteps: trainStep.nonFiniteSteps, tokensSeen: stats.tokensSeen, elapsedSeconds: priorSeconds + stats.elapsed(), optimizer: optimizer.stateDict().meta, taskStarts: data.joined,
  }));
  const { plot, evaluate } = evaluation(o, dp, leader, metrics, progress);
  const runEval = (): Promise<void> => evaluate(step);
  const profiler = o.profileOps !== undefined ? new StepOpProfiler(o.profileOps, (report) => { if (leader) writeOpProfile(o.runDir, report, progress); }) : undefined;

  let status: TrainStatus = 'done';
  let message = '';
  try {
    while (step < endStep) {
      const gate = await stepGate(o, dp, started, budgetMs);
      if (gate.stop !== undefined) { status = gate.stop; break; }
      if (timeBounded) await joinDueTasks(data, { step, position: step * o.gradAccum }, gate.timeFraction, metrics, progress);
      const t0 = Date.now();
      const stepStart = performance.now();
      torch.manualSeed(deriveSeed(o.seed, 'step', step));
      profiler?.beforeStep(stats.stepsThisRun, step);
      const lr = o.lr * (timeBounded ? timeLrFactor(step, o.warmup, gate.timeFraction, o.minLrRatio) : lrFactor(step, o.warmup, totalSteps, o.minLrRatio));
      const outcome = await trainStep.run(step, lr, data.batches, (batch) => stats.noteBadRows(batch, step, progress, metrics));
      step++;
      const stepSeconds = (Date.now() - t0) / 1000;
      stats.countStep(outcome, lr, stepSeconds);
      profiler?.afterStep(stats.stepsThisRun, step);
      // --minutes without --steps: the steps the budget allows, for the progress bar and ETA,
      // re-estimated from recent step times (trainer.json records the last estimate).
      const estimate = timeBounded ? stats.stepsInBudget(step, budgetMs) : null;
      if (estimate !== null) totalSteps = estimate;
      if (!outcome.finite && trainStep.consecutiveNonFinite >= o.maxNonFinite) {
        status = 'non-finite';
        message = nonFiniteStop(step, trainStep.consecutiveNonFinite, checkpoints.last, metrics);
        break;
      }
      if (outcome.finite) metrics.write(stats.recordFinite(step, outcome, { lr, priorSeconds, stepStart }));
      progress.update(stats.snapshot(step, endStep, totalSteps, budgetMs, stepSeconds, trainStep.nonFiniteSteps), step === 1 || step === endStep);
      if (o.evalEvery > 0 && step % o.evalEvery === 0) await runEval();
      if (o.saveEvery > 0 && step % o.saveEvery === 0) await save();
    }
    profiler?.stop(step);
    if (status !== 'non-finite') {
      // The last step's figures: a final eval (unless the loop just ran one), then the checkpoint.
      if ((status === 'done' || status === 'time') && stats.stepsThisRun > 0 && (o.evalEvery === 0 || step % o.evalEvery !== 0)) await runEval();
      message = closingMessage(status, step, await save(), metrics);
    }
    await plot();
    // The others leave once rank 0 has written its last checkpoint (a launcher may read it then).
    await dp?.barrier();
  } finally {
    progress.done();
    dp?.dispose();
    await data.close().finally(() => closeLoader(loader));
  }
  const seconds = stats.elapsed();
  return {
    status, step, checkpoint: checkpoints.last, finalLoss: stats.finalLoss(), firstLoss: stats.firstLoss, nonFiniteSteps: trainStep.nonFiniteSteps,
    stepsPerSecond: stats.stepsThisRun / Math.max(seconds, 1e-9), tokensPerSecond: stats.tokensThisRun / Math.max(seconds, 1e-9),
    message: message + stats.badRowsNote() + ` (${stats.stepsThisRun} steps in ${formatDuration(seconds)})`,
  };
}

/**
 * The periodic evaluation and the charts. Rank 0 evaluates and draws alone; the others wait for it in
 * the next step's first collective. Expert parallel: every rank evaluates (the same rows), since rank
 * 0's forward needs the others' experts.
 */
function evaluation(o: TrainOptions, dp: DataParallel | undefined, leader: boolean, metrics: MetricsLog, progress: ProgressLine): { plot: () => Promise<void>; evaluate: (step: number) => Promise<void> } {
  const plot = leader ? chartWriter(o.runDir, progress) : async () => {};
  const evaluate = async (step: number): Promise<void> => {
    if (leader || dp?.experts !== undefined) await periodicEval(o, step, metrics, progress);
    if (leader) await plot();
  };
  return { plot, evaluate };
}

/** The run's AdamW, with the checkpoint's state when resuming (expert parallel: this rank's experts' part of it). */
function resumedOptimizer(o: TrainOptions, dp: DataParallel | undefined): AdamW {
  const optimizer = makeOptimizer(o.model, o.lr, o.weightDecay);
  if (o.resume) loadResumedOptimizer(optimizer, dp?.experts !== undefined ? { ...o.resume, optimizer: dp.experts.localOptimizerState(o.resume.optimizer, optimizer.params) } : o.resume);
  return optimizer;
}

/** The checkpoint's AdamW state into the optimizer, naming its file when it does not fit the model. */
function loadResumedOptimizer(optimizer: AdamW, resume: NonNullable<TrainOptions['resume']>): void {
  try {
    optimizer.loadStateDict(resume.optimizer);
  } catch (err) {
    if (err instanceof InputError) throw new CheckpointError(`${resume.dir !== undefined ? join(resume.dir, 'optimizer.safetensors') : 'the optimizer state'} does not fit this model: ${err.message}`);
    throw err;
  }
}

/** The op profile into op-profile.json and, as a table, onto the log. */
function writeOpProfile(runDir: string, report: OpProfileReport, progress: ProgressLine): void {
  const file = join(runDir, 'op-profile.json');
  writeFileAtomic(file, JSON.stringify(report, null, 1));
  progress.log(`${formatOpProfile(report)}\n(the whole table: ${file})`);
}

/** This process's part: data parallel when the group has several ranks (rank 0 the leader, which alone writes metrics.jsonl). */
async function runRole(o: TrainOptions): Promise<{ dp: DataParallel | undefined; leader: boolean; metrics: MetricsLog }> {
  // What every rank must agree on (the data order and the schedule); ranks started by hand may differ.
  const agreed = { step: o.resume?.trainer.step ?? 0, seed: o.seed, batchSize: o.batchSize, gradAccum: o.gradAccum, lr: o.lr, steps: o.steps, minutes: o.minutes, lossMean: o.lossMean, tasks: o.tasks.map((t) => [t.name, t.weight ?? 1, t.examples.length]) };
  const dp = o.group !== undefined && o.group.worldSize > 1 ? await DataParallel.create(o.group, o.model, { ...agreed, expertParallel: o.expertParallel === true }, { expertParallel: o.expertParallel === true }) : undefined;
  if (o.expertParallel === true && dp === undefined) throw new InputError('--expert-parallel shards the experts over the ranks of a distributed run: start it with --nproc N (N > 1) or under torchrun');
  const leader = dp?.isLeader ?? true;
  return { dp, leader, metrics: new MetricsLog(leader ? join(o.runDir, 'metrics.jsonl') : null) };
}

/** metrics.jsonl's first line of this invocation. */
function startEvent(o: TrainOptions, step: number): Metric {
  const { model } = o;
  return o.resume
    ? { kind: 'event', step, event: 'resume', detail: `from step ${step}${o.group !== undefined && o.group.worldSize > 1 ? ` on ${o.group.worldSize} ranks` : ''}` }
    : { kind: 'event', step, event: 'start', detail: `${model.cfg.name}: ${model.numParameters()} parameters; tasks ${o.tasks.map((t) => `${t.name}×${t.examples.length}`).join(', ')}${o.group !== undefined && o.group.worldSize > 1 ? `; ${o.group.worldSize} ranks${o.expertParallel === true ? ', experts sharded over them' : ''}` : ''}` };
}

/** The run's checkpoints: saved atomically, at most one per step, each noted in metrics.jsonl. */
class RunCheckpoints {
  /** The last checkpoint written (undefined until one is). */
  last: string | undefined;
  private lastStep = -1;

  constructor(private readonly o: TrainOptions, private readonly optimizer: AdamW, private readonly metrics: MetricsLog, private readonly writes = true,
    private readonly experts?: ExpertParallel) {}

  /**
   * Writes the checkpoint (rank 0 of a data-parallel run; the other ranks get the folder rank 0 writes).
   * Expert parallel: every rank first hands rank 0 its experts, so the checkpoint is the whole model.
   */
  async save(trainer: TrainerState): Promise<string> {
    if (this.lastStep === trainer.step && this.last !== undefined) return this.last;
    const whole = this.experts !== undefined ? await this.experts.wholeState(this.optimizer.params, this.optimizer.stateDict()) : undefined;
    this.lastStep = trainer.step;
    if (!this.writes) {
      whole?.dispose();
      return (this.last = join(this.o.runDir, CHECKPOINTS_DIR, checkpointName(trainer.step)));
    }
    const { model, tokenizer } = this.o;
    try {
      this.last = saveCheckpoint(this.o.runDir, { model: whole?.model ?? model.stateDict(), optimizer: whole?.optimizer ?? this.optimizer.stateDict(), config: model.cfg, tokenizer, trainer }, this.o.keepCheckpoints);
    } finally {
      whole?.dispose();
    }
    this.metrics.write({ kind: 'event', step: trainer.step, event: 'checkpoint', detail: this.last });
    return this.last;
  }
}

/** The message (and metrics.jsonl event) of a run stopped by `n` non-finite steps in a row. */
function nonFiniteStop(step: number, n: number, lastCheckpoint: string | undefined, metrics: MetricsLog): string {
  const message = `stopped: ${n} steps in a row had a NaN/Inf loss or gradient (steps ${step - n}–${step - 1}); the last good checkpoint is ${lastCheckpoint ?? 'none was written yet'}. Try a lower --lr, --clip-norm, or training without --bf16.`;
  metrics.write({ kind: 'event', step, event: 'stopped', detail: message });
  return message;
}

/** How a run that was not stopped by NaNs ends: its message, and the event in metrics.jsonl. */
function closingMessage(status: TrainStatus, step: number, checkpoint: string, metrics: MetricsLog): string {
  const interrupted = status === 'interrupted';
  metrics.write({ kind: 'event', step, event: interrupted ? 'interrupted' : 'done', detail: checkpoint });
  if (interrupted) return `interrupted at step ${step}: saved ${checkpoint}; continue with --resume`;
  return `${status === 'time' ? `time budget reached at step ${step}` : `done: step ${step}`}; saved ${checkpoint}`;
}

/** What a contrastive task weighs, and how the step runs. */
function stepSettings(o: TrainOptions, dp: DataParallel | undefined): StepSettings {
  const cfg = o.model.cfg;
  return {
    gradAccum: o.gradAccum, clipNorm: o.clipNorm, bf16: o.bf16, lossMean: o.lossMean ?? DEFAULT_LOSS_MEAN, patches: (cfg.imageSize / cfg.patchSize) ** 2,
    // A contrastive task draws no slots: its weight scales its loss against the generative tasks' loss.
    // (Recommend rows share the slots by weight, as the generative tasks do.)
    lossWeights: Object.fromEntries(o.tasks.filter((t) => CONTRASTIVE_TASKS.has(t.name)).map((t) => [t.name, t.weight ?? 1])),
    ...(o.itemCandidates !== undefined ? { itemCandidates: o.itemCandidates } : {}),
    ...(o.injectNonFinite !== undefined ? { injectNonFinite: o.injectNonFinite } : {}),
    ...(dp !== undefined ? { dataParallel: { dp, tasks: o.tasks.map((t) => t.name) } } : {}),
  };
}

/** Tasks of the schedule whose share of the time budget has passed join the mixture here, said in the log and metrics. */
async function joinDueTasks(data: ScheduledBatches, at: { step: number; position: number }, timeFraction: number, metrics: MetricsLog, progress: ProgressLine): Promise<void> {
  const joined = await data.advance(at.position, timeFraction);
  if (joined.length === 0) return;
  const detail = `${joined.join(', ')} joined the mixture at step ${at.step}, ${Math.round(100 * timeFraction)}% of the time budget`;
  metrics.write({ kind: 'event', step: at.step, event: 'tasks-joined', detail });
  progress.log(detail);
}

/** trainer.json of a checkpoint at `step`: what resume needs to go on exactly. */
function trainerState(o: TrainOptions, at: Pick<TrainerState, 'step' | 'nonFiniteSteps' | 'tokensSeen' | 'elapsedSeconds' | 'optimizer' | 'taskStarts'> & { totalSteps: number | null }): TrainerState {
  return {
    version: 1, step: at.step, dataPosition: at.step * o.gradAccum, seed: o.seed, gradAccum: o.gradAccum, batchSize: o.batchSize, augment: o.augment, lossMean: o.lossMean ?? DEFAULT_LOSS_MEAN,
    schedule: { lr: o.lr, warmup: o.warmup, totalSteps: at.totalSteps, minLrRatio: o.minLrRatio },
    nonFiniteSteps: at.nonFiniteSteps, tokensSeen: at.tokensSeen, elapsedSeconds: at.elapsedSeconds, optimizer: at.optimizer,
    tasks: o.tasks.map((t) => ({ name: t.name, weight: t.weight ?? 1, examples: t.examples.length, ...(t.start !== undefined ? { start: t.start } : {}) })),
    ...(Object.keys(at.taskStarts ?? {}).length > 0 ? { taskStarts: at.taskStarts } : {}),
    savedAt: new Date().toISOString(),
  };
}

/** The held-out loss per task (the training examples' where nothing is held out), logged and written to metrics.jsonl. */
async function periodicEval(o: TrainOptions, step: number, metrics: MetricsLog, progress: ProgressLine): Promise<void> {
  const held = o.evalTasks.filter((t) => t.examples.length > 0);
  // 'val' where every evaluated example is a validation one (runTraining passes those where the data has them).
  const on = held.length === 0 ? 'train' : held.every((t) => t.examples.every((e) => e.heldOut === 'val')) ? 'val' : 'held-out';
  const taskLoss = await evaluateLoss(o.model, o.tokenizer, held.length > 0 ? held : o.tasks, { batchSize: o.batchSize, batches: o.evalBatches, bf16: o.bf16 });
  metrics.write({ kind: 'eval', step, taskLoss, on });
  progress.log(`eval at step ${step} (${on}): ${Object.entries(taskLoss).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
}

/** Redraws loss.png/eval.png. Charts are a convenience: a failure to draw them is reported once and never stops training. */
function chartWriter(runDir: string, progress: ProgressLine): () => Promise<void> {
  let failed = false;
  return async () => {
    try {
      await writePlots(runDir, readMetrics(join(runDir, 'metrics.jsonl')));
    } catch (err) {
      if (!failed) progress.log(`could not draw loss.png/eval.png: ${(err as Error).message}`);
      failed = true;
    }
  };
}
