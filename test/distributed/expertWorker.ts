// One rank of expertParallel.test.ts: `node expertWorker.js <dropless|capacity>` with torchrun's
// environment. Two stacked MoE layers (6 experts, top-2) with the same seeded weights on every rank,
// sharded over the ranks; each rank feeds its own tokens (a different count per rank) and backprops
// its own loss. The same process then runs the one-process layers on every rank's tokens with all
// experts, and prints the largest differences of the outputs, the input gradients, this rank's expert
// gradients and the summed router gradients. Does nothing unless M6_DIST_TEST_WORKER is set.
import * as torch from '../../src/torch/index.js';
import { dist, type ProcessGroup } from '../../src/distributed/index.js';
import { MoeLayer } from '../../src/model/moe.js';
import { waitForStart } from './ranks.js';

const DIM = 8, HIDDEN = 16, EXPERTS = 6;

function layers(capacityFactor: number): MoeLayer[] {
  torch.manualSeed(7);
  return [0, 1].map(() => new MoeLayer(DIM, HIDDEN, { experts: EXPERTS, topK: 2, capacityFactor }));
}

/** Rank r's tokens and loss weights: seeded by r, 5 + 2r rows (uneven shards). */
function inputsOf(r: number): { x: torch.Tensor; w: torch.Tensor } {
  torch.manualSeed(1000 + r);
  const x = torch.randn([5 + 2 * r, DIM]).keep().requiresGrad_();
  return { x, w: torch.randn([5 + 2 * r, DIM]).keep() };
}

function stack(ms: readonly MoeLayer[], x: torch.Tensor): torch.Tensor {
  const h = ms[0]!.forward(x).out.add(x);
  return ms[1]!.forward(h).out.add(h);
}

const diff = (a: torch.Tensor, b: torch.Tensor): number => torch.scope(() => a.sub(b).abs().max().item());

/** Rank 1 leaves before the forward: rank 0's exchange must fail with an error, not hang or abort. */
async function peerGone(pg: ProcessGroup): Promise<Record<string, unknown>> {
  if (pg.rank === 1) process.exit(0);
  const ep = layers(0);
  for (const m of ep) m.shardExperts(pg);
  const t0 = performance.now();
  try {
    stack(ep, inputsOf(0).x);
    return { threw: false };
  } catch (e) {
    return { threw: true, message: (e as Error).message, ms: performance.now() - t0 };
  }
}

async function scenario(mode: string, pg: ProcessGroup): Promise<Record<string, unknown>> {
  if (mode === 'peer-gone') return peerGone(pg);
  const capacity = mode === 'capacity' ? 1.25 : 0;
  const ep = layers(capacity), ref = layers(capacity);
  for (const m of ep) m.shardExperts(pg);
  const mine = inputsOf(pg.rank);
  const out = stack(ep, mine.x).keep();
  out.mul(mine.w).sum().backward();
  const all = Array.from({ length: pg.worldSize }, (_, r) => inputsOf(r));
  const refOuts = all.map((i) => stack(ref, i.x).keep());
  refOuts.reduce((s, o, r) => s.add(o.mul(all[r]!.w).sum()), torch.zeros([])).backward();
  const n = EXPERTS / pg.worldSize, first = pg.rank * n;
  let expertGrad = 0, routerGrad = 0, scale = 0;
  for (const [i, m] of ep.entries()) {
    for (const k of ['w1', 'b1', 'w2', 'b2'] as const) {
      expertGrad = Math.max(expertGrad, diff(m[k].grad!, ref[i]![k].grad!.narrow(0, first, n)));
      scale = Math.max(scale, torch.scope(() => ref[i]![k].grad!.abs().max().item()));
    }
    const g = await pg.allReduce(m.router.grad!.clone().keep(), 'sum');  // the router is dense: its gradient is the ranks' sum
    routerGrad = Math.max(routerGrad, diff(g, ref[i]!.router.grad!));
  }
  return {
    rows: mine.x.shape[0], localExperts: ep[0]!.localExperts, expertShape: ep[0]!.w1.shape,
    out: diff(out, refOuts[pg.rank]!), inputGrad: diff(mine.x.grad!, all[pg.rank]!.x.grad!), expertGrad, routerGrad, scale,
  };
}

if (process.env.M6_DIST_TEST_WORKER) {
  await waitForStart();
  const pg = await dist.init({ timeoutMs: Number(process.env.M6_DIST_TEST_TIMEOUT_MS) });
  try {
    process.stdout.write(`${JSON.stringify(await scenario(process.argv[2]!, pg))}\n`);
  } finally {
    await pg.destroy();
  }
}
