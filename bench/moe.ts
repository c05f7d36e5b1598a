// `npm run bench -- moe [--json] [--quick] [--fp32] [--rounds=N]`: training throughput of m6-small with a dense FFN vs sparse
// MoE FFNs of 8, 32 and 64 experts (top-1: the same active size per token), measured in one run.
// Goal: 64 experts ≥ 0.7× the dense tokens/s while holding ~64× the FFN parameters.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/torch/index.js';
import { M6Model, preset, type M6Config } from '../src/model/index.js';
import { AdamW } from '../src/optim/index.js';
import { chooseBf16 } from './dtype.js';
import { intFlag, median, printFigures, type Figure } from './report.js';

/** Seconds of each phase of a training step: forward (with the loss), backward, optimizer (zeroGrad + step). */
interface Phases { forward: number; backward: number; optimizer: number }

function tokensPerSecond(cfg: M6Config, batch: number, seq: number, warmup: number, steps: number, bf16: boolean): VariantResult {
  torch.manualSeed(0);
  const model = new M6Model(cfg);
  const opt = new AdamW(model.parameters(), { lr: 1e-4 });
  try {
    return torch.scope(() => {
      const source = torch.randint(0, cfg.imageCodeStart, [batch, seq / 2]);
      const target = torch.randint(0, cfg.imageCodeStart, [batch, seq / 2]);
      const labels = torch.randint(0, cfg.imageCodeStart, [batch, seq / 2]);
      let dropped = 0;
      const step = (): Phases & { total: number } => torch.scope(() => {
        const t0 = performance.now();
        const out = torch.scope(() => {
          const o = bf16 ? torch.autocast(() => model.forward({ source, target, labels })) : model.forward({ source, target, labels });
          return { loss: o.loss!, dropped: o.moe.map((m) => m.dropped) };
        });
        out.loss.item();  // the forward is done (the engine is synchronous on CPU; this makes it explicit)
        const t1 = performance.now();
        out.loss.backward();
        const t2 = performance.now();
        opt.step();
        opt.zeroGrad();
        const t3 = performance.now();
        dropped = out.dropped.length ? out.dropped.reduce((a, d) => a + d.item(), 0) / out.dropped.length : 0;
        return { forward: (t1 - t0) / 1e3, backward: (t2 - t1) / 1e3, optimizer: (t3 - t2) / 1e3, total: (t3 - t0) / 1e3 };
      });
      for (let i = 0; i < warmup; i++) step();
      const ts = Array.from({ length: steps }, step);
      const phase = (k: keyof Phases) => median(ts.map((t) => t[k]));
      return { tps: (batch * seq) / median(ts.map((t) => t.total)), params: model.numParameters(), dropped, forward: phase('forward'), backward: phase('backward'), optimizer: phase('optimizer') };
    });
  } finally {
    model.dispose();
  }
}

interface VariantResult extends Phases { tps: number; params: number; dropped: number }

const VARIANTS: Record<string, Partial<M6Config>> = {
  dense: { experts: 0 },
  moe8: { experts: 8, capacityFactor: 1.25 },
  moe32: { experts: 32, capacityFactor: 1.25 },
  moe64: { experts: 64, capacityFactor: 1.25 },
  moe64Dropless: { experts: 64, capacityFactor: 0 },
};

/** One variant in its own process (see run); NaN figures when it dies, so the others still count. */
function runVariant(name: string, batch: number, seq: number, warmup: number, steps: number, bf16: boolean): VariantResult {
  try {
    return JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), 'variant', name, String(batch), String(seq), String(warmup), String(steps), bf16 ? 'bf16' : 'fp32'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 })) as VariantResult;
  } catch (e) {
    const why = (e as { signal?: string }).signal ?? (e as Error).message.split('\n')[0];
    console.error(`moe bench: variant ${name} failed (${why})`);
    return { tps: NaN, params: NaN, dropped: NaN, forward: NaN, backward: NaN, optimizer: NaN };
  }
}

