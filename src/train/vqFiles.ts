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
 * Optimizer steps of the VQ stage when --vq-steps is not given (batches of 16 at 64 px): a few
 * minutes on 2 CPU cores. On the synthetic catalog, shapes are right by 600 steps but colours are
 * not (red comes back brown); by 1200–2000 they mostly are. Patterns finer than a code's 8×8 pixels
 * (checks, thin stripes) come back as their average colour at any length. More steps keep helping.
 */
export const DEFAULT_VQ_STEPS = 1200;

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
