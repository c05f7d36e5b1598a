// `npm run bench -- engine [--json] [--quick] [--fp32|--bf16]`: the tensor engine against PyTorch (Debian's
// python3-torch: the same libtorch) on the same work, shapes and threads, in the same command:
//   (a) per-op overhead on 1-element tensors, over interleaved rounds (median and spread),
//   (b) a training step (forward, backward, AdamW) of a 4-layer pre-LN transformer, d=512, 8 heads,
//       sequence 128, batch 16, in fp32 and, where this CPU accelerates bf16 (bench/dtype.ts), in bf16 autocast,
//   (c) the fraction of the machine's peak reached, with peak measured here by a large GEMM per dtype.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/torch/index.js';
import { BareTransformer, type BareConfig } from './bareTransformer.js';
import { chooseBf16 } from './dtype.js';
import { median, printFigures, type Figure } from './report.js';

export interface EngineBenchOptions { json: boolean; quick?: boolean; python?: string }

function opLoop(requiresGrad: boolean, iters: number, repeats: number): number {
  const a = torch.ones([1], { requiresGrad }).keep();
  const b = torch.ones([1]).keep();
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    // Scopes of 1,000 ops: the way a loop frees its temporaries in m6 (freeing is part of the cost).
    for (let i = 0; i < iters; i += 1000) torch.scope(() => { for (let j = 0; j < 1000; j++) a.add(b); });
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e3 / iters);
  }
  a.dispose(); b.dispose();
  return best;
}

/** The machine's peak as the benches define it: GFLOP/s of an n×n×n matmul in `dtype` (median of `iters`). */
export function gemm(dtype: torch.DType, n: number, iters: number): number {
  return torch.scope(() => {
    const a = torch.randn([n, n]).to(dtype), b = torch.randn([n, n]).to(dtype);
    for (let i = 0; i < 2; i++) torch.scope(() => a.matmul(b).dispose());
    const ts: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      torch.scope(() => { a.matmul(b); });
      ts.push((performance.now() - t0) / 1e3);
    }
    return (2 * n ** 3) / median(ts) / 1e9;
  });
}

function stepTime(model: BareTransformer, bf16: boolean, warmup: number, steps: number): number {
  const { batch, seq, vocab } = model.cfg;
  return torch.scope(() => {
    const tokens = torch.randint(0, vocab, [batch, seq]), targets = torch.randint(0, vocab, [batch, seq]);
    for (let i = 0; i < warmup; i++) model.step(tokens, targets, bf16);
    const ts: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      model.step(tokens, targets, bf16);
      ts.push((performance.now() - t0) / 1e3);
    }
    return median(ts);
  });
}

/** One round of each part: the per-op loops, and the GEMMs with the training steps (engine_ref.py measures the same two parts). */
interface Round { opMicros: number; opMicrosGrad: number }
interface StepRound { gemmGflopsFp32: number; gemmGflopsBf16: number | null; stepSecondsFp32: number; stepSecondsBf16: number | null }

