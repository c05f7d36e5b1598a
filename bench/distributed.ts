// `npm run bench -- distributed [--json] [--quick] [--rounds=N]`: all-reduce bus bandwidth of m6's c10d
// binding (Gloo, 2 processes on loopback) at 1, 16 and 256 MB against PyTorch's own torch.distributed
// Gloo (Debian's python3-torch: the same libtorch and Gloo) on the same sizes, iterations and timing, in
// one run. Goal: m6 ≥ 0.95× torch at every size.
//
// Bus bandwidth is nccl-tests' figure: bytes × 2(n−1)/n ÷ seconds per all-reduce (for 2 ranks, bytes ÷ s).
// Both sides bind Gloo to the loopback interface (GLOO_SOCKET_IFNAME=lo) and run one intra-op thread.
// The machine is shared and noisy: rounds alternate m6 and torch (which goes first alternates too), each
// ratio is taken within its round, and the figures are medians over rounds.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import * as torch from '../src/torch/index.js';
import { dist } from '../src/distributed/index.js';
import { intFlag, median, printFigures, type Figure } from './report.js';

const MB = 1 << 20;
const WORLD = 2;

interface Config { rank: number; world: number; port: number; sizes: number[]; iters: number[]; warmup: number }

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

/** Runs one implementation's WORLD ranks; resolves to rank 0's seconds per all-reduce for each size. */
async function runPair(impl: 'm6' | 'torch', sizes: number[], iters: number[], warmup: number, python: string): Promise<number[]> {
  const port = await freePort();
  const script = impl === 'm6' ? fileURLToPath(import.meta.url) : fileURLToPath(new URL('../../bench/distributed_ref.py', import.meta.url));
  const procs = Array.from({ length: WORLD }, (_, rank) => {
    const cfg: Config = { rank, world: WORLD, port, sizes, iters, warmup };
    const args = impl === 'm6' ? [script, 'worker', JSON.stringify(cfg)] : [script, JSON.stringify(cfg)];
    return spawn(impl === 'm6' ? process.execPath : python, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GLOO_SOCKET_IFNAME: 'lo', OMP_NUM_THREADS: '1' },
    });
  });
  const killAll = () => { for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); };
  const deadline = setTimeout(killAll, 600_000);
  try {
    const outs = await Promise.all(procs.map((p, rank) => new Promise<string>((resolve, reject) => {
      let out = '', err = '';
      p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      p.on('error', reject);
      p.on('close', (code, sig) => {
        if (code === 0) resolve(out);
        else reject(new Error(`distributed bench: ${impl} rank ${rank} failed (${code ?? sig})${impl === 'torch' ? ` — ${python} needs Debian's python3-torch` : ''}:\n${err.slice(-1500)}`));
      });
    })));
    return (JSON.parse(outs[0]!.trim().split('\n').pop()!) as { seconds: number[] }).seconds;
  } finally {
    clearTimeout(deadline);
    killAll();
  }
}

export async function run(opts: { json: boolean; quick?: boolean }): Promise<Record<string, number>> {
  const sizesMb = opts.quick ? [1, 16] : [1, 16, 256];
  const sizes = sizesMb.map((m) => m * MB);
  // About 2 GB moved per size (at least 5 all-reduces, at most 100): ~1-2 s each on loopback.
  const iters = sizes.map((s) => Math.max(5, Math.min(100, Math.round((2048 * MB) / s))));
  const warmup = 3;
  const R = intFlag(process.argv, 'rounds', opts.quick ? 1 : 3, 1);
  const python = process.env.M6_BENCH_PYTHON ?? '/usr/bin/python3';
  const busFactor = (2 * (WORLD - 1)) / WORLD;
  const rounds: { m6: number[]; torch: number[] }[] = [];
  for (let round = 0; round < R; round++) {
    const order: ('m6' | 'torch')[] = round % 2 === 0 ? ['m6', 'torch'] : ['torch', 'm6'];
    const r = { m6: [] as number[], torch: [] as number[] };
    for (const impl of order) r[impl] = await runPair(impl, sizes, iters, warmup, python);
    rounds.push(r);
    if (!opts.json) {
      console.error(`distributed bench: round ${round + 1}/${R}: ` + sizesMb.map((m, i) =>
        `${m} MB m6 ${(sizes[i]! * busFactor / r.m6[i]! / 1e9).toFixed(2)} / torch ${(sizes[i]! * busFactor / r.torch[i]! / 1e9).toFixed(2)} GB/s`).join(', '));
    }
  }
  const figures: Figure[] = [];
  sizesMb.forEach((m, i) => {
    const bw = (s: number) => (sizes[i]! * busFactor) / s / 1e9;
    const m6 = rounds.map((r) => bw(r.m6[i]!)), ref = rounds.map((r) => bw(r.torch[i]!));
    const ratios = rounds.map((_, k) => m6[k]! / ref[k]!);
    figures.push({ key: `busBandwidth_m6_${m}MB`, value: median(m6), unit: 'GB/s', note: `median of ${R}; ${iters[i]} all-reduces per round, ${(1e3 * median(rounds.map((r) => r.m6[i]!))).toFixed(2)} ms each` });
    figures.push({ key: `busBandwidth_torch_${m}MB`, value: median(ref), unit: 'GB/s', note: `torch.distributed gloo; ${(1e3 * median(rounds.map((r) => r.torch[i]!))).toFixed(2)} ms each` });
    figures.push({ key: `ratio_${m}MB`, value: median(ratios), unit: '× torch', note: `median of ${R} rounds (each ${ratios.map((x) => x.toFixed(3)).join(', ')})` });
  });
  printFigures(`distributed: all-reduce bus bandwidth, m6 c10d vs torch.distributed, gloo, ${WORLD} processes on loopback (float32 sum, ${R} rounds)`, figures, opts.json,
    { cpu: cpuModel(), cores: (await import('node:os')).availableParallelism(), torch: torch.engineInfo().torchVersion, world: WORLD, rounds: R, goal: 'ratio ≥ 0.95 at every size' });
  return Object.fromEntries(figures.map((f) => [f.key, f.value]));
}

// Child process: one m6 rank, timed exactly as distributed_ref.py times torch's.
if (process.argv[2] === 'worker') {
  const cfg = JSON.parse(process.argv[3]!) as Config;
  torch.setNumThreads(1);
  const pg = await dist.init({ backend: 'gloo', rank: cfg.rank, worldSize: cfg.world, masterAddr: '127.0.0.1', masterPort: cfg.port, timeoutMs: 120_000 });
  const seconds: number[] = [];
  for (const [i, size] of cfg.sizes.entries()) {
    const t = torch.ones([size / 4], { dtype: 'float32' });
    for (let k = 0; k < cfg.warmup; k++) await pg.allReduce(t);
    await pg.barrier();
    const t0 = performance.now();
    for (let k = 0; k < cfg.iters[i]!; k++) await pg.allReduce(t);
    seconds.push((performance.now() - t0) / 1e3 / cfg.iters[i]!);
    t.dispose();
  }
  await pg.barrier();
  await pg.destroy();
  if (cfg.rank === 0) process.stdout.write(JSON.stringify({ seconds }) + '\n');
}
