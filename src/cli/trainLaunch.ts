// `m6 train --nproc N`: the launcher side (src/distributed/launch.ts starts and supervises the ranks)
// and the rank side (joining the process group that torchrun's environment describes, whoever set it:
// this launcher, torchrun, or a person on each host).
import { latestCheckpoint } from '../train/checkpointFiles.js';
import type { ProcessGroup } from '../distributed/processGroup.js';
import { UsageError } from './errors.js';
import { numberFlag } from './flags.js';

export interface LaunchFlags {
  nproc?: string;
  nnodes?: string;
  nodeRank?: string;
  masterAddr?: string;
  masterPort?: string;
  maxRestarts?: string;
}

/** The launcher's flags, each taking a value: left out of the ranks' command lines. */
const LAUNCH_FLAGS = ['--nproc', '--nnodes', '--node-rank', '--master-addr', '--master-port', '--max-restarts'];

/** Whether this `m6 train` starts ranks (any launcher flag) rather than training in this process. */
export function launchRequested(f: LaunchFlags): boolean {
  return f.nproc !== undefined || f.nnodes !== undefined || f.maxRestarts !== undefined;
}

/** `argv` (after the script) without the launcher's flags, and on a restart with `--resume` (the newest checkpoint of `out`) in place of any --resume given. */
export function rankArgs(argv: readonly string[], restart: number, out: string): string[] {
  const args: string[] = [];
  const resuming = restart > 0 && latestCheckpoint(out) !== undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.split('=')[0]!;
    if (LAUNCH_FLAGS.includes(name)) { if (!a.includes('=')) i++; continue; }
    if (resuming && name === '--resume') {
      if (!a.includes('=') && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) i++;
      continue;
    }
    args.push(a);
  }
  if (resuming) args.push('--resume');
  return args;
}

/**
 * Runs the job: `nproc` ranks of this same command (`script` with `argv` less the launcher's flags)
 * and returns when they have all finished; throws a UsageError carrying the failed rank's exit code
 * and last lines when the job failed past its restarts, or 130 when it was interrupted.
 */
export async function launchTraining(f: LaunchFlags, script: string, argv: readonly string[], out: string, log: (m: string) => void): Promise<void> {
  const int = (name: string, v: string | undefined, dflt: number, min: number) => (v === undefined ? dflt : numberFlag(name, v, { integer: true, min }));
  const nproc = int('--nproc', f.nproc, 1, 1), nnodes = int('--nnodes', f.nnodes, 1, 1), nodeRank = int('--node-rank', f.nodeRank, 0, 0);
  if (nodeRank >= nnodes) throw new UsageError(`--node-rank must be in 0..${nnodes - 1} (--nnodes ${nnodes}), got ${nodeRank}`);
  if (nnodes > 1 && f.masterAddr === undefined) throw new UsageError('--nnodes > 1 needs --master-addr: the host of node rank 0, where every node meets');
  const masterPort = f.masterPort !== undefined ? int('--master-port', f.masterPort, 0, 1) : undefined;
  const { launch, describeFailure } = await import('../distributed/launch.js');
  const r = await launch({
    nproc, nnodes, nodeRank, masterAddr: f.masterAddr ?? '127.0.0.1', ...(masterPort !== undefined ? { masterPort } : {}),
    maxRestarts: int('--max-restarts', f.maxRestarts, 0, 0), log,
    args: (restart) => [script, ...rankArgs(argv, restart, out)],
  });
  if (r.status === 'interrupted') throw new UsageError(`interrupted: the ranks were asked to stop${latestCheckpoint(out) !== undefined ? `; the newest checkpoint is ${latestCheckpoint(out)}` : ''}`, 130);
  if (r.status === 'failed') {
    const after = r.restarts > 0 ? ` after ${r.restarts} restart${r.restarts > 1 ? 's' : ''}` : '';
    const ckpt = latestCheckpoint(out);
    throw new UsageError(`training failed${after}: ${describeFailure(r.failure!)}\n${ckpt !== undefined ? `the newest checkpoint is ${ckpt} (continue with --resume)` : 'no checkpoint was written'}`, r.exitCode);
  }
}

/** torchrun's environment says this process is one rank of several (WORLD_SIZE > 1). */
export function inDistributedJob(env: NodeJS.ProcessEnv = process.env): { rank: number; worldSize: number } | undefined {
  const worldSize = Number(env.WORLD_SIZE ?? 1);
  if (!(worldSize > 1)) return undefined;
  const rank = Number(env.RANK);
  if (!(Number.isInteger(rank) && rank >= 0 && rank < worldSize)) throw new UsageError(`WORLD_SIZE=${env.WORLD_SIZE} but RANK=${JSON.stringify(env.RANK)}: each rank needs RANK in 0..${worldSize - 1}`);
  return { rank, worldSize };
}

/** Joins the job's process group (Gloo, torchrun's MASTER_ADDR/MASTER_PORT), or undefined in a one-process run. */
export async function joinTrainingGroup(): Promise<ProcessGroup | undefined> {
  if (inDistributedJob() === undefined) return undefined;
  const { dist } = await import('../distributed/index.js');
  const { watchLauncher } = await import('../distributed/launch.js');
  watchLauncher();
  return dist.init({ backend: 'gloo' });
}
