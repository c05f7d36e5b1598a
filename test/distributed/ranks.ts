// Test helper: runs a worker.ts scenario as N child processes on loopback (a free port), torchrun-style
// environment, every child bounded in time and killed when the test ends or fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const workerPath = join(dirname(fileURLToPath(import.meta.url)), 'worker.js');

export interface RankResult {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  out: Record<string, unknown> | undefined;  // the worker's JSON line
  stderr: string;
  ms: number;  // from spawn to exit
}

/**
 * The worker's side of the start protocol: say ready once libtorch is loaded, start on "go" (the
 * parent says it once every rank has loaded: loading takes seconds on a busy machine, more than a
 * short rendezvous timeout). A parent that goes away closes stdin: the worker exits too.
 */
export async function waitForStart(): Promise<void> {
  await new Promise<void>((resolve) => {
    process.stdin.on('data', (d: Buffer) => { if (d.toString().includes('go')) resolve(); });
    process.stdin.on('end', () => process.exit(70));
    process.stderr.write('M6_READY\n');
  });
  process.stdin.unref();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface RunOptions {
  /** Ranks to start (default all of 0..world-1): leaving one out makes a peer that never arrives. */
  ranks?: number[];
  /** The collectives' timeoutMs inside the workers. */
  timeoutMs?: number;
  /** Each child is killed (SIGKILL) after this long. */
  killAfterMs?: number;
  script?: string;
  extraEnv?: Record<string, string>;
}

/** Starts the ranks, waits for all of them to exit; kills them all on a deadline or if this promise is abandoned via `signal`. */
export async function runRanks(scenario: string, world: number, opts: RunOptions = {}, signal?: AbortSignal): Promise<RankResult[]> {
  const port = await freePort();
  const ranks = opts.ranks ?? Array.from({ length: world }, (_, r) => r);
  const children: ChildProcess[] = [];
  const kill = () => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); };
  signal?.addEventListener('abort', kill, { once: true });
  const killAfter = opts.killAfterMs ?? 30_000;
  try {
    let ready = 0;
    const goWhenAllReady = () => { if (++ready === ranks.length) for (const c of children) c.stdin!.write('go\n'); };
    return await Promise.all(ranks.map((rank) => new Promise<RankResult>((resolve) => {
      const t0 = performance.now();
      const child = spawn(process.execPath, [opts.script ?? workerPath, scenario], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {
          ...process.env, ...opts.extraEnv, M6_DIST_TEST_WORKER: '1', RANK: String(rank), WORLD_SIZE: String(world),
          MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), M6_DIST_TEST_TIMEOUT_MS: String(opts.timeoutMs ?? 10_000),
          OMP_NUM_THREADS: '1',
        },
      });
      children.push(child);
      let stdout = '', stderr = '';
      child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => {
        const s = d.toString();
        if (!stderr.includes('M6_READY') && (stderr + s).includes('M6_READY')) goWhenAllReady();
        stderr += s;
      });
      child.stdin!.on('error', () => { /* the child exited first */ });
      const timer = setTimeout(() => { stderr += `\n[test: rank ${rank} killed after ${killAfter} ms]`; child.kill('SIGKILL'); }, killAfter);
      // 'close' comes after the exit and after the last of stdout/stderr.
      child.on('close', (code, sig) => {
        clearTimeout(timer);
        const line = stdout.trim().split('\n').pop();
        let out: Record<string, unknown> | undefined;
        try { out = line ? JSON.parse(line) as Record<string, unknown> : undefined; } catch { out = undefined; }
        resolve({ rank, code, signal: sig, out, stderr, ms: performance.now() - t0 });
      });
    })));
  } finally {
    kill();
    signal?.removeEventListener('abort', kill);
  }
}

/** A readable summary of a failed rank for assertion messages. */
export function describeRank(r: RankResult): string {
  return `rank ${r.rank}: exit ${r.code ?? r.signal}, stdout ${JSON.stringify(r.out)}, stderr:\n${r.stderr.slice(-2000)}`;
}
