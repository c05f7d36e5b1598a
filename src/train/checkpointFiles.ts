// Where a run's checkpoints are, from the file system alone (no tensors, no libtorch): the CLI
// checks for them before it loads the engine.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const CHECKPOINTS_DIR = 'checkpoints';
const STEP_DIR = /^step-(\d+)$/;

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** Saved checkpoints of a run, oldest first (a folder counts once its trainer.json, written last, exists). */
export function listCheckpoints(runDir: string): Array<{ step: number; dir: string }> {
  const root = join(runDir, CHECKPOINTS_DIR);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((name) => ({ m: STEP_DIR.exec(name), name }))
    .filter((x): x is { m: RegExpExecArray; name: string } => x.m !== null && existsSync(join(root, x.name, 'trainer.json')))
    .map((x) => ({ step: Number(x.m[1]), dir: join(root, x.name) }))
    .sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(runDir: string): string | undefined {
  return listCheckpoints(runDir).at(-1)?.dir;
}