export async function run(opts: { json: boolean; quick?: boolean }): Promise<Record<string, number>> {
  const batch = opts.quick ? 8 : 32, seq = opts.quick ? 64 : 256;
  const warmup = 1, steps = opts.quick ? 2 : 5;
  // bf16 where it pays here (the probe m6 info shows), fp32 otherwise: an emulated bf16 step takes minutes.
  const { bf16 } = chooseBf16(process.argv);
  // Each variant runs in its own process: a 64-expert model with AdamW holds ~13 GB, and memory kept
  // for re-use by one variant (keepLargeAllocations) must not crowd out the next.
  // The sweep runs several rounds, variants interleaved, and each ratio is taken within its round:
  // on a shared machine a burst of load lasts tens of seconds, long enough to move one variant's
  // figure by a third (single sweeps read 0.53–0.86 for 64 experts), and a ratio of two variants
  // measured a minute apart carries all of it. The figures are medians over rounds.
  const R = intFlag(process.argv, 'rounds', opts.quick ? 1 : 3, 1);  // whole sweeps
  const names = Object.keys(VARIANTS);
  const results = new Map<string, VariantResult[]>(names.map((n) => [n, []]));
  for (let round = 0; round < R; round++) {
    for (const name of names) {
      const r = runVariant(name, batch, seq, warmup, steps, bf16);
      results.get(name)!.push(r);
      if (!opts.json) console.error(`moe bench: round ${round + 1}/${R}, ${name}: ${r.tps.toFixed(1)} tok/s`);
    }
  }
  const dense = results.get('dense')!;
  const figures: Figure[] = [];
  for (const name of names) {
    const rs = results.get(name)!;
    const o = VARIANTS[name]!;
    const r = rs[rs.length - 1]!;
    const phase = (k: keyof Phases) => median(rs.map((x) => x[k])).toFixed(2);
    figures.push({ key: `tokensPerSecond_${name}`, value: median(rs.map((x) => x.tps)), unit: 'tok/s',
      note: `median of ${R}; ${(r.params / 1e6).toFixed(0)}M params${o.experts ? `, ${(100 * median(rs.map((x) => x.dropped))).toFixed(1)}% dropped` : ''}; forward ${phase('forward')} s, backward ${phase('backward')} s, optimizer ${phase('optimizer')} s` });
    if (name === 'dense') continue;
    const ratios = rs.map((x, i) => x.tps / dense[i]!.tps);
    figures.push({ key: `throughputRatio_${name}`, value: median(ratios), unit: '× dense',
      note: `median of ${R} rounds (each ${ratios.map((x) => x.toFixed(3)).join(', ')}); ${(r.params / dense[0]!.params).toFixed(1)}× the parameters` });
    figures.push({ key: `throughputRatioMin_${name}`, value: Math.min(...ratios), unit: '× dense', note: 'lowest round' });
  }
  printFigures(`moe: m6-small training throughput, dense vs top-1 MoE (${bf16 ? 'bf16 autocast' : 'fp32'}, batch ${batch} × ${seq} tokens, AdamW, ${R} rounds)`, figures, opts.json,
    { threads: torch.getNumThreads(), batch, seq, dtype: bf16 ? 'bf16' : 'fp32', rounds: R, keepLargeAllocations: true, goal: 'throughputRatio_moe64 ≥ 0.7' });
  return Object.fromEntries(figures.map((f) => [f.key, f.value]));
}

// Child process: one variant, one JSON line out.
if (process.argv[2] === 'variant') {
  const [name, batch, seq, warmup, steps, dtype] = process.argv.slice(3);
  // Large models free and re-allocate hundreds of MiB per step: keep those blocks in the heap.
  torch.keepLargeAllocations();
  const cfg = { ...preset('m6-small', { dropout: 0 }), ...VARIANTS[name], name: `m6-small-${name}` };
  process.stdout.write(JSON.stringify(tokensPerSecond(cfg, Number(batch), Number(seq), Number(warmup), Number(steps), dtype === 'bf16')));
}
