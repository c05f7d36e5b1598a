// Evaluating a trained run on a dataset's held-out rows, one task at a time (`m6 eval`). The data is
// read once (buildTaskData: held-out rows are those whose split is test/val/…); each task has its
// own evaluator (describeEval.ts, answerEval.ts, and the embed/design ones) that judges the model's
// outputs and returns the same shape: metrics, their baselines, per-item records, failures. A task
// nobody can evaluate (no evaluator, no held-out data) is reported as skipped with the reason, not
// as an error, so one command covers whatever the data and the code support.
import { rowSourceOf, type DatasetSpec } from '../data/datasetSpec.js';
import type { Example } from '../data/loader.js';
import { unitHash } from '../data/random.js';
import { TASKS, type TaskName } from '../tasks/instructions.js';
import { PIPELINE_TASKS, type Pipeline, type PipelineTask } from '../pipelines/index.js';
import { isEvalRow, type TaskData } from '../tasks/taskData.js';
import { InputError } from '../torch/inputError.js';
import { readRunSplit, SPLIT_FILE } from '../train/runSplit.js';
import { runDirOf } from '../train/vqFiles.js';
import { join } from 'node:path';

/** An item the model could not be run on (an unreadable image): counted and reported, never fatal. */
export interface ItemFailure {
  id: string;
  error: string;
}

/** What every task evaluator returns. Metrics and baselines share keys (e.g. categoryAccuracy). */
export interface TaskEvaluation<Item = unknown> {
  task: TaskName;
  /** Held-out examples of this task in the data, before --limit. */
  available: number;
  /** Items judged: the limited selection less the failures. Metrics are over these. */
  evaluated: number;
  failures: ItemFailure[];
  metrics: Record<string, number>;
  /** What a trivial predictor scores on the same items (majority class, commonest answer). */
  baselines: Record<string, number>;
  /** What `baselines` is, when a task names it (recommend: popularity). */
  baselineName?: string;
  /** Further baselines on the same items, by name (recommend: item co-occurrence beside popularity). */
  moreBaselines?: Array<{ name: string; values: Record<string, number> }>;
  /** How the metrics were judged, and anything a reader should know about them. */
  notes: string[];
  /** One record per judged item, for reports. */
  items: Item[];
  seconds: number;
}

export interface Skipped {
  skipped: string;
}

export interface EvalContext {
  task: TaskName;
  /** The run being judged, loaded once for every task. */
  pipeline: Pipeline;
  spec: DatasetSpec;
  data: TaskData;
  /**
   * This task's held-out examples as buildTaskData built them, cut to --limit by a seeded draw
   * (kept in data order); null when buildTaskData could not build the task (see skipReason).
   */
  examples: Example[] | null;
  /** Held-out examples before the limit. */
  available: number;
  /** Why there are no examples, when there are none. */
  skipReason?: string;
  batchSize: number;
  /** --limit, for evaluators whose items are not the examples (recommend's shoppers). */
  limit?: number;
  log: (message: string) => void;
}

export type TaskEvaluator = (ctx: EvalContext) => Promise<TaskEvaluation | Skipped>;

/** Loads a task's evaluator on demand, so libtorch and the model code load only when evaluating. */
export type EvaluatorLoader = () => Promise<TaskEvaluator>;

export interface EvalReport {
  /** The checkpoint folder evaluated. */
  checkpoint: string;
  step: number;
  /** The manifest or image folder of the data. */
  data: string;
  rows: number;
  badRows: number;
  tasks: TaskEvaluation[];
  skipped: Array<{ task: TaskName; reason: string }>;
  /**
   * Held-out rows of the data that the run trained on (RUN/split.json): 0 unless allowTrainRows,
   * when the evaluation is a deliberate training-set one; null when the run records no split.
   */
  trainingRows: number | null;
  /** Which held-out rows were scored (absent: every held-out row). */
  holdout?: 'val' | 'test';
  seconds: number;
}

export interface EvaluateRunOptions {
  pipeline: Pipeline;
  spec: DatasetSpec;
  data: TaskData;
  tasks: readonly TaskName[];
  evaluators: Partial<Record<TaskName, EvaluatorLoader>>;
  /** Most items per task (default: every held-out item). */
  limit?: number;
  /** Seed of the --limit draw. */
  seed?: number;
  batchSize?: number;
  log?: (message: string) => void;
  /** Score held-out rows even where the run trained on them (a training-set evaluation, labelled as such). */
  allowTrainRows?: boolean;
  /** Which held-out rows: validation (to choose settings on) or test (the final figures); default: every held-out row. */
  holdout?: 'val' | 'test';
}

/** The data's held-out rows include rows the run trained on. */
export class TrainingRowsError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingRowsError';
  }
}

/** How many of the data's held-out rows the run trained on, by its recorded split (null: none recorded); throws unless allowed. */
function checkTrainingRows(o: EvaluateRunOptions, log: (m: string) => void): number | null {
  const runDir = runDirOf(o.pipeline.checkpoint);
  const recorded = readRunSplit(runDir);
  if (recorded === undefined) {
    log(`warning: ${runDir} records no split (${SPLIT_FILE}); m6 eval cannot check that the run did not train on these rows`);
    return null;
  }
  const heldOut = o.data.rows.filter(isEvalRow);
  const seen = heldOut.filter((r) => recorded.trainedOn(r.id)).length;
  if (seen > 0 && o.allowTrainRows !== true) {
    throw new TrainingRowsError(`${seen} of the ${heldOut.length} held-out rows of ${rowSourceOf(o.spec)} are rows the run trained on (${join(runDir, SPLIT_FILE)}: ${recorded.split.trainRows} training rows of ${recorded.split.data}); `
      + 'their scores would measure memory, not generalisation. Evaluate on rows the run did not see (its own split, or other data), or pass --allow-train-rows for a deliberate training-set evaluation');
  }
  if (seen > 0) log(`training-set evaluation: ${seen} of the ${heldOut.length} held-out rows were trained on (--allow-train-rows)`);
  return seen;
}

