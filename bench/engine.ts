// `npm run bench -- engine [--json] [--quick]`: the tensor engine against PyTorch (Debian's
// python3-torch: the same libtorch) on the same work, shapes and threads, in the same command:
//   (a) per-op overhead on 1-element tensors,
//   (b) a training step (forward, backward, AdamW) of a 4-layer pre-LN transformer, d=512, 8 heads,
//       sequence 128, batch 16, in fp32 and in bf16 autocast,
//   (c) the fraction of the machine's peak reached, with peak measured here by a large GEMM per dtype.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/torch/index.js';
import { BareTransformer, type BareConfig } from './bareTransformer.js';
import { median, printFigures, type Figure } from './report.js';

export interface EngineBenchOptions { json: boolean; quick?: boolean; python?: string }

interface RefResult {
  torchVersion: string; threads: number; opMicros: number; opMicrosGrad: number;
  gemmGflopsFp32: number; gemmGflopsBf16: number; stepSecondsFp32: number; stepSecondsBf16: number;
}

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

export async function run(opts: EngineBenchOptions): Promise<Record<string, number>> {
  const threads = torch.getNumThreads();
  const model: BareConfig = { layers: 4, dim: 512, heads: 8, seq: 128, batch: 16, vocab: 8192 };
  const cfg = {
    threads, model,
    opIters: opts.quick ? 20_000 : 200_000, opRepeats: 5,
    gemmN: opts.quick ? 1024 : 2048, gemmIters: opts.quick ? 3 : 5,
    warmup: opts.quick ? 1 : 3, steps: opts.quick ? 2 : 5,
  };
  const rounds = opts.quick ? 1 : 2;
  const python = opts.python ?? process.env.M6_BENCH_PYTHON ?? '/usr/bin/python3';
  const refScript = fileURLToPath(new URL('../../bench/engine_ref.py', import.meta.url));
  if (!opts.json) console.error(`engine bench: ${threads} threads; PyTorch reference: ${python} ${refScript}`);
  // PyTorch (in its own process, so the two never compete for the cores) and m6 take turns, for
  // `rounds` rounds; each side keeps its best round, so a burst of load from elsewhere on a shared
  // machine penalises neither side more than the other.
  // Both sides keep freed large blocks in the heap (m6 by mallopt, Python by glibc's environment
  // variables), so neither pays page faults for re-allocating activations every step.
  const keepBytes = 2 ** 31 - 1;
  torch.keepLargeAllocations(keepBytes);
  const refRound = (): RefResult => {
    try {
      return JSON.parse(execFileSync(python, [refScript, JSON.stringify(cfg)], {
        encoding: 'utf8', maxBuffer: 1 << 20,
        env: { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads),
          MALLOC_MMAP_THRESHOLD_: String(keepBytes), MALLOC_TRIM_THRESHOLD_: String(keepBytes) },
      })) as RefResult;
    } catch (e) {
      throw new Error(`the PyTorch reference failed (${python} needs Debian's python3-torch: apt-get install python3-torch): ${(e as Error).message}`);
    }
  };
  torch.manualSeed(0);
  const net = new BareTransformer(model);
  const m6Round = () => ({
    opMicros: opLoop(false, cfg.opIters, cfg.opRepeats),
    opMicrosGrad: opLoop(true, cfg.opIters, cfg.opRepeats),
    gemmGflopsFp32: gemm('float32', cfg.gemmN, cfg.gemmIters),
    gemmGflopsBf16: gemm('bfloat16', cfg.gemmN, cfg.gemmIters),
    stepSecondsFp32: stepTime(net, false, cfg.warmup, cfg.steps),
    stepSecondsBf16: stepTime(net, true, cfg.warmup, cfg.steps),
  });
  const refs: RefResult[] = [], mine: ReturnType<typeof m6Round>[] = [];
  for (let r = 0; r < rounds; r++) {
    refs.push(refRound());
    mine.push(m6Round());
  }
  const best = <T>(xs: T[], k: keyof T, higherIsBetter = false): number => {
    const v = xs.map((x) => x[k] as number);
    return higherIsBetter ? Math.max(...v) : Math.min(...v);
  };
  const ref: RefResult = {
    torchVersion: refs[0].torchVersion, threads: refs[0].threads,
    opMicros: best(refs, 'opMicros'), opMicrosGrad: best(refs, 'opMicrosGrad'),
    gemmGflopsFp32: best(refs, 'gemmGflopsFp32', true), gemmGflopsBf16: best(refs, 'gemmGflopsBf16', true),
    stepSecondsFp32: best(refs, 'stepSecondsFp32'), stepSecondsBf16: best(refs, 'stepSecondsBf16'),
  };
  const opMicros = best(mine, 'opMicros'), opMicrosGrad = best(mine, 'opMicrosGrad');
  const gemmFp32 = best(mine, 'gemmGflopsFp32', true), gemmBf16 = best(mine, 'gemmGflopsBf16', true);
  const stepFp32 = best(mine, 'stepSecondsFp32'), stepBf16 = best(mine, 'stepSecondsBf16');
  const flops = net.flopsPerStep;

  const figures: Figure[] = [
    { key: 'opMicrosM6', value: opMicros, unit: 'µs/op', note: 'add of 1-element tensors, through the Tensor API, freed by scopes' },
    { key: 'opMicrosPyTorch', value: ref.opMicros, unit: 'µs/op', note: 'torch.add in Python' },
    { key: 'opOverheadRatio', value: opMicros / ref.opMicros, unit: '×', note: 'm6 / PyTorch (goal ≤ 1.0)' },
    { key: 'opMicrosGradM6', value: opMicrosGrad, unit: 'µs/op', note: 'same, self requires grad (records autograd history)' },
    { key: 'opMicrosGradPyTorch', value: ref.opMicrosGrad, unit: 'µs/op' },
    { key: 'opOverheadRatioGrad', value: opMicrosGrad / ref.opMicrosGrad, unit: '×' },
    { key: 'stepSecondsFp32M6', value: stepFp32, unit: 's', note: `${(net.parameterCount / 1e6).toFixed(1)}M params, ${(flops / 1e9).toFixed(0)} GFLOP/step` },
    { key: 'stepSecondsFp32PyTorch', value: ref.stepSecondsFp32, unit: 's' },
    { key: 'stepRatioFp32', value: stepFp32 / ref.stepSecondsFp32, unit: '×', note: 'm6 / PyTorch (goal ≤ 1.05)' },
    { key: 'stepSecondsBf16M6', value: stepBf16, unit: 's', note: 'bf16 autocast' },
    { key: 'stepSecondsBf16PyTorch', value: ref.stepSecondsBf16, unit: 's' },
    { key: 'stepRatioBf16', value: stepBf16 / ref.stepSecondsBf16, unit: '×', note: 'm6 / PyTorch (goal ≤ 1.05)' },
    { key: 'peakGemmGflopsFp32', value: gemmFp32, unit: 'GFLOP/s', note: `${cfg.gemmN}³ matmul in m6 (PyTorch: ${ref.gemmGflopsFp32.toFixed(0)})` },
    { key: 'peakGemmGflopsBf16', value: gemmBf16, unit: 'GFLOP/s', note: `${cfg.gemmN}³ matmul in m6 (PyTorch: ${ref.gemmGflopsBf16.toFixed(0)})` },
    { key: 'mfuFp32', value: flops / stepFp32 / 1e9 / gemmFp32, unit: 'of peak', note: 'model FLOP/s ÷ peak GEMM, fp32' },
    { key: 'mfuBf16', value: flops / stepBf16 / 1e9 / gemmBf16, unit: 'of peak', note: 'model FLOP/s ÷ peak GEMM, bf16' },
    { key: 'mfuFp32PyTorch', value: flops / ref.stepSecondsFp32 / 1e9 / ref.gemmGflopsFp32, unit: 'of peak' },
    { key: 'mfuBf16PyTorch', value: flops / ref.stepSecondsBf16 / 1e9 / ref.gemmGflopsBf16, unit: 'of peak' },
  ];
  printFigures('engine: m6 vs PyTorch, same libtorch, same shapes, same threads', figures, opts.json,
    { libtorch: torch.engineInfo().torchVersion, pytorch: ref.torchVersion, threads, rounds, model: `${model.layers}L d${model.dim} h${model.heads} T${model.seq} B${model.batch} V${model.vocab}` });
  return Object.fromEntries(figures.map((f) => [f.key, f.value]));
}