export async function run(opts: EngineBenchOptions): Promise<Record<string, number>> {
  const threads = torch.getNumThreads();
  const model: BareConfig = { layers: 4, dim: 512, heads: 8, seq: 128, batch: 16, vocab: 8192 };
  // bf16 where this CPU accelerates it; elsewhere its figures are left out (one emulated bf16 step took 85 s).
  const dtype = chooseBf16(process.argv);
  const cfg = {
    threads, model, bf16: dtype.bf16,
    opIters: opts.quick ? 20_000 : 200_000, opRepeats: 5,
    gemmN: opts.quick ? 1024 : 2048, gemmIters: opts.quick ? 3 : 5,
    warmup: opts.quick ? 1 : 3, steps: opts.quick ? 2 : 5,
  };
  const rounds = opts.quick ? 1 : 2;
  // The per-op figure takes well under a second a side, and a single round of it read off by half on
  // a loaded machine: it gets rounds of its own, interleaved, and reports their spread.
  const opRounds = 5;
  const python = opts.python ?? process.env.M6_BENCH_PYTHON ?? '/usr/bin/python3';
  const refScript = fileURLToPath(new URL('../../bench/engine_ref.py', import.meta.url));
  if (!opts.json) console.error(`engine bench: ${threads} threads; ${dtype.bf16 ? 'fp32 and bf16' : 'fp32 only'} (${dtype.why}); PyTorch reference: ${python} ${refScript}`);
  // PyTorch (in its own process, so the two never compete for the cores) and m6 take turns, for
  // `rounds` rounds; each side keeps its best round, so a burst of load from elsewhere on a shared
  // machine penalises neither side more than the other.
  // Both sides keep freed large blocks in the heap (m6 by mallopt, Python by glibc's environment
  // variables), so neither pays page faults for re-allocating activations every step.
  const keepBytes = 2 ** 31 - 1;
  // The same BLAS on both sides: where m6 loaded OpenBLAS's OpenMP build in place of the system's
  // (scripts/find-libtorch.mjs), the reference's libtorch finds it first on its library path too.
  const blasDir = torch.engineInfo().blasLibrary?.match(/^(.*)\/libblas\.so\.3$/)?.[1];
  const sameBlas = blasDir !== undefined && blasDir.endsWith('openblas-openmp') ? { LD_LIBRARY_PATH: [blasDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') } : {};
  torch.keepLargeAllocations(keepBytes);
  const refRound = <T>(part: 'ops' | 'steps'): T & { torchVersion: string } => {
    try {
      return JSON.parse(execFileSync(python, [refScript, JSON.stringify({ ...cfg, part })], {
        encoding: 'utf8', maxBuffer: 1 << 20,
        env: { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads),
          MALLOC_MMAP_THRESHOLD_: String(keepBytes), MALLOC_TRIM_THRESHOLD_: String(keepBytes), ...sameBlas },
      })) as T & { torchVersion: string };
    } catch (e) {
      throw new Error(`the PyTorch reference failed (${python} needs Debian's python3-torch: apt-get install python3-torch): ${(e as Error).message}`);
    }
  };
  torch.manualSeed(0);
  const net = new BareTransformer(model);
  const opRound = (): Round => ({ opMicros: opLoop(false, cfg.opIters, cfg.opRepeats), opMicrosGrad: opLoop(true, cfg.opIters, cfg.opRepeats) });
  const stepRound = (): StepRound => ({
    gemmGflopsFp32: gemm('float32', cfg.gemmN, cfg.gemmIters),
    gemmGflopsBf16: cfg.bf16 ? gemm('bfloat16', cfg.gemmN, cfg.gemmIters) : null,
    stepSecondsFp32: stepTime(net, false, cfg.warmup, cfg.steps),
    stepSecondsBf16: cfg.bf16 ? stepTime(net, true, cfg.warmup, cfg.steps) : null,
  });
  const refOps: Round[] = [], myOps: Round[] = [], refSteps: StepRound[] = [], mySteps: StepRound[] = [];
  let torchVersion = '';
  for (let r = 0; r < opRounds; r++) {
    const ref = refRound<Round>('ops');
    torchVersion = ref.torchVersion;
    refOps.push(ref);
    myOps.push(opRound());
  }
  for (let r = 0; r < rounds; r++) {
    refSteps.push(refRound<StepRound>('steps'));
    mySteps.push(stepRound());
  }
  const best = <T>(xs: T[], k: keyof T, higherIsBetter = false): number => {
    const v = xs.map((x) => x[k] as number);
    return higherIsBetter ? Math.max(...v) : Math.min(...v);
  };
  // Per-op: medians over the interleaved rounds, and each round's ratio (m6 ÷ the PyTorch run just before it).
  const opFigures = (k: keyof Round, key: string, note: string): Figure[] => {
    const ratios = myOps.map((m, i) => m[k] / refOps[i]![k]);
    const spread = `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
    return [
      { key: `${key}M6`, value: median(myOps.map((m) => m[k])), unit: 'µs/op', note: `${note}; median of ${opRounds} rounds` },
      { key: `${key}PyTorch`, value: median(refOps.map((m) => m[k])), unit: 'µs/op', note: `median of ${opRounds} rounds, interleaved with m6's` },
      { key: k === 'opMicros' ? 'opOverheadRatio' : 'opOverheadRatioGrad', value: median(ratios), unit: '×', note: `m6 / PyTorch, median of ${opRounds} rounds (spread ${spread}: ${ratios.map((x) => x.toFixed(2)).join(', ')})${k === 'opMicros' ? '; goal ≤ 1.0' : ''}` },
    ];
  };
  const refGemmFp32 = best(refSteps, 'gemmGflopsFp32', true), refStepFp32 = best(refSteps, 'stepSecondsFp32');
  const gemmFp32 = best(mySteps, 'gemmGflopsFp32', true), stepFp32 = best(mySteps, 'stepSecondsFp32');
  const flops = net.flopsPerStep;
  const figures: Figure[] = [
    ...opFigures('opMicros', 'opMicros', 'add of 1-element tensors, through the Tensor API, freed by scopes (PyTorch: torch.add in Python)'),
    ...opFigures('opMicrosGrad', 'opMicrosGrad', 'same, self requires grad (records autograd history)'),
    { key: 'stepSecondsFp32M6', value: stepFp32, unit: 's', note: `${(net.parameterCount / 1e6).toFixed(1)}M params, ${(flops / 1e9).toFixed(0)} GFLOP/step` },
    { key: 'stepSecondsFp32PyTorch', value: refStepFp32, unit: 's' },
    { key: 'stepRatioFp32', value: stepFp32 / refStepFp32, unit: '×', note: 'm6 / PyTorch (goal ≤ 1.05)' },
    { key: 'peakGemmGflopsFp32', value: gemmFp32, unit: 'GFLOP/s', note: `${cfg.gemmN}³ matmul in m6 (PyTorch: ${refGemmFp32.toFixed(0)})` },
    { key: 'mfuFp32', value: flops / stepFp32 / 1e9 / gemmFp32, unit: 'of peak', note: 'model FLOP/s ÷ peak GEMM, fp32' },
    { key: 'mfuFp32PyTorch', value: flops / refStepFp32 / 1e9 / refGemmFp32, unit: 'of peak' },
    ...(cfg.bf16 ? bf16Figures(mySteps, refSteps, flops, cfg.gemmN) : []),
  ];
  printFigures('engine: m6 vs PyTorch, same libtorch, same shapes, same threads', figures, opts.json,
    { libtorch: torch.engineInfo().torchVersion, pytorch: torchVersion, threads, rounds, opRounds, dtypes: cfg.bf16 ? 'fp32, bf16' : `fp32 (${dtype.why})`, model: `${model.layers}L d${model.dim} h${model.heads} T${model.seq} B${model.batch} V${model.vocab}` });
  return Object.fromEntries(figures.map((f) => [f.key, f.value]));
}

