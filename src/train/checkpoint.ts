// Checkpoints: one folder per saved step in RUN/checkpoints/, everything needed to use the model or
// to continue training exactly where it stopped:
//
//   RUN/checkpoints/step-00000120/
//     model.safetensors       weights (fp32; bf16 training is autocast, the weights stay fp32)
//     optimizer.safetensors   AdamW moments, keyed "<param index>.<name>"
//     config.json             the M6Config
//     tokenizer.json          the text tokenizer (Hugging Face format)
//     trainer.json            step, data position, schedule, seed, counters, optimizer hyper-parameters
//
// A checkpoint is written into a hidden temp folder (each file fsynced) and renamed into place, so a
// crash, a kill -9 or Ctrl-C mid-write never leaves a half checkpoint where the loaders look; the
// oldest beyond `keep` are hidden, then removed (test/cli/kill9.test.ts kills runs at random).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { CHECKPOINTS_DIR, checkpointName, listCheckpoints, REPLACED, REPLACED_DIR } from './checkpointFiles.js';
import { basename, join } from 'node:path';
import type { Tensor } from '../torch/index.js';
import { loadSafetensors, readSafetensorsHeader, renameDurably, saveSafetensors, writeFileAtomic, type WrittenFile } from '../io/index.js';
import { createHash } from 'node:crypto';
import { validateConfig, type M6Config } from '../model/index.js';
import type { OptimizerState } from '../optim/index.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { LossMean } from './lossMean.js';
import { fileReadProblem, InputError } from '../torch/inputError.js';

export { CHECKPOINTS_DIR, checkpointName, listCheckpoints, latestCheckpoint } from './checkpointFiles.js';

/** What the trainer needs besides the tensors to continue exactly. */
export interface TrainerState {
  version: 1;
  /** Optimizer steps done (skipped non-finite steps count: their data was consumed). */
  step: number;
  /** Loader batches consumed: step × gradAccum. The loader replays its plan to this point. */
  dataPosition: number;
  seed: number;
  gradAccum: number;
  batchSize: number;
  /** Random crops and flips of training images (part of the data stream, so kept on resume). */
  augment: boolean;
  /** How the generative loss averages (objectives.ts); absent in checkpoints from before the choice: DEFAULT_LOSS_MEAN. */
  lossMean?: LossMean;
  schedule: { lr: number; warmup: number; totalSteps: number | null; minLrRatio: number };
  /** Steps skipped because the loss or gradients were NaN/Inf, over the whole run. */
  nonFiniteSteps: number;
  tokensSeen: number;
  /** Seconds of training before this checkpoint (a resumed run's ETA and --minutes budget go on from here). */
  elapsedSeconds: number;
  optimizer: OptimizerState['meta'];
  tasks: Array<{ name: string; weight: number; examples: number; start?: number }>;
  /** Loader batch at which each task of a schedule (TaskSource.start) joined the mixture; absent without one. */
  taskStarts?: Record<string, number>;
  savedAt: string;
  /** Size and sha256 of the tensor files as written (absent in older checkpoints): a resume checks them, so bytes damaged later are found. */
  files?: Record<string, WrittenFile>;
}

export interface CheckpointContents {
  model: Map<string, Tensor>;
  optimizer: OptimizerState;
  config: M6Config;
  tokenizer: Tokenizer;
  trainer: TrainerState;
}

/**
 * Writes a checkpoint atomically and keeps the newest `keep`. Returns its folder. Every file is
 * written into a hidden temp folder and fsynced, trainer.json last; the folder is renamed into place
 * only then (the rename is what marks it complete). A kill -9 at any moment leaves every checkpoint
 * that a loader lists whole: a folder being written, replaced or pruned is first given a hidden name.
 */
