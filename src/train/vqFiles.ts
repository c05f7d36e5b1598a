// Where a run's VQ image tokenizer is, from the file system alone (no tensors, no libtorch): the CLI
// reads its defaults and finds the file before the engine loads, and loadRun finds it for `m6 design`.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CHECKPOINTS_DIR } from './checkpointFiles.js';

/** The tokenizer in the run folder: weights, codebook, and its VqConfig in the safetensors metadata. */
export const VQ_FILE = 'vq.safetensors';
/** How it came to be: config, steps, images, held-out PSNR, seconds, source. */
export const VQ_INFO_FILE = 'vq.json';

/**
 * Optimizer steps of the VQ stage when --vq-steps is not given (batches of 16 at 64 px). Shapes are
 * right early; hue comes last, and it is the number of steps that counts (README, "Why these
 * defaults").
 */
export const DEFAULT_VQ_STEPS = 3000;

/** The folder of a run from one of its checkpoint folders (RUN/checkpoints/step-…), or the folder itself. */
export function runDirOf(path: string): string {
  return basename(dirname(path)) === CHECKPOINTS_DIR ? dirname(dirname(path)) : path;
}

/** A VQ file given as itself, as a run folder, or as a checkpoint folder of a run; undefined when none is there. */
export function findVqFile(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  if (statSync(path).isFile()) return path;
  for (const dir of [path, runDirOf(path)]) if (existsSync(join(dir, VQ_FILE))) return join(dir, VQ_FILE);
  return undefined;
}