/** The bf16 autocast figures, each side's best round (only where bf16 ran). */
function bf16Figures(mine: StepRound[], refs: StepRound[], flops: number, gemmN: number): Figure[] {
  const min = (xs: StepRound[], k: 'stepSecondsBf16') => Math.min(...xs.map((x) => x[k]!));
  const max = (xs: StepRound[], k: 'gemmGflopsBf16') => Math.max(...xs.map((x) => x[k]!));
  const step = min(mine, 'stepSecondsBf16'), refStep = min(refs, 'stepSecondsBf16');
  const gemmBf16 = max(mine, 'gemmGflopsBf16'), refGemm = max(refs, 'gemmGflopsBf16');
  return [
    { key: 'stepSecondsBf16M6', value: step, unit: 's', note: 'bf16 autocast' },
    { key: 'stepSecondsBf16PyTorch', value: refStep, unit: 's' },
    { key: 'stepRatioBf16', value: step / refStep, unit: '×', note: 'm6 / PyTorch (goal ≤ 1.05)' },
    { key: 'peakGemmGflopsBf16', value: gemmBf16, unit: 'GFLOP/s', note: `${gemmN}³ matmul in m6 (PyTorch: ${refGemm.toFixed(0)})` },
    { key: 'mfuBf16', value: flops / step / 1e9 / gemmBf16, unit: 'of peak', note: 'model FLOP/s ÷ peak GEMM, bf16' },
    { key: 'mfuBf16PyTorch', value: flops / refStep / 1e9 / refGemm, unit: 'of peak' },
  ];
}