export function saveCheckpoint(runDir: string, c: CheckpointContents, keep = 3): string {
  const root = join(runDir, CHECKPOINTS_DIR);
  mkdirSync(root, { recursive: true });
  const name = checkpointName(c.trainer.step);
  const final = join(root, name);
  const tmp = join(root, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const files = {
      'model.safetensors': saveSafetensors(join(tmp, 'model.safetensors'), c.model, { format: 'pt', config: c.config.name }),
      'optimizer.safetensors': saveSafetensors(join(tmp, 'optimizer.safetensors'), c.optimizer.tensors),
    };
    writeFileAtomic(join(tmp, 'config.json'), JSON.stringify(c.config, null, 2) + '\n');
    writeFileAtomic(join(tmp, 'tokenizer.json'), JSON.stringify(c.tokenizer.toJSON()) + '\n');
    // trainer.json last: listCheckpoints only counts folders that have it.
    writeFileAtomic(join(tmp, 'trainer.json'), JSON.stringify({ ...c.trainer, optimizer: c.optimizer.meta, files }, null, 2) + '\n');
    if (existsSync(final)) {
      // Saving a step twice (a resumed run re-saving its start) replaces the old folder, which stays
      // listed (as a replaced folder) until the new one has its name: never a moment without the step.
      const old = join(root, `.${name}${REPLACED}${process.pid}`);
      renameDurably(final, old);
      renameDurably(tmp, final);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameDurably(tmp, final);
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const all = listCheckpoints(runDir).filter((x) => x.dir !== final);
  for (const old of all.slice(0, Math.max(0, all.length + 1 - Math.max(1, keep)))) {
    // Hidden first, then removed: a removal cut short leaves a hidden folder, not a listed half checkpoint.
    const trash = join(root, `.${basename(old.dir)}.trash-${process.pid}`);
    renameSync(old.dir, trash);
    rmSync(trash, { recursive: true, force: true });
  }
  tidyCrashedWriters(root);
  return final;
}

/** What crashed writers (another pid) left: temp and pruned folders are removed; a replaced folder whose step has no folder now is put back. */
function tidyCrashedWriters(root: string): void {
  for (const entry of readdirSync(root)) {
    if (!entry.startsWith('.step-') || entry.endsWith(`-${process.pid}`)) continue;
    const replaced = REPLACED_DIR.exec(entry);
    if (replaced !== null && !existsSync(join(root, replaced[1]!))) renameDurably(join(root, entry), join(root, replaced[1]!));
    else rmSync(join(root, entry), { recursive: true, force: true });
  }
}

export class CheckpointError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** A JSON file of a run or checkpoint (trainer.json, split.json, items.json…), or a CheckpointError saying why it cannot be read or parsed. */
export function readRunJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CheckpointError(`${file} ${fileReadProblem(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${file} is not valid JSON (${(err as Error).message})`);
  }
}

const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isNumber = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** trainer.json's fields that a resume reads, checked: a damaged file is named here, not a TypeError deep in the trainer. */
function checkTrainerState(file: string, json: unknown): TrainerState {
  if (!isObject(json)) throw new CheckpointError(`${file}: expected a JSON object of trainer state, got ${Array.isArray(json) ? 'an array' : JSON.stringify(json).slice(0, 80)}`);
  if (json.version !== 1) throw new CheckpointError(`${file}: version ${JSON.stringify(json.version)}, this m6 reads version 1`);
  const wrong: string[] = [];
  for (const k of ['step', 'dataPosition', 'seed', 'gradAccum', 'batchSize', 'nonFiniteSteps', 'tokensSeen'] as const) if (!isCount(json[k])) wrong.push(`${k} (a count)`);
  if (!isNumber(json.elapsedSeconds)) wrong.push('elapsedSeconds (seconds)');
  const sch = json.schedule;
  if (!isObject(sch) || !isNumber(sch.lr) || !isCount(sch.warmup) || !isNumber(sch.minLrRatio) || !(sch.totalSteps === null || isCount(sch.totalSteps))) wrong.push('schedule ({lr, warmup, totalSteps, minLrRatio})');
  const opt = json.optimizer;
  if (!isObject(opt) || !isCount(opt.step) || !Array.isArray(opt.groups) || !opt.groups.every(isObject)) wrong.push('optimizer ({step, groups})');
  if (!Array.isArray(json.tasks)) wrong.push('tasks (a list)');
  if (json.augment !== undefined && typeof json.augment !== 'boolean') wrong.push('augment (true or false)');
  if (json.files !== undefined && !(isObject(json.files) && Object.values(json.files).every((f) => isObject(f) && isCount(f.bytes) && typeof f.sha256 === 'string'))) wrong.push('files ({name: {bytes, sha256}})');
  if (wrong.length) throw new CheckpointError(`${file}: missing or malformed ${wrong.join(', ')}`);
  return json as unknown as TrainerState;
}

/**
 * The config and tokenizer of a checkpoint folder (cheap: no tensors), each checked: config.json
 * builds a model, trainer.json has what a resume reads, and the tokenizer's vocabulary is the model's.
 */
