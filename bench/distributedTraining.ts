// The training half of `npm run bench -- distributed`: real `m6 train` runs on the synthetic catalog,
// timed from their own metrics.jsonl (each step's positions over its wall time; the first steps left
// out as warm-up; the median step reported).
//  - Weak scaling: 2 processes × 1 thread on a global batch of 2b against 1 process × 1 thread on b
//    (the same per-rank batch). Efficiency = tokens/s(2 ranks) ÷ 2·tokens/s(1 process); goal ≥ 0.9.
//    Beside it, the ceiling a skeptic asks for: two independent 1-process runs at the same time (no
//    communication; on a 2-core machine the lone process has the other core to itself, two share them),
//    and the 2 ranks over that ceiling: the share the gradient exchange itself costs.
//  - Expert parallel: MoE-64 (every other layer, top-1, dropless) on 2 ranks with --expert-parallel,
//    against the same model data parallel (experts replicated) and the dense model data parallel.
// Runs alternate in rounds (the machine is shared and noisy); each ratio is taken within its round.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMetrics, type TrainMetric } from '../src/train/metrics.js';
import { median, type Figure } from './report.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
const WARMUP_STEPS = 4;

function m6(args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repo, 'bin/m6.js'), ...args], { cwd: repo, env: { ...process.env, OMP_NUM_THREADS: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(); else reject(new Error(`m6 ${args[0]} exited ${code}: ${err}`));
    });
  });
}

/** The median step's tokens/s (global positions over step wall time) of a finished run. */
function tokensPerSecond(runDir: string): number {
  const steps = readMetrics(join(runDir, 'metrics.jsonl')).filter((m): m is TrainMetric => m.kind === 'train' && m.timing !== undefined);
  return median(steps.slice(WARMUP_STEPS).map((m) => m.timing!.positions / m.timing!.total));
}

interface Setup { dir: string; data: string[]; steps: number }

async function setup(quick: boolean): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'm6-bench-dist-'));
  await m6(['data', 'synth', '--out', join(dir, 'catalog'), '--n', '400', '--seed', '1', '--size', '64'], 120_000);
  writeFileSync(join(dir, 'dense.json'), JSON.stringify({ preset: 'm6-nano' }));
  writeFileSync(join(dir, 'moe64.json'), JSON.stringify({ preset: 'm6-nano', experts: 64, moeEvery: 2, topK: 1, capacityFactor: 0 }));
  const data = ['--data', join(dir, 'catalog', 'dataset.json'), '--tasks', 'describe,answer', '--workers', '0', '--seed', '2', '--vocab', '1000', '--eval-every', '0'];
  return { dir, data, steps: quick ? 12 : 24 };
}

let runs = 0;
async function timedRun(s: Setup, config: string, batch: number, extra: string[]): Promise<number> {
  const out = join(s.dir, `run-${runs++}`);
  await m6(['train', ...s.data, '--config', join(s.dir, config), '--batch-size', String(batch), '--steps', String(s.steps), '--out', out, ...extra], 600_000);
  const tps = tokensPerSecond(out);
  rmSync(out, { recursive: true, force: true });
  return tps;
}

