// Loading a run for a verb (describe, answer, design, embed, eval, demo): libtorch, sharp and the
// model load here, when a verb runs, not when `m6` starts; a missing or broken run is the user's
// mistake, so its error is a usage error (a message and exit code 2, not a stack trace).
import type { Pipeline, PipelineTask } from '../pipelines/index.js';
import { asUsageError } from './errors.js';

/** The run's pipeline, checked to serve `task` when one is named. Close it when done. */
export async function openPipeline(path: string, task?: PipelineTask): Promise<Pipeline> {
  try {
    const { loadPipeline } = await import('../pipelines/index.js');
    const pipeline = await loadPipeline(path);
    try {
      if (task !== undefined) pipeline.require(task);
    } catch (err) {
      pipeline.close();
      throw err;
    }
    return pipeline;
  } catch (err) {
    throw asUsageError(err);
  }
}
