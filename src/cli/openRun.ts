// Loading a run folder for a task verb (describe, answer, design, embed, eval): libtorch, sharp and
// the model load here, when a verb runs, not when `m6` starts; a missing or broken run is the
// user's mistake, so its error is a usage error (a message and exit code 2, not a stack trace).
import type { LoadedRun } from '../pipelines/runFolder.js';
import { asUsageError } from './commands/train.js';

export async function openRun(path: string): Promise<LoadedRun> {
  try {
    const { loadRun } = await import('../pipelines/runFolder.js');
    return await loadRun(path);
  } catch (err) {
    throw asUsageError(err);
  }
}