export async function runTrainingBench(opts: { quick?: boolean; rounds: number; log: (line: string) => void }): Promise<Figure[]> {
  const s = await setup(opts.quick === true);
  // Two per-rank batches: the gradient exchange (and waiting for the slower rank) costs about the same
  // per step at both, so the small one shows it and the larger one shows it amortised.
  const b = 8, big = 32;
  const kinds = {
    one: () => timedRun(s, 'dense.json', b, []),
    two: () => timedRun(s, 'dense.json', 2 * b, ['--nproc', '2']),
    apart: async () => (await Promise.all([timedRun(s, 'dense.json', b, []), timedRun(s, 'dense.json', b, [])])).reduce((x, y) => x + y),
    oneBig: () => timedRun(s, 'dense.json', big, []),
    apartBig: async () => (await Promise.all([timedRun(s, 'dense.json', big, []), timedRun(s, 'dense.json', big, [])])).reduce((x, y) => x + y),
    twoBig: () => timedRun(s, 'dense.json', 2 * big, ['--nproc', '2']),
    ep: () => timedRun(s, 'moe64.json', 2 * b, ['--nproc', '2', '--expert-parallel']),
    dpMoe: () => timedRun(s, 'moe64.json', 2 * b, ['--nproc', '2']),
  };
  const rounds: Record<keyof typeof kinds, number>[] = [];
  try {
    for (let r = 0; r < opts.rounds; r++) {
      const got = {} as Record<keyof typeof kinds, number>;
      const order = Object.keys(kinds) as (keyof typeof kinds)[];
      for (const k of r % 2 === 0 ? order : [...order].reverse()) got[k] = await kinds[k]();
      rounds.push(got);
      opts.log(`distributed bench: training round ${r + 1}/${opts.rounds}: 1 process ${got.one.toFixed(0)} tok/s, 2 apart ${got.apart.toFixed(0)}, 2 ranks ${got.two.toFixed(0)} (per-rank batch ${big}: ${got.oneBig.toFixed(0)}, ${got.apartBig.toFixed(0)}, ${got.twoBig.toFixed(0)}), `
        + `MoE-64 expert parallel ${got.ep.toFixed(0)}, MoE-64 data parallel ${got.dpMoe.toFixed(0)}`);
    }
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
  const per = (f: (r: Record<keyof typeof kinds, number>) => number) => rounds.map(f);
  const list = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(', ');
  const eff = per((r) => r.two / (2 * r.one)), effBig = per((r) => r.twoBig / (2 * r.oneBig)),
    ofApart = per((r) => r.two / r.apart), ofApartBig = per((r) => r.twoBig / r.apartBig), epDense = per((r) => r.ep / r.two), epDp = per((r) => r.ep / r.dpMoe);
  return [
    { key: 'tokensPerSecond_1process', value: median(per((r) => r.one)), unit: 'tok/s', note: `m6-nano, batch ${b}, 1 thread; median step of ${s.steps} after ${WARMUP_STEPS} warm-up` },
    { key: 'tokensPerSecond_2ranks', value: median(per((r) => r.two)), unit: 'tok/s', note: `the same, --nproc 2, global batch ${2 * b} (${b} per rank), 1 thread each` },
    { key: 'weakScalingEfficiency', value: median(eff), unit: '×', note: `2 ranks ÷ 2 × 1 process, per round: ${list(eff)} (goal ≥ 0.9)` },
    { key: 'tokensPerSecond_2apart', value: median(per((r) => r.apart)), unit: 'tok/s', note: `two independent 1-process runs of batch ${b} at once, summed: the ceiling without communication` },
    { key: 'ratio_2ranks_vs_2apart', value: median(ofApart), unit: '×', note: `2 ranks ÷ 2 apart, per round: ${list(ofApart)} (what the gradient exchange costs)` },
    { key: `tokensPerSecond_1process_batch${big}`, value: median(per((r) => r.oneBig)), unit: 'tok/s', note: `per-rank batch ${big}` },
    { key: `tokensPerSecond_2ranks_batch${big}`, value: median(per((r) => r.twoBig)), unit: 'tok/s', note: `global batch ${2 * big}` },
    { key: `weakScalingEfficiency_batch${big}`, value: median(effBig), unit: '×', note: `per round: ${list(effBig)} (goal ≥ 0.9)` },
    { key: `tokensPerSecond_2apart_batch${big}`, value: median(per((r) => r.apartBig)), unit: 'tok/s', note: `two independent runs of batch ${big} at once, summed` },
    { key: `ratio_2ranks_vs_2apart_batch${big}`, value: median(ofApartBig), unit: '×', note: `per round: ${list(ofApartBig)}` },
    { key: 'tokensPerSecond_moe64_expertParallel', value: median(per((r) => r.ep)), unit: 'tok/s', note: 'MoE-64 (every other layer, top-1, dropless), 2 ranks, 32 experts each' },
    { key: 'tokensPerSecond_moe64_dataParallel', value: median(per((r) => r.dpMoe)), unit: 'tok/s', note: 'the same model, experts replicated on both ranks' },
    { key: 'ratio_expertParallel_vs_denseDataParallel', value: median(epDense), unit: '×', note: `per round: ${list(epDense)}` },
    { key: 'ratio_expertParallel_vs_moeDataParallel', value: median(epDp), unit: '×', note: `per round: ${list(epDp)}` },
  ];
}
