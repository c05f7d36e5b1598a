// A local launcher in the manner of torchrun (torch/distributed/run.py, elastic/agent): starts
// `nproc` ranks of one command on this host with torchrun's environment (MASTER_ADDR, MASTER_PORT,
// WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, TORCHELASTIC_RESTART_COUNT) and
// OMP_NUM_THREADS splitting the cores between them, and supervises them as a unit: the first rank
// to fail stops the others and its error (exit code or signal, last stderr lines) is the job's;
// after a failure the whole job starts again, up to `maxRestarts` times (a trainer resumes from
// its last checkpoint: `args(restart)` gives each start's arguments). SIGINT/SIGTERM are passed to
// every rank once (a second one kills them), and an interrupted job is not restarted.
//
// Ranks run in their own process group (`detached`), so a terminal's Ctrl-C reaches them once,
// through the launcher, not twice. A rank whose launcher disappears sees its stdin close and should
// exit (`watchLauncher`).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

export interface LaunchOptions {
  /** Ranks on this host. */
  nproc: number;
  /** Hosts in the job (each runs this launcher with its own nodeRank). Default 1. */
  nnodes: number;
  nodeRank: number;
  /** Where global rank 0 serves the rendezvous. Default 127.0.0.1. */
  masterAddr: string;
  /** Default: a free port when nnodes is 1, else 29500 (torch's). */
  masterPort?: number;
  /** Whole-job restarts after a failure (torchrun's --max-restarts). */
  maxRestarts: number;
  /** The command each rank runs (default: this Node binary) and its arguments for the `restart`-th start (0 first). */
  command?: string;
  args: (restart: number) => string[];
  /** Each rank's OMP_NUM_THREADS unless the caller's environment sets one. Default: the cores over nproc, at least 1. */
  threadsPerRank?: number;
  /** Where the launcher's own lines go. */
  log: (line: string) => void;
  /** Milliseconds between SIGTERM and SIGKILL when the others are stopped after a failure. Default 5000. */
  killGraceMs?: number;
  /** Lines of a rank's stderr kept for the failure report. Default 20. */
  tailLines?: number;
}

export interface RankFailure {
  rank: number;
  localRank: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The rank's last stderr lines. */
  tail: string[];
}

export interface LaunchResult {
  status: 'ok' | 'failed' | 'interrupted';
  /** Restarts used. */
  restarts: number;
  /** The failure that ended the job (or the last one restarted from). */
  failure?: RankFailure;
  /** The exit code the launching command should end with: 0, the failed rank's code (1 for a signal), or 130 (interrupted). */
  exitCode: number;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** How a failure reads: which rank, how it ended, and its last lines. */
export function describeFailure(f: RankFailure): string {
  const how = f.signal !== null ? `was killed by ${f.signal}` : `exited with code ${f.code}`;
  const tail = f.tail.length > 0 ? `; its last lines:\n  ${f.tail.join('\n  ')}` : ' (nothing on stderr)';
  return `rank ${f.rank} (local rank ${f.localRank}, pid ${f.pid ?? '?'}) ${how}${tail}`;
}

/** Runs the job to the end: every rank done, a failure past the restarts, or an interruption. */
export async function launch(o: LaunchOptions): Promise<LaunchResult> {
  if (!(Number.isInteger(o.nproc) && o.nproc >= 1)) throw new RangeError(`launch: nproc must be a positive integer, got ${o.nproc}`);
  if (!(Number.isInteger(o.nnodes) && o.nnodes >= 1)) throw new RangeError(`launch: nnodes must be a positive integer, got ${o.nnodes}`);
  if (!(Number.isInteger(o.nodeRank) && o.nodeRank >= 0 && o.nodeRank < o.nnodes)) throw new RangeError(`launch: node rank must be in 0..${o.nnodes - 1}, got ${o.nodeRank}`);
  const signals = new SignalForwarder();
  try {
    for (let restart = 0; ; restart++) {
      const port = o.masterPort ?? (o.nnodes === 1 ? await freePort() : 29500);
      const failure = await runOnce(o, restart, port, signals);
      if (signals.count > 0) return { status: 'interrupted', restarts: restart, ...(failure ? { failure } : {}), exitCode: 130 };
      if (failure === undefined) return { status: 'ok', restarts: restart, exitCode: 0 };
      if (restart >= o.maxRestarts) {
        return { status: 'failed', restarts: restart, failure, exitCode: failure.code !== null && failure.code !== 0 ? failure.code : 1 };
      }
      o.log(`m6 launch: ${describeFailure(failure)}`);
      o.log(`m6 launch: restarting all ${o.nproc} ranks (restart ${restart + 1} of ${o.maxRestarts})`);
    }
  } finally {
    signals.close();
  }
}

/** SIGINT/SIGTERM while ranks run: passed to them once; a second one kills them. */
class SignalForwarder {
  count = 0;
  children: ChildProcess[] = [];
  private readonly handlers: Array<[NodeJS.Signals, () => void]>;

