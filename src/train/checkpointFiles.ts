// Where a run's checkpoints are, from the file system alone (no tensors, no libtorch): the CLI
// checks for them before it loads the engine.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const CHECKPOINTS_DIR = 'checkpoints';
const STEP_DIR = /^step-(\d+)$/;
/** The suffix (then the writer's pid) of a checkpoint folder being replaced by a new save of its step. */
export const REPLACED = '.replaced-';
/** A replaced folder's name: it stands for its step while the new folder is not yet renamed in (a kill between the two renames). */
export const REPLACED_DIR = /^\.(step-\d+)\.replaced-\d+$/;

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/**
 * Saved checkpoints of a run, oldest first (a folder counts once its trainer.json, written last,
 * exists; a replaced folder counts for its step while that step has no folder of its own).
 */
export function listCheckpoints(runDir: string): Array<{ step: number; dir: string }> {
  const root = join(runDir, CHECKPOINTS_DIR);
  if (!existsSync(root)) return [];
  const names = readdirSync(root);
  const byStep = new Map<number, string>();
  for (const name of names) {
    const m = STEP_DIR.exec(name) ?? STEP_DIR.exec(REPLACED_DIR.exec(name)?.[1] ?? '');
    if (m === null || !existsSync(join(root, name, 'trainer.json'))) continue;
    const step = Number(m[1]);
    if (!byStep.has(step) || name === m[0]) byStep.set(step, join(root, name));
  }
  return [...byStep.entries()].map(([step, dir]) => ({ step, dir })).sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(runDir: string): string | undefined {
  return listCheckpoints(runDir).at(-1)?.dir;
}
