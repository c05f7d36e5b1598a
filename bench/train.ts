// `npm run bench -- train [--json] [--quick] [--fp32|--bf16] [--batch=N] [--workers=N] [--rounds=N]`: training throughput of
// m6-small on the synthetic catalog through the real path — DataLoader with image workers and
// augmentation, describe + answer task mixture, `train()` with clipping, per-task losses and
// metrics.jsonl — against references measured in the same command:
//   - peak GEMM: GFLOP/s of a large matmul in the run's dtype (MFU = achieved model FLOP/s ÷ this);
//   - the bare transformer step (bench/bareTransformer.ts: the engine bench's model, written on the
//     tensor API with no loader, no module tree, no bookkeeping) of equal size.
//
// "Equal size" is what makes the ratio mean "overhead": the bare step has the same layers, width,
// heads and FFN (m6-small's is 4·dim, as the bare one's), the same rows per batch, as many positions
// per row as the real batches' blocks ran over on average (image patches + padded source + padded
// target: padding is computed, so it is counted on both sides), the same vocabulary, and its tied
// head over as many positions as the real targets (M6 runs the head over the targets only). What the
// real model does beyond that (the image stem's convolutions, a per-row prefix-LM mask instead of one
// causal mask) is real work, so the ratio is taken on achieved model FLOP/s, each side's FLOPs
// counted from its own shapes (src/model/flops.ts for M6): ratio = MFU(real) ÷ MFU(bare), goal ≥ 0.85.
// The tokens/s ratio is printed too.
//
// Steady state: the first steps (warmup) are left out; throughput is Σ positions ÷ wall time of the
// remaining steps, from the trainer's own metrics.jsonl (its per-step timing records). The same
// records give where the time went: loader wait, forward, backward, optimizer, and bookkeeping (the
// rest: per-row losses, freeing, metrics and progress). The bare step is timed the same way (mean of
// its steps after warmup), phase by phase, so each phase of the real loop has its reference.
//
// On a shared machine other processes' load moves all of this: real and bare run in rounds (each
// ratio within its round, the median round reported, every round's ratio listed), and the figures
// include the 1-minute load average before and after.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../src/torch/index.js';
import { writeSyntheticCatalog } from '../src/data/synth/catalog.js';
import { loadDatasetSpecFile, resolveDatasetSpec } from '../src/data/datasetSpec.js';
import { defaultWorkerCount } from '../src/data/imagePool.js';
import { Tokenizer } from '../src/data/tokenizer.js';
import { M6Model, preset, type M6Config, type M6Input } from '../src/model/index.js';
import { batchFlops, type BatchShape } from '../src/model/flops.js';
import { buildTaskData, taskTexts, type TaskData } from '../src/tasks/taskData.js';
import { readMetrics, type StepTiming, type TrainMetric } from '../src/train/metrics.js';
import { train } from '../src/train/trainer.js';
import { BareTransformer } from './bareTransformer.js';
import { gemm } from './engine.js';
import { chooseBf16 } from './dtype.js';
import { intFlag, printFigures, type Figure } from './report.js';

const PRESET = 'm6-small';
/** The text vocabulary `m6 train` trains by default (--vocab); image codes come from the preset. */
const TEXT_VOCAB = 2000;

interface Plan {
  bf16: boolean; batch: number; products: number; warmup: number; steps: number;
  bareWarmup: number; gemmN: number; gemmIters: number;
  /** Image workers of the real loader (--workers=N; default: the loader's own default). */
  workers: number | undefined;
  /** Rounds of real + bare (--rounds=N; default 3, --quick 1). */
  rounds: number;
}

