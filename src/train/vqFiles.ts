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
 * Optimizer steps of the VQ stage when --vq-steps is not given (batches of 16 at 64 px): about 6
 * minutes on 2 CPU cores in bf16. Shapes are right early; hue comes last. On the synthetic catalog
 * (one seed each, colour read back by the design classifier on 500 held-out round trips): 1200 steps
 * 44%, 2400 steps 71–75%, 3600 steps 79% (PSNR 22.6 → 24.0 → 24.6 dB). It is the number of steps that
 * counts: 1200 steps of 32 images gave 47%, no better than 1200 of 16; a higher learning rate, a faster
 * codebook EMA, an L1 pixel loss (27%: colours went grey) and an extra loss on patch-mean colours did
 * not help. More steps keep helping.
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