export async function readCheckpointMeta(dir: string): Promise<{ config: M6Config; tokenizer: Tokenizer; trainer: TrainerState }> {
  const { Tokenizer } = await import('../data/tokenizer.js');
  const configFile = join(dir, 'config.json');
  const raw = readRunJson(configFile);
  if (!isObject(raw)) throw new CheckpointError(`${configFile}: expected a JSON object of config fields, got ${(JSON.stringify(raw) ?? '').slice(0, 80)}`);
  let config: M6Config;
  try {
    config = validateConfig(raw as unknown as M6Config);
  } catch (err) {
    throw new CheckpointError(`${configFile}: ${(err as Error).message}`);
  }
  const trainer = checkTrainerState(join(dir, 'trainer.json'), readRunJson(join(dir, 'trainer.json')));
  const tokenizerFile = join(dir, 'tokenizer.json');
  const tokenizer = await Tokenizer.load(tokenizerFile);
  if (tokenizer.vocabSize !== config.vocabSize || (tokenizer.hasModelTokens && (tokenizer.imageCodeStart !== config.imageCodeStart || tokenizer.imageCodes !== config.imageCodes))) {
    throw new CheckpointError(`${tokenizerFile} does not match ${configFile}: the tokenizer has ${tokenizer.vocabSize} tokens (image codes from ${tokenizer.imageCodeStart}, ${tokenizer.imageCodes} of them), the model's vocabulary ${config.vocabSize} (image codes from ${config.imageCodeStart}, ${config.imageCodes})`);
  }
  return { config, tokenizer, trainer };
}

/** Model and optimizer tensors of a checkpoint (memory-mapped; the caller copies them in and disposes them). */
export function readCheckpointTensors(dir: string, trainer: TrainerState): { model: Map<string, Tensor>; optimizer: OptimizerState } {
  const model = loadSafetensors(join(dir, 'model.safetensors')).tensors;
  const opt = existsSync(join(dir, 'optimizer.safetensors')) ? loadSafetensors(join(dir, 'optimizer.safetensors')).tensors : new Map<string, Tensor>();
  return { model, optimizer: { tensors: Object.fromEntries(opt), meta: trainer.optimizer } };
}

/** Copies a checkpoint's weights into a model, naming the file when they do not fit it (another model's checkpoint). */
export function loadCheckpointWeights(model: { loadStateDict(w: Map<string, Tensor>): void }, dir: string, weights: Map<string, Tensor>): void {
  try {
    model.loadStateDict(weights);
  } catch (err) {
    if (err instanceof InputError) throw new CheckpointError(`${join(dir, 'model.safetensors')} does not fit the model of ${join(dir, 'config.json')}: ${err.message}`);
    throw err;
  }
}

/**
 * Everything a checkpoint holds checked without loading a tensor: its JSON files, both safetensors
 * headers (a truncated file fails here), and the tensor files' bytes against the sha256 that
 * trainer.json recorded as they were written (a flipped bit in the weights fails here).
 */
export async function checkCheckpoint(dir: string): Promise<Awaited<ReturnType<typeof readCheckpointMeta>>> {
  const meta = await readCheckpointMeta(dir);
  for (const name of ['model.safetensors', 'optimizer.safetensors']) {
    const file = join(dir, name);
    readSafetensorsHeader(file);
    const want = meta.trainer.files?.[name];
    if (want === undefined) continue;  // a checkpoint from before m6 recorded them
    const got = createHash('sha256').update(readFileSync(file)).digest('hex');
    if (got !== want.sha256) throw new CheckpointError(`${file} is damaged: its bytes do not match the sha256 that ${join(dir, 'trainer.json')} recorded when it was written (${want.sha256.slice(0, 12)}…, now ${got.slice(0, 12)}…)`);
  }
  return meta;
}

/**
 * The newest checkpoint of a run that is complete (checkCheckpoint), saying which newer ones were
 * skipped and why: `--resume` goes on from the last good state instead of failing on a damaged one.
 */
export async function newestCompleteCheckpoint(runDir: string, log: (m: string) => void): Promise<{ dir: string; meta: Awaited<ReturnType<typeof checkCheckpoint>> }> {
  const all = listCheckpoints(runDir).reverse();
  const problems: string[] = [];
  for (const { dir } of all) {
    let meta;
    try {
      meta = await checkCheckpoint(dir);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      problems.push(err.message);
      continue;
    }
    if (problems.length) log(`warning: skipped ${problems.length} damaged checkpoint${problems.length > 1 ? 's' : ''} (${problems.join('; ')}); resuming from the newest complete one, ${dir}`);
    return { dir, meta };
  }
  throw new CheckpointError(`no complete checkpoint in ${join(runDir, CHECKPOINTS_DIR)} to resume from${problems.length ? `: ${problems.join('; ')}` : ''}`);
}