function plan(quick: boolean, argv: readonly string[]): Plan {
  const batch = intFlag(argv, 'batch', quick ? 4 : 16, 1);
  // bf16 autocast where the CPU has bf16 matmul, else fp32 (as `m6 demo` chooses); the flags override.
  const { bf16 } = chooseBf16(argv);
  const workers = intFlag(argv, 'workers', undefined, 0);
  const rounds = intFlag(argv, 'rounds', quick ? 1 : 3, 1);
  return quick
    ? { bf16, batch, products: 48, warmup: 1, steps: 2, bareWarmup: 1, gemmN: 1024, gemmIters: 3, workers, rounds }
    : { bf16, batch, products: 512, warmup: 3, steps: 24, bareWarmup: 2, gemmN: 2048, gemmIters: 5, workers, rounds };
}

/** The synthetic catalog at m6-small's image size, kept between runs (rendering it is not what is measured). */
async function catalog(products: number): Promise<string> {
  const size = preset(PRESET).imageSize;
  const dir = join(tmpdir(), 'm6-bench', `train-catalog-${products}-${size}`);
  const stamp = join(dir, 'bench-catalog.json');
  const wanted = JSON.stringify({ products, seed: 0, size });
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== wanted) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await writeSyntheticCatalog({ out: dir, count: products, seed: 0, size });
    writeFileSync(stamp, wanted);
  }
  return dir;
}

interface PhaseSeconds { data: number; forward: number; backward: number; optimizer: number; bookkeeping: number; total: number }

interface RealResult {
  positionsPerSecond: number;
  flopsPerSecond: number;
  flopsPerPosition: number;
  /** Means over the measured steps. */
  positionsPerRow: number;
  targetsPerRow: number;
  /** Seconds per measured step, by phase. */
  phases: PhaseSeconds;
  steps: number;
}

/** The real training loop for warmup + steps steps; what the measured steps did, from its metrics.jsonl. */
async function realTraining(cfg: M6Config, tokenizer: Tokenizer, data: TaskData, p: Plan): Promise<RealResult> {
  const runDir = mkdtempSync(join(tmpdir(), 'm6-bench-train-run-'));
  torch.manualSeed(0);
  const model = new M6Model(cfg);
  // Instrumentation: the shape of every training forward (eval forwards run in eval mode and are left
  // out), so each step's FLOPs are counted from what the model actually computed.
  const shapes: BatchShape[] = [];
  const forward = model.forward.bind(model);
  model.forward = (input: M6Input) => {
    if (model.training) {
      shapes.push({ rows: input.target.shape[0]!, images: input.images !== undefined, source: input.source?.shape[1] ?? 0, target: input.target.shape[1]! });
    }
    return forward(input);
  };
  try {
    const total = p.warmup + p.steps;
    await train({
      runDir, model, tokenizer, tasks: data.train, evalTasks: [],
      steps: total, minutes: null, batchSize: p.batch, gradAccum: 1, lr: 3e-4, warmup: 2, minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1,
      bf16: p.bf16, seed: 0, evalEvery: 0, evalBatches: 1, saveEvery: 0, keepCheckpoints: 1, maxNonFinite: total, augment: true, ...(p.workers !== undefined ? { workers: p.workers } : {}),
    });
    const records = readMetrics(join(runDir, 'metrics.jsonl')).filter((m): m is TrainMetric => m.kind === 'train');
    if (records.length !== total || shapes.length !== total || records.some((r) => r.timing === undefined)) {
      throw new Error(`train bench: expected ${total} finite steps with timing records and one forward each; got ${records.length} records and ${shapes.length} forwards (a NaN step, or a trainer that no longer writes timing into metrics.jsonl)`);
    }
    const measured = records.slice(p.warmup);
    const timings = measured.map((r) => r.timing as StepTiming);
    // Wall time from the end of the last warmup step to the end of the last step: everything the loop
    // did in between, progress and metrics included.
    const seconds = measured.at(-1)!.elapsedSeconds - records[p.warmup - 1]!.elapsedSeconds;
    const positions = timings.reduce((n, t) => n + t.positions, 0);
    const batches = shapes.slice(p.warmup).map((b) => ({ b, f: batchFlops(cfg, b) }));
    const flops = batches.reduce((n, x) => n + x.f.training, 0);
    const counted = batches.reduce((n, x) => n + x.b.rows * x.f.positions, 0);
    if (counted !== positions) throw new Error(`train bench: the trainer counted ${positions} positions, the forwards' shapes ${counted}`);
    const sum = (k: Exclude<keyof StepTiming, 'buckets'>) => timings.reduce((n, t) => n + t[k], 0) / timings.length;
    const perStep = seconds / timings.length;
    const phases = { data: sum('data'), forward: sum('forward'), backward: sum('backward'), optimizer: sum('optimizer'), bookkeeping: 0, total: perStep };
    phases.bookkeeping = perStep - phases.data - phases.forward - phases.backward - phases.optimizer;
    return {
      positionsPerSecond: positions / seconds, flopsPerSecond: flops / seconds, flopsPerPosition: flops / positions,
      positionsPerRow: batches.reduce((n, x) => n + x.f.positions, 0) / batches.length,
      targetsPerRow: batches.reduce((n, x) => n + x.b.target, 0) / batches.length,
      phases, steps: timings.length,
    };
  } finally {
    model.dispose();
    rmSync(runDir, { recursive: true, force: true });
  }
}