/**
 * Up to `limit` examples drawn by a seeded hash of their ids, returned in data order. Taking the
 * first N would be biased wherever the data is sorted (grocery's test list goes class by class).
 */
export function sampleExamples<T extends { id: string }>(examples: readonly T[], limit: number | undefined, seed = 0): T[] {
  if (limit === undefined || limit >= examples.length) return [...examples];
  const chosen = new Set(examples.map((e, i) => ({ i, u: unitHash(e.id, seed) })).sort((a, b) => a.u - b.u || a.i - b.i).slice(0, limit).map((x) => x.i));
  return examples.filter((_, i) => chosen.has(i));
}

/** The held-out examples of a task (of one held-out split when `holdout` is given) and, when there are none, why. */
function heldOutOf(data: TaskData, task: TaskName, holdout: 'val' | 'test' | undefined): { examples: Example[] | null; reason?: string } {
  const source = data.eval.find((t) => t.name === task) ?? data.heldOutOnly.find((t) => t.name === task);
  if (source !== undefined) {
    const chosen = holdout === undefined ? source.examples : source.examples.filter((e) => e.heldOut === holdout);
    if (chosen.length > 0) return { examples: [...chosen] };
    if (source.examples.length > 0) {
      const other = holdout === 'val' ? 'test' : 'val';
      return { examples: [], reason: `none of its ${source.examples.length} held-out examples is in a ${holdout} split (${holdout === 'val' ? "'val', 'valid', 'validation' or 'dev'" : "'test', 'eval' or 'heldout'"}); --holdout ${other} evaluates them` };
    }
    return { examples: [], reason: 'no held-out rows: give the data a test split (--split train:0.9,test:0.1 with --split-seed, or --split-col)' };
  }
  const line = data.skipped.find((s) => s.startsWith(`${task}: `));
  return { examples: null, reason: line !== undefined ? line.replace(/^[a-z]+: skipped: /, '') : 'the data has no examples for it' };
}

/** Runs each task's evaluator on the run; tasks without one, or without data, come back as skipped. */
export async function evaluateRun(o: EvaluateRunOptions): Promise<EvalReport> {
  const started = Date.now();
  const log = o.log ?? (() => {});
  const trainingRows = checkTrainingRows(o, log);
  const report: EvalReport = {
    checkpoint: o.pipeline.checkpoint,
    step: o.pipeline.step,
    data: rowSourceOf(o.spec) ?? o.spec.interactions?.file ?? '',
    rows: o.data.rows.length,
    badRows: o.data.badRows,
    tasks: [],
    skipped: [],
    trainingRows,
    ...(o.holdout !== undefined ? { holdout: o.holdout } : {}),
    seconds: 0,
  };
  for (const task of o.tasks) {
    const load = o.evaluators[task];
    if (load === undefined) {
      report.skipped.push({ task, reason: `m6 eval has no evaluator for ${task} yet` });
      continue;
    }
    const unsupported = (PIPELINE_TASKS as readonly string[]).includes(task) ? o.pipeline.whyNot(task as PipelineTask) : undefined;
    if (unsupported !== undefined) {
      report.skipped.push({ task, reason: unsupported });
      continue;
    }
    const { examples, reason } = heldOutOf(o.data, TASKS[task].examplesOf ?? task, o.holdout);
    const ctx: EvalContext = {
      task, pipeline: o.pipeline, spec: o.spec, data: o.data,
      examples: examples === null ? null : sampleExamples(examples, o.limit, o.seed),
      available: examples?.length ?? 0,
      batchSize: o.batchSize ?? 16,
      ...(o.limit !== undefined ? { limit: o.limit } : {}),
      log,
    };
    if (reason !== undefined) ctx.skipReason = reason;
    const evaluate = await load();
    const result = await evaluate(ctx);
    if ('skipped' in result) report.skipped.push({ task, reason: result.skipped });
    else report.tasks.push(result);
  }
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

/** The examples an evaluator of generated text works on, or why it cannot run. */
export function examplesOrSkip(ctx: EvalContext): Example[] | Skipped {
  if (ctx.examples === null || ctx.examples.length === 0) return { skipped: ctx.skipReason ?? 'no held-out examples' };
  return ctx.examples;
}

/**
 * `run` over the inputs a few batches at a time, logging progress between chunks (a long
 * evaluation shows it is alive): one result per input, in order.
 */
export async function inChunks<I, R>(ctx: Pick<EvalContext, 'task' | 'batchSize' | 'log'>, verb: string, inputs: readonly I[], run: (part: I[]) => Promise<R[]>): Promise<R[]> {
  const chunk = ctx.batchSize * 8;
  const out: R[] = [];
  const started = Date.now();
  for (let at = 0; at < inputs.length; at += chunk) {
    out.push(...(await run(inputs.slice(at, at + chunk))));
    if (out.length < inputs.length) ctx.log(`${ctx.task}: ${out.length}/${inputs.length} ${verb} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  return out;
}
