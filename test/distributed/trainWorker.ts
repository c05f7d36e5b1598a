// One rank of dataParallel.test.ts: `node trainWorker.js <dense|moe>` with torchrun's environment. It
// trains two optimizer steps of a small M6 twice: data-parallel (its shard of every batch, gradients
// all-reduced by the trainer's DataParallel) and alone on the whole batch (the reference, in this same
// process), and prints what the parent compares as one JSON line. Does nothing unless
// M6_DIST_TEST_WORKER is set (`node --test dist/test/` loads this file too).
import * as torch from '../../src/torch/index.js';
import { dist } from '../../src/distributed/index.js';
import { DataLoader, type Batch, type Example } from '../../src/data/loader.js';
import { Tokenizer } from '../../src/data/tokenizer.js';
import { M6Model, preset, type M6Config } from '../../src/model/index.js';
import { makeOptimizer } from '../../src/train/trainer.js';
import { TrainStep, type StepSettings } from '../../src/train/trainStep.js';
import { DataParallel } from '../../src/train/dataParallel.js';
import { MetricsLog } from '../../src/train/metrics.js';
import { waitForStart } from './ranks.js';

type Out = Record<string, unknown>;

const WORDS = ['red', 'blue', 'green', 'dress', 'shirt', 'coat', 'striped', 'dotted', 'plain', 'long', 'short', 'sleeve', 'wool', 'silk'];

/** Text-only examples whose targets differ in length (the ranks' shards then hold different token counts). */
function examples(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `e${i}`,
    source: `describe ${WORDS[i % WORDS.length]} ${WORDS[(i * 3) % WORDS.length]}`,
    target: Array.from({ length: 1 + (i % 5) }, (_, k) => WORDS[(i + 2 * k) % WORDS.length]).join(' '),
  }));
}

function config(kind: string, tok: Tokenizer): M6Config {
  const base: Partial<M6Config> = {
    layers: 2, dim: 32, heads: 2, ffnDim: 64, imageSize: 32, patchSize: 8, stemChannels: 8, maxTextLen: 24,
    vocabSize: tok.vocabSize, imageCodeStart: tok.imageCodeStart, imageCodes: tok.imageCodes,
  };
  // MoE: every layer routed, top-1 over 4 experts, dropless (a capacity depends on the tokens a rank
  // holds), and no routing losses (each rank's are its shard's, as in DeepSpeed/Megatron).
  const moe: Partial<M6Config> = { experts: 4, moeEvery: 1, topK: 1, capacityFactor: 0, auxLossWeight: 0, zLossWeight: 0 };
  return preset('m6-nano', { ...base, ...(kind === 'moe' ? moe : {}) });
}

async function* endless(loader: DataLoader): AsyncGenerator<Batch> {
  for (let at = 0; ; at += 64) yield* loader.batches({ steps: 64, startStep: at });
}

/** Two steps of gradAccum 2; returns each step's loss, grad norm, the gradients the optimizer saw, and the final parameters. */
async function twoSteps(model: M6Model, loader: DataLoader, settings: StepSettings): Promise<{ losses: number[]; norms: number[]; grads: torch.Tensor[][]; params: torch.Tensor[] }> {
  const opt = makeOptimizer(model, 1e-3, 0.01);
  const grads: torch.Tensor[][] = [];
  const step = opt.step.bind(opt);
  // The gradients as the optimizer reads them (after the all-reduce and the clip).
  opt.step = () => { grads.push(opt.params.map((p) => (p.grad ? p.grad.clone().keep() : torch.zerosLike(p).keep()))); step(); };
  const ts = new TrainStep(model, opt, settings, new MetricsLog(null));
  const batches = endless(loader);
  const losses: number[] = [], norms: number[] = [];
  try {
    for (let s = 0; s < 2; s++) {
      torch.manualSeed(1000 + s);
      const r = await ts.run(s, 1e-3, batches, () => {});
      losses.push(r.loss); norms.push(r.gradNorm);
    }
  } finally {
    await batches.return(undefined);
    await loader.close();
  }
  return { losses, norms, grads, params: model.parameters() };
}

function maxDiff(a: readonly torch.Tensor[], b: readonly torch.Tensor[]): number {
  return torch.scope(() => a.reduce((m, t, i) => Math.max(m, t.sub(b[i]!).abs().max().item()), 0));
}

async function run(kind: string, timeoutMs: number): Promise<Out> {
  await using pg = await dist.init({ timeoutMs });
  const tasks = [{ name: 'describe', examples: examples(23) }, { name: 'answer', examples: examples(17).map((e) => ({ ...e, id: `a${e.id}` })), weight: 2 }];
  const tok = Tokenizer.train(tasks.flatMap((t) => t.examples.flatMap((e) => [e.source!, e.target!])), { vocabSize: 300, imageCodes: 16 });
  const cfg = config(kind, tok);
  const batchSize = kind === 'moe' ? 4 : 5;  // 5: the ranks' shards are uneven (3 and 2 rows)
  const loaderOpts = { tokenizer: tok, batchSize, seed: 4, workers: 0, maxSourceLength: cfg.maxTextLen, maxTargetLength: cfg.maxTextLen + 1 };
  const settings: StepSettings = { gradAccum: 2, clipNorm: 1, bf16: false, lossMean: 'tokens', lossWeights: {}, patches: 16 };
  torch.manualSeed(10 + pg.rank);  // the ranks start different: DataParallel.create gives them rank 0's weights
  const model = new M6Model(cfg);
  using dp = await DataParallel.create(pg, model);
  const par = await twoSteps(model, new DataLoader(tasks, { ...loaderOpts, shard: { rank: pg.rank, worldSize: pg.worldSize } }),
    { ...settings, dataParallel: { dp, tasks: tasks.map((t) => t.name) } });
  torch.manualSeed(10);
  const ref = new M6Model(cfg);
  const one = await twoSteps(ref, new DataLoader(tasks, loaderOpts), settings);
  const out: Out = {
    losses: par.losses, refLosses: one.losses, norms: par.norms, refNorms: one.norms,
    gradDiff: par.grads.map((g, s) => maxDiff(g, one.grads[s]!)),
    gradScale: one.grads.map((g) => torch.scope(() => g.reduce((m, t) => Math.max(m, t.abs().max().item()), 0))),
    paramDiff: maxDiff(par.params, one.params),
  };
  // Every rank made the same update: the parameters agree bit for bit.
  const sums = await pg.allGather(torch.tensor(par.params.map((p) => torch.scope(() => p.to('float64').sum().item())), { dtype: 'float64' }));
  out.ranksIdentical = sums.every((t) => JSON.stringify(t.toArray()) === JSON.stringify(sums[0]!.toArray()));
  if (kind === 'moe') out.experts = model.parameters().length;
  out.overlaps = dp.reducer.overlaps;
  out.buckets = dp.reducer.buckets.length;
  out.issuedInBackward = dp.reducer.issuedInBackward;
  return out;
}

if (process.env.M6_DIST_TEST_WORKER) {
  const kind = process.argv[2] ?? 'dense';
  const timeoutMs = Number(process.env.M6_DIST_TEST_TIMEOUT_MS ?? 10_000);
  await waitForStart();
  const out = await run(kind, timeoutMs);
  process.stdout.write(JSON.stringify(out) + '\n');
}