interface BareResult { positionsPerSecond: number; flopsPerSecond: number; flopsPerPosition: number; phases: PhaseSeconds }

/** The bare step at the given size, phase by phase (forward with loss.item(), backward, AdamW): means over `steps`, as for the real loop. */
function bareTraining(net: BareTransformer, bf16: boolean, warmup: number, steps: number): BareResult {
  const { batch, seq, vocab } = net.cfg;
  const now = () => performance.now() / 1000;
  return torch.scope(() => {
    const tokens = torch.randint(0, vocab, [batch, seq]), targets = torch.randint(0, vocab, [batch, net.headPositions]);
    const runs: PhaseSeconds[] = [];
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = now();
      const r = torch.scope(() => {
        const loss = torch.scope(() => (bf16 ? torch.autocast(() => net.loss(tokens, targets)) : net.loss(tokens, targets)));
        loss.item();
        const t1 = now();
        net.opt.zeroGrad();
        loss.backward();
        const t2 = now();
        net.opt.step();
        return { forward: t1 - t0, backward: t2 - t1, optimizer: now() - t2 };
      });
      const total = now() - t0;
      if (i >= warmup) runs.push({ ...r, data: 0, bookkeeping: total - r.forward - r.backward - r.optimizer, total });
    }
    const mean = (k: keyof PhaseSeconds) => runs.reduce((n, x) => n + x[k], 0) / runs.length;
    const phases = { data: 0, forward: mean('forward'), backward: mean('backward'), optimizer: mean('optimizer'), bookkeeping: mean('bookkeeping'), total: mean('total') };
    return {
      positionsPerSecond: (batch * seq) / phases.total, flopsPerSecond: net.flopsPerStep / phases.total,
      flopsPerPosition: net.flopsPerStep / (batch * seq), phases,
    };
  });
}

/** Frees the bare model's gradients, AdamW moments and weights (it has no dispose of its own). */
function disposeBare(net: BareTransformer): void {
  net.opt.zeroGrad();
  for (const t of Object.values(net.opt.stateDict().tensors)) t.dispose();
  for (const t of net.params) t.dispose();
}

