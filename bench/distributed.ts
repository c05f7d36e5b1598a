// `npm run bench -- distributed [--json] [--quick] [--rounds=N] [--part=allreduce|training] [--training-rounds=N]`:
// the training half (weak scaling, expert parallel vs data parallel) is in distributedTraining.ts.
// All-reduce bus bandwidth of m6's c10d
// binding (Gloo, 2 processes on loopback) at 1, 16 and 256 MB against PyTorch's own torch.distributed
// Gloo (Debian's python3-torch: the same libtorch and Gloo) on the same sizes, iterations and timing, in
// one run. Goal: m6 ≥ 0.95× torch at every size.
//
// Bus bandwidth is nccl-tests' figure: bytes × 2(n−1)/n ÷ seconds per all-reduce (for 2 ranks, bytes ÷ s).
// Both sides bind Gloo to the loopback interface (GLOO_SOCKET_IFNAME=lo) and run one intra-op thread.
// The machine is shared and noisy: both pairs of processes stay up, idle on stdin, and measure in
// alternating bursts of ~512 MB (who goes first alternates too); each ratio is m6's burst over the torch
// burst next to it, and the figures are medians over rounds.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import * as torch from '../src/torch/index.js';
import { dist } from '../src/distributed/index.js';
import { intFlag, median, printFigures, type Figure } from './report.js';
import { runTrainingBench } from './distributedTraining.js';

const MB = 1 << 20;
const WORLD = 2;

interface Config { rank: number; world: number; port: number }

function cpuModel(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? 'unknown';
  } catch { return 'unknown'; }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** One implementation's WORLD ranks, started once and kept waiting on stdin between bursts. */
class Pair {
  readonly #procs: ChildProcess[];
  readonly #lines: string[][];
  readonly #waiters: (() => void)[] = [];
  #failure: Error | undefined;
  #closing = false;