  constructor() {
    this.handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => [sig, () => this.on(sig)]);
    for (const [sig, h] of this.handlers) process.on(sig, h);
  }

  private on(sig: NodeJS.Signals): void {
    this.count++;
    for (const c of this.children) if (alive(c)) c.kill(this.count === 1 ? sig : 'SIGKILL');
  }

  close(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
  }
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

/** One start of every local rank; resolves when all have exited, to the first failure (undefined when all succeeded). */
async function runOnce(o: LaunchOptions, restart: number, port: number, signals: SignalForwarder): Promise<RankFailure | undefined> {
  const world = o.nproc * o.nnodes;
  const threads = o.threadsPerRank ?? Math.max(1, Math.floor(availableParallelism() / o.nproc));
  const children: ChildProcess[] = [];
  signals.children = children;
  let first: RankFailure | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  const stopOthers = () => {
    for (const c of children) if (alive(c)) c.kill('SIGTERM');
    graceTimer = setTimeout(() => { for (const c of children) if (alive(c)) c.kill('SIGKILL'); }, o.killGraceMs ?? 5000);
  };
  const exits = Array.from({ length: o.nproc }, (_, localRank) => {
    const rank = o.nodeRank * o.nproc + localRank;
    const child = spawn(o.command ?? process.execPath, o.args(restart), {
      stdio: ['pipe', 'pipe', 'pipe'], detached: true,
      env: {
        ...process.env, MASTER_ADDR: o.masterAddr, MASTER_PORT: String(port), WORLD_SIZE: String(world), RANK: String(rank),
        LOCAL_RANK: String(localRank), LOCAL_WORLD_SIZE: String(o.nproc), GROUP_RANK: String(o.nodeRank),
        TORCHELASTIC_RESTART_COUNT: String(restart), OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? String(threads), M6_LAUNCHED: '1',
      },
    });
    children.push(child);
    child.stdin!.on('error', () => { /* the rank exited first */ });
    const tail = relay(child, rank, o.tailLines ?? 20);
    return new Promise<void>((resolve) => {
      child.on('close', (code, signal) => {
        const failed = code !== 0 && signals.count === 0;
        if (failed && first === undefined) {
          first = { rank, localRank, pid: child.pid, code, signal, tail: tail() };
          stopOthers();
        }
        resolve();
      });
      child.on('error', (err) => {
        if (first === undefined) { first = { rank, localRank, pid: child.pid, code: null, signal: null, tail: [err.message] }; stopOthers(); }
        resolve();
      });
    });
  });
  await Promise.all(exits);
  clearTimeout(graceTimer);
  return first;
}

/**
 * Passes a rank's stdout and stderr through, line by line (rank 0's as they are, the others'
 * prefixed "[rank r]"), and keeps its last stderr lines. Returns a reader of those lines.
 */
function relay(child: ChildProcess, rank: number, keep: number): () => string[] {
  const tail: string[] = [];
  const pipe = (from: NodeJS.ReadableStream, to: NodeJS.WriteStream, isErr: boolean) => {
    let partial = '';
    const emit = (line: string) => {
      to.write(rank === 0 ? line + '\n' : `[rank ${rank}] ${line}\n`);
      if (isErr && line.trim() !== '') { tail.push(line); if (tail.length > keep) tail.shift(); }
    };
    from.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) emit(l);
    });
    from.on('end', () => { if (partial !== '') emit(partial); partial = ''; });
  };
  pipe(child.stdout!, process.stdout, false);
  pipe(child.stderr!, process.stderr, true);
  return () => [...tail];
}

/**
 * In a rank started by `launch`: exit when the launcher goes away (its end of stdin closes), so a
 * launcher killed outright leaves no ranks behind. A no-op in a process it did not start.
 */
export function watchLauncher(onGone: () => void = () => process.exit(1)): void {
  if (process.env.M6_LAUNCHED !== '1') return;
  process.stdin.on('end', onGone);
  process.stdin.on('error', onGone);
  process.stdin.resume();
  process.stdin.unref();
}