export async function run(opts: { json: boolean; quick?: boolean }): Promise<Record<string, number>> {
  const p = plan(opts.quick === true, process.argv);
  const log = (m: string) => { if (!opts.json) console.error(`train bench: ${m}`); };
  const loadBefore = loadavg()[0]!;
  torch.keepLargeAllocations();
  const dtype: torch.DType = p.bf16 ? 'bfloat16' : 'float32';

  const dir = await catalog(p.products);
  const data = await buildTaskData(resolveDatasetSpec(loadDatasetSpecFile(join(dir, 'dataset.json'))), [{ name: 'describe', weight: 1 }, { name: 'answer', weight: 1 }]);
  if (data.train.length !== 2) throw new Error(`train bench: the synthetic catalog in ${dir} should give describe and answer examples; ${data.skipped.join('; ')}`);
  const base = preset(PRESET);
  const tokenizer = Tokenizer.train(taskTexts(data), { vocabSize: TEXT_VOCAB, imageCodes: base.imageCodes });
  // The vocabulary follows the tokenizer, as runTraining makes it.
  const cfg = preset(PRESET, { vocabSize: tokenizer.vocabSize, imageCodeStart: tokenizer.imageCodeStart, imageCodes: tokenizer.imageCodes });
  if (cfg.ffnDim !== 4 * cfg.dim) throw new Error(`train bench: the bare reference has a 4·dim FFN; ${PRESET} has ffnDim ${cfg.ffnDim} for dim ${cfg.dim}`);
  log(`${PRESET}, ${p.bf16 ? 'bf16 autocast' : 'fp32'}, batch ${p.batch}, ${p.warmup} + ${p.steps} steps, catalog ${dir}`);

  const peakBefore = gemm(dtype, p.gemmN, p.gemmIters);
  log(`peak GEMM ${peakBefore.toFixed(0)} GFLOP/s; training…`);
  // Rounds of (real loop, then the bare step sized from it), each ratio taken within its round, and
  // the round with the median ratio reported: on a shared machine a burst of load from elsewhere
  // lasts tens of seconds and moves one side of a single round (single rounds read 0.77–0.89).
  const rounds: { real: RealResult; bare: BareResult; seq: number; headPositions: number }[] = [];
  for (let round = 0; round < p.rounds; round++) {
    const real = await realTraining(cfg, tokenizer, data, p);
    log(`round ${round + 1}/${p.rounds}: real ${real.positionsPerSecond.toFixed(0)} positions/s; bare step…`);
    // Equal size: see the header. Rounded to whole positions (attention grows as L², so a mean of
    // varying lengths is not exactly equal work; the FLOP-based ratio accounts for what each side did).
    torch.manualSeed(0);
    const net = new BareTransformer({
      layers: cfg.layers, dim: cfg.dim, heads: cfg.heads, batch: p.batch, vocab: cfg.vocabSize,
      seq: Math.round(real.positionsPerRow), headPositions: Math.max(1, Math.round(real.targetsPerRow)),
    });
    try {
      rounds.push({ real, bare: bareTraining(net, p.bf16, p.bareWarmup, p.steps), seq: net.cfg.seq, headPositions: net.headPositions });
    } finally {
      disposeBare(net);
    }
  }
  // Peak again after both: a burst of load from elsewhere should not lower the peak (and raise MFU) unnoticed.
  const peak = Math.max(peakBefore, gemm(dtype, p.gemmN, p.gemmIters)) * 1e9;
  const loadAfter = loadavg()[0]!;
  const ratios = rounds.map((r) => r.real.flopsPerSecond / r.bare.flopsPerSecond);
  const medianRound = [...rounds.keys()].sort((a, b) => ratios[a]! - ratios[b]!)[(rounds.length - 1) >> 1]!;
  const { real, bare, seq, headPositions } = rounds[medianRound]!;

  const mfu = real.flopsPerSecond / peak, bareMfu = bare.flopsPerSecond / peak;
  const ph = real.phases, bp = bare.phases;
  const pct = (s: number) => `${((100 * s) / ph.total).toFixed(1)}% of the step`;
  const figures: Figure[] = [
    { key: 'tokensPerSecond', value: real.positionsPerSecond, unit: 'pos/s', note: `real loop, mean of ${real.steps} steps after ${p.warmup} warmup; positions = image patches + padded source + target` },
    { key: 'flopsPerToken', value: real.flopsPerPosition / 1e6, unit: 'MFLOP', note: 'model training FLOPs per position (3 × forward matmuls; head on targets only; stem included)' },
    { key: 'achievedGflops', value: real.flopsPerSecond / 1e9, unit: 'GFLOP/s' },
    { key: 'peakGemmGflops', value: peak / 1e9, unit: 'GFLOP/s', note: `${p.gemmN}³ ${dtype} matmul, best of before and after` },
    { key: 'mfu', value: mfu, unit: 'of peak', note: 'achieved model FLOP/s ÷ peak GEMM' },
    { key: 'bareTokensPerSecond', value: bare.positionsPerSecond, unit: 'pos/s', note: `bare step ${cfg.layers}L d${cfg.dim} h${cfg.heads}, B${p.batch} × T${seq}, head on ${headPositions}, V${cfg.vocabSize}; mean of ${p.steps} steps` },
    { key: 'bareFlopsPerToken', value: bare.flopsPerPosition / 1e6, unit: 'MFLOP' },
    { key: 'bareMfu', value: bareMfu, unit: 'of peak' },
    { key: 'ratio', value: mfu / bareMfu, unit: '×', note: `real ÷ bare in achieved model FLOP/s (goal ≥ 0.85); the median of ${p.rounds} rounds (${ratios.map((x) => x.toFixed(3)).join(', ')}), whose figures these all are` },
    { key: 'ratioMin', value: Math.min(...ratios), unit: '×', note: 'lowest round' },
    { key: 'tokensPerSecondRatio', value: real.positionsPerSecond / bare.positionsPerSecond, unit: '×', note: 'real ÷ bare in positions/s (the real step also runs the image stem)' },
    // Where the time goes: seconds per step by phase, the real loop's next to the bare step's.
    { key: 'stepSeconds', value: ph.total, unit: 's', note: 'real loop, wall time per step' },
    { key: 'bareStepSeconds', value: bp.total, unit: 's' },
    { key: 'dataSeconds', value: ph.data, unit: 's', note: `${pct(ph.data)}: waiting for the loader (${p.workers ?? defaultWorkerCount()} image workers); bare: none` },
    { key: 'forwardSeconds', value: ph.forward, unit: 's', note: `${pct(ph.forward)}: batch to tensors, forward, loss` },
    { key: 'bareForwardSeconds', value: bp.forward, unit: 's' },
    { key: 'backwardSeconds', value: ph.backward, unit: 's', note: pct(ph.backward) },
    { key: 'bareBackwardSeconds', value: bp.backward, unit: 's' },
    { key: 'optimizerSeconds', value: ph.optimizer, unit: 's', note: `${pct(ph.optimizer)}: grad clipping + AdamW + zero grads` },
    { key: 'bareOptimizerSeconds', value: bp.optimizer, unit: 's', note: 'AdamW + zero grads' },
    { key: 'bookkeepingSeconds', value: ph.bookkeeping, unit: 's', note: `${pct(ph.bookkeeping)}: per-row losses, freeing, metrics, progress` },
    { key: 'bareBookkeepingSeconds', value: bp.bookkeeping, unit: 's', note: 'freeing' },
  ];
  printFigures(`train: ${PRESET} through the real loop vs the bare transformer step, same run (${p.bf16 ? 'bf16 autocast' : 'fp32'})`, figures, opts.json, {
    threads: torch.getNumThreads(), dtype: p.bf16 ? 'bf16' : 'fp32', batch: p.batch, products: p.products, imageWorkers: p.workers ?? defaultWorkerCount(),
    positionsPerRow: Math.round(real.positionsPerRow * 10) / 10, targetsPerRow: Math.round(real.targetsPerRow * 10) / 10,
    vocab: cfg.vocabSize, rounds: p.rounds, ratioRounds: ratios.map((x) => Math.round(x * 1000) / 1000), loadAverage1m: [loadBefore, loadAfter].map((x) => Math.round(x * 100) / 100), goal: 'ratio ≥ 0.85',
  });
  return Object.fromEntries(figures.map((f) => [f.key, f.value]));
}