  private constructor(readonly impl: 'm6' | 'torch', procs: ChildProcess[], python: string) {
    this.#procs = procs;
    this.#lines = procs.map(() => []);
    procs.forEach((p, rank) => {
      let buf = '', err = '';
      p.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.#lines[rank]!.push(buf.slice(0, i).trim());
          buf = buf.slice(i + 1);
          this.#wake();
        }
      });
      p.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-3000); });
      p.on('close', (code, sig) => {
        if (!this.#closing) {
          this.#failure ??= new Error(`distributed bench: ${impl} rank ${rank} exited (${code ?? sig})${impl === 'torch' ? ` — ${python} needs Debian's python3-torch` : ''}:\n${err}`);
        }
        this.#wake();
      });
      p.stdin!.on('error', () => { /* it exited; 'close' reports why */ });
    });
  }

  static async start(impl: 'm6' | 'torch', python: string): Promise<Pair> {
    const port = await freePort();
    const script = impl === 'm6' ? fileURLToPath(import.meta.url) : fileURLToPath(new URL('../../bench/distributed_ref.py', import.meta.url));
    const procs = Array.from({ length: WORLD }, (_, rank) => {
      const cfg: Config = { rank, world: WORLD, port };
      return spawn(impl === 'm6' ? process.execPath : python, impl === 'm6' ? [script, 'worker', JSON.stringify(cfg)] : [script, JSON.stringify(cfg)], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, GLOO_SOCKET_IFNAME: 'lo', OMP_NUM_THREADS: '1' },
      });
    });
    const pair = new Pair(impl, procs, python);
    try {
      await pair.#next();  // "ready" from every rank
    } catch (e) {
      pair.close();
      throw e;
    }
    return pair;
  }

  /** Seconds per all-reduce of `size` bytes over a burst of `iters` (rank 0's clock). */
  async burst(size: number, iters: number): Promise<number> {
    for (const p of this.#procs) p.stdin!.write(JSON.stringify({ size, iters }) + '\n');
    const lines = await this.#next();
    return (JSON.parse(lines[0]!) as { seconds: number }).seconds;
  }

  close(): void {
    this.#closing = true;
    for (const p of this.#procs) {
      if (p.exitCode === null && p.signalCode === null) {
        p.stdin!.end('exit\n');
        setTimeout(() => p.kill('SIGKILL'), 10_000).unref();
      }
    }
  }

  // The next line from every rank (bounded: a burst is at most a few seconds).
  async #next(): Promise<string[]> {
    const deadline = Date.now() + 300_000;
    while (this.#lines.some((l) => l.length === 0)) {
      if (this.#failure) throw this.#failure;
      if (Date.now() > deadline) throw new Error(`distributed bench: ${this.impl} did not answer within 300 s`);
      await new Promise<void>((r) => { this.#waiters.push(r); setTimeout(r, 1000).unref(); });
    }
    return this.#lines.map((l) => l.shift()!);
  }

  #wake(): void { for (const w of this.#waiters.splice(0)) w(); }
}

export async function run(opts: { json: boolean; quick?: boolean }): Promise<Record<string, number>> {
  const part = process.argv.find((a) => a.startsWith('--part='))?.slice(7) ?? 'all';
  if (!['all', 'allreduce', 'training'].includes(part)) throw new Error(`bench distributed: --part must be all, allreduce or training, got '${part}'`);
  const allReduce = part === 'training' ? {} : await allReduceBench(opts);
  if (part === 'allreduce') return allReduce;
  const rounds = intFlag(process.argv, 'training-rounds', opts.quick ? 1 : 3, 1);
  const figures = await runTrainingBench({ quick: opts.quick === true, rounds, log: (l) => { if (!opts.json) console.error(l); } });
  printFigures(`distributed: training on 2 processes × 1 thread (m6 train on the synthetic catalog, ${rounds} rounds)`, figures, opts.json,
    { cpu: cpuModel(), cores: (await import('node:os')).availableParallelism(), rounds, goal: 'weak scaling ≥ 0.9' });
  return { ...allReduce, ...Object.fromEntries(figures.map((f) => [f.key, f.value])) };
}

async function allReduceBench(opts: { json: boolean; quick?: boolean }): Promise<Record<string, number>> {
  const sizesMb = opts.quick ? [1, 16] : [1, 16, 256];
  const sizes = sizesMb.map((m) => m * MB);
  // About 2 GB moved per size (at least 5 all-reduces, at most 100): ~1-2 s each on loopback.
  // A burst moves ~512 MB (3 to 100 all-reduces): 0.1-1 s on loopback, short enough that m6 and torch,
  // alternating burst by burst, see the same load.
  const iters = sizes.map((s) => Math.max(3, Math.min(100, Math.round((512 * MB) / s))));
  const R = intFlag(process.argv, 'rounds', opts.quick ? 3 : 9, 1);  // 9: on 2 shared cores single bursts spread ±30%
  const python = process.env.M6_BENCH_PYTHON ?? '/usr/bin/python3';
  const busFactor = (2 * (WORLD - 1)) / WORLD;
  // Both pairs stay up for the whole run, idle on stdin while the other measures.
  const pairs = { m6: await Pair.start('m6', python), torch: await Pair.start('torch', python) };
  const rounds: { m6: number[]; torch: number[] }[] = [];
  try {
    for (const [i, size] of sizes.entries()) for (const p of Object.values(pairs)) await p.burst(size, Math.min(iters[i]!, 10));  // warm-up
    for (let round = 0; round < R; round++) {
      const r = { m6: [] as number[], torch: [] as number[] };
      for (const [i, size] of sizes.entries()) {
        const order: ('m6' | 'torch')[] = (round + i) % 2 === 0 ? ['m6', 'torch'] : ['torch', 'm6'];
        for (const impl of order) r[impl][i] = await pairs[impl].burst(size, iters[i]!);
      }
      rounds.push(r);
      if (!opts.json) {
        console.error(`distributed bench: round ${round + 1}/${R}: ` + sizesMb.map((m, i) =>
          `${m} MB m6 ${(sizes[i]! * busFactor / r.m6[i]! / 1e9).toFixed(2)} / torch ${(sizes[i]! * busFactor / r.torch[i]! / 1e9).toFixed(2)} GB/s`).join(', '));
      }
    }
  } finally {
    pairs.m6.close();
    pairs.torch.close();
  }
  const figures: Figure[] = [];
  sizesMb.forEach((m, i) => {
    const bw = (s: number) => (sizes[i]! * busFactor) / s / 1e9;
    const m6 = rounds.map((r) => bw(r.m6[i]!)), ref = rounds.map((r) => bw(r.torch[i]!));
    const ratios = rounds.map((_, k) => m6[k]! / ref[k]!);
    figures.push({ key: `busBandwidth_m6_${m}MB`, value: median(m6), unit: 'GB/s', note: `median of ${R} bursts of ${iters[i]} all-reduces, ${(1e3 * median(rounds.map((r) => r.m6[i]!))).toFixed(2)} ms each` });
    figures.push({ key: `busBandwidth_torch_${m}MB`, value: median(ref), unit: 'GB/s', note: `torch.distributed gloo; ${(1e3 * median(rounds.map((r) => r.torch[i]!))).toFixed(2)} ms each` });
    figures.push({ key: `ratio_${m}MB`, value: median(ratios), unit: '× torch', note: `median of ${R} rounds, each m6's burst over torch's next to it (${ratios.map((x) => x.toFixed(3)).join(', ')})` });
  });
  printFigures(`distributed: all-reduce bus bandwidth, m6 c10d vs torch.distributed, gloo, ${WORLD} processes on loopback (float32 sum, ${R} rounds)`, figures, opts.json,
    { cpu: cpuModel(), cores: (await import('node:os')).availableParallelism(), torch: torch.engineInfo().torchVersion, world: WORLD, rounds: R, goal: 'ratio ≥ 0.95 at every size',
      ratiosByRound: Object.fromEntries(sizesMb.map((m, i) => [`${m}MB`, rounds.map((r) => Number((r.torch[i]! / r.m6[i]!).toFixed(3)))])) });
  return Object.fromEntries(figures.map((f) => [f.key, f.value]));
}

// Child process: one m6 rank, driven and timed exactly as distributed_ref.py drives and times torch's.
if (process.argv[2] === 'worker') {
  const cfg = JSON.parse(process.argv[3]!) as Config;
  torch.setNumThreads(1);
  const pg = await dist.init({ backend: 'gloo', rank: cfg.rank, worldSize: cfg.world, masterAddr: '127.0.0.1', masterPort: cfg.port, timeoutMs: 120_000 });
  process.stdout.write('ready\n');
  const tensors = new Map<number, torch.Tensor>();
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === 'exit') break;
    const { size, iters } = JSON.parse(line) as { size: number; iters: number };
    let t = tensors.get(size);
    if (!t) tensors.set(size, (t = torch.ones([size / 4], { dtype: 'float32' }).keep()));
    t.fill_(1);  // the sums double each time: start again from ones so they stay finite
    await pg.barrier();
    const t0 = performance.now();
    for (let k = 0; k < iters; k++) await pg.allReduce(t);
    process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1e3 / iters }) + '\n');
  }
  await pg.destroy();
}
