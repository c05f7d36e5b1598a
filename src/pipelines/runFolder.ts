// A run folder as a usable model: the newest checkpoint's config, tokenizer and weights, loaded
// once by the task verbs (`m6 describe --run R …`) and by `m6 demo` after training.
import { existsSync, statSync } from 'node:fs';
import { ItemVocabulary } from '../data/itemVocabulary.js';
import { ITEMS_FILE } from '../tasks/recommendData.js';
import { join } from 'node:path';
import type { Tokenizer } from '../data/tokenizer.js';
import { M6Model, type M6Config } from '../model/index.js';
import { latestCheckpoint, loadCheckpointWeights, readCheckpointMeta, readCheckpointTensors, readRunJson, type TrainerState } from '../train/checkpoint.js';
import { findVqFile, runDirOf } from '../train/vqFiles.js';
import { InputError } from '../torch/inputError.js';

export interface LoadedRun {
  /** The checkpoint folder the weights came from. */
  checkpoint: string;
  config: M6Config;
  tokenizer: Tokenizer;
  model: M6Model;
  trainer: TrainerState;
  /** The run's VQ image tokenizer (RUN/vq.safetensors), which design decodes its codes with; undefined when the run has none. */
  vqFile: string | undefined;
  /** The items of its item table (RUN/items.json), when the config has one. */
  items: ItemVocabulary | undefined;
}

export class RunFolderError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'RunFolderError';
  }
}

/** A run folder (its newest checkpoint) or one checkpoint folder → the checkpoint folder. */
export function resolveCheckpoint(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new RunFolderError(`--run ${path}: no such folder (expected the --out folder of m6 train)`);
  if (existsSync(join(path, 'trainer.json')) && existsSync(join(path, 'model.safetensors'))) return path;
  const latest = latestCheckpoint(path);
  if (latest === undefined) throw new RunFolderError(`--run ${path}: no checkpoint in ${join(path, 'checkpoints')} (train first: m6 train --out ${path} …)`);
  return latest;
}

/** RUN/items.json, checked against the item table it indexes; undefined when the model has no items. */
function readRunItems(runDir: string, cfg: M6Config): ItemVocabulary | undefined {
  if (cfg.items === 0) return undefined;
  const file = join(runDir, ITEMS_FILE);
  if (!existsSync(file)) return undefined;
  const items = ItemVocabulary.fromJSON(readRunJson(file), file);
  if (items.size !== cfg.items) throw new RunFolderError(`${file} lists ${items.size} items but the model's item table has ${cfg.items} rows`);
  return items;
}

/** Loads the model in eval mode. Dispose `model` when done. */
export async function loadRun(path: string): Promise<LoadedRun> {
  const checkpoint = resolveCheckpoint(path);
  // readCheckpointMeta checks the config and that the tokenizer's vocabulary is the model's.
  const { config: cfg, tokenizer, trainer } = await readCheckpointMeta(checkpoint);
  const model = new M6Model(cfg);
  const { model: weights, optimizer } = readCheckpointTensors(checkpoint, trainer);
  try {
    loadCheckpointWeights(model, checkpoint, weights);
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    for (const t of weights.values()) t.dispose();
    for (const t of Object.values(optimizer.tensors)) t.dispose();
  }
  model.eval();
  let items: ItemVocabulary | undefined;
  try {
    items = readRunItems(runDirOf(checkpoint), cfg);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { checkpoint, config: cfg, tokenizer, model, trainer, vqFile: findVqFile(runDirOf(checkpoint)), items };
}
