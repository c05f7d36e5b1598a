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
// A checkpoint is written into a hidden temp folder and renamed into place, so a crash or Ctrl-C
// mid-write never leaves a half checkpoint where the loaders look; the oldest beyond `keep` are removed.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { CHECKPOINTS_DIR, checkpointName, listCheckpoints } from './checkpointFiles.js';
import { join } from 'node:path';
import type { Tensor } from '../torch/index.js';
import { loadSafetensors, saveSafetensors } from '../io/index.js';
import type { M6Config } from '../model/index.js';
import type { OptimizerState } from '../optim/index.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { LossMean } from './lossMean.js';
import { InputError } from '../torch/inputError.js';

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
  tasks: Array<{ name: string; weight: number; examples: number }>;
  savedAt: string;
}

export interface CheckpointContents {
  model: Map<string, Tensor>;
  optimizer: OptimizerState;
  config: M6Config;
  tokenizer: Tokenizer;
  trainer: TrainerState;
}

/** Writes a checkpoint atomically (temp folder + rename) and keeps the newest `keep`. Returns its folder. */
export function saveCheckpoint(runDir: string, c: CheckpointContents, keep = 3): string {
  const root = join(runDir, CHECKPOINTS_DIR);
  mkdirSync(root, { recursive: true });
  const final = join(root, checkpointName(c.trainer.step));
  const tmp = join(root, `.${checkpointName(c.trainer.step)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    saveSafetensors(join(tmp, 'model.safetensors'), c.model, { format: 'pt', config: c.config.name });
    saveSafetensors(join(tmp, 'optimizer.safetensors'), c.optimizer.tensors);
    writeFileSync(join(tmp, 'config.json'), JSON.stringify(c.config, null, 2) + '\n');
    writeFileSync(join(tmp, 'tokenizer.json'), JSON.stringify(c.tokenizer.toJSON()) + '\n');
    // trainer.json last: listCheckpoints only counts folders that have it.
    writeFileSync(join(tmp, 'trainer.json'), JSON.stringify({ ...c.trainer, optimizer: c.optimizer.meta }, null, 2) + '\n');
    // Saving a step twice (a resumed run re-saving its start) replaces the old folder.
    if (existsSync(final)) rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const all = listCheckpoints(runDir);
  for (const old of all.slice(0, Math.max(0, all.length - Math.max(1, keep)))) rmSync(old.dir, { recursive: true, force: true });
  // Temp folders of crashed writers (another pid) are garbage too.
  for (const name of readdirSync(root)) if (name.startsWith('.step-') && !name.endsWith(`.tmp-${process.pid}`)) rmSync(join(root, name), { recursive: true, force: true });
  return final;
}

export class CheckpointError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

function readJson<T>(file: string): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CheckpointError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new CheckpointError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The config and tokenizer of a checkpoint folder (cheap: no tensors). */
export async function readCheckpointMeta(dir: string): Promise<{ config: M6Config; tokenizer: Tokenizer; trainer: TrainerState }> {
  const { Tokenizer } = await import('../data/tokenizer.js');
  const config = readJson<M6Config>(join(dir, 'config.json'));
  const trainer = readJson<TrainerState>(join(dir, 'trainer.json'));
  if (trainer.version !== 1) throw new CheckpointError(`${join(dir, 'trainer.json')}: version ${String(trainer.version)}, this m6 reads version 1`);
  const tokenizer = await Tokenizer.load(join(dir, 'tokenizer.json'));
  return { config, tokenizer, trainer };
}

/** Model and optimizer tensors of a checkpoint (memory-mapped; the caller copies them in and disposes them). */
export function readCheckpointTensors(dir: string, trainer: TrainerState): { model: Map<string, Tensor>; optimizer: OptimizerState } {
  const model = loadSafetensors(join(dir, 'model.safetensors')).tensors;
  const opt = existsSync(join(dir, 'optimizer.safetensors')) ? loadSafetensors(join(dir, 'optimizer.safetensors')).tensors : new Map<string, Tensor>();
  return { model, optimizer: { tensors: Object.fromEntries(opt), meta: trainer.optimizer } };
}
