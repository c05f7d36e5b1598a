// One rank of a test in processGroup.test.ts / reducer.test.ts: `node worker.js <scenario>` with torchrun's
// RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set. Prints one JSON line (what it observed) and exits.
// It does nothing unless M6_DIST_TEST_WORKER is set: `node --test dist/test/` also loads this file.
import * as torch from '../../src/torch/index.js';
import { dist, type DistError } from '../../src/distributed/index.js';
import { GradReducer } from '../../src/distributed/reducer.js';
import { Module, Linear } from '../../src/nn/index.js';
import { SGD } from '../../src/optim/index.js';
import { waitForStart } from './ranks.js';

type Out = Record<string, unknown>;

const values = (t: torch.Tensor): number[] => Array.from(t.flatten().toArray() as number[]).map(Number);

function errorInfo(e: unknown, t0: number): Out {
  const d = e as DistError;
  return { message: d.message, code: d.code, collective: d.collective, rank: d.rank, worldSize: d.worldSize, ms: performance.now() - t0 };
}

// A small model with two dtypes (a float64 scale) and a parameter no forward uses.
class TinyNet extends Module {
  readonly fc1 = this.module('fc1', new Linear(4, 16));
  readonly fc2 = this.module('fc2', new Linear(16, 3));
  readonly scale = this.param('scale', torch.tensor([1.5, -0.5, 2], { dtype: 'float64' }));
  readonly unused = this.param('unused', torch.randn([5]));
  forward(x: torch.Tensor): torch.Tensor {
    return torch.scope(() => this.fc2.forward(this.fc1.forward(x).tanh()).mul(this.scale.to('float32')));
  }
}

function maxDiff(a: readonly torch.Tensor[], b: readonly torch.Tensor[], grads: boolean): number {
  return torch.scope(() => {
    let m = 0;
    a.forEach((p, i) => {
      const q = b[i]!;
      const x = grads ? p.grad ?? torch.zerosLike(p) : p, y = grads ? q.grad ?? torch.zerosLike(q) : q;
      m = Math.max(m, x.to('float64').sub(y.to('float64')).abs().max().item());
    });
    return m;
  });
}

const SCENARIOS: Record<string, (rank: number, world: number, timeoutMs: number) => Promise<Out>> = {
  // GradReducer: the N-rank step on local batches equals the one-process step on the concatenated batch.
  async reducer(rank, world, timeoutMs) {
    await using pg = await dist.init({ timeoutMs });
    torch.manualSeed(100 + rank);  // every rank starts different: create() must broadcast rank 0's values
    const model = new TinyNet();
    // Tiny buckets so that the model spans several (a float32 first bucket of ≥ 256 bytes, then ≥ 1 KiB).
    using reducer = await GradReducer.create(pg, model.parameters(), { firstBucketBytes: 256, bucketBytes: 1024 });
    torch.manualSeed(100);
    const ref = new TinyNet();
    const out: Out = { initDiff: maxDiff(model.parameters(), ref.parameters(), false) };
    out.buckets = reducer.buckets.map((b) => ({ dtype: b.dtype, params: b.params, bytes: b.bytes }));
    torch.manualSeed(7);
    const rows = 4;
    const x = torch.randn([rows * world, 4]).keep(), y = torch.randn([rows * world, 3]).keep();
    const lx = x.narrow(0, rows * rank, rows).keep(), ly = y.narrow(0, rows * rank, rows).keep();
    const loss = (m: TinyNet, a: torch.Tensor, b: torch.Tensor, w = 1) => torch.nn.mseLoss(m.forward(a), b).mul(w);
    const opt = new SGD(model.parameters(), { lr: 0.1 }), refOpt = new SGD(ref.parameters(), { lr: 0.1 });
    // Step 1: one backward per rank.
    torch.scope(() => loss(model, lx, ly).backward());
    await reducer.syncGradients();
    torch.scope(() => loss(ref, x, y).backward());
    out.gradDiff1 = maxDiff(model.parameters(), ref.parameters(), true);
    out.unusedGrad = torch.scope(() => model.unused.grad?.abs().max().item() ?? 'none');
    opt.step(); refOpt.step(); opt.zeroGrad(); refOpt.zeroGrad();
    out.paramDiff1 = maxDiff(model.parameters(), ref.parameters(), false);
    // Step 2: gradient accumulation over two micro-batches, the first under noSync (no communication).
    let insideFlag: boolean | undefined;
    await reducer.noSync(async () => {
      insideFlag = reducer.syncEnabled;
      torch.scope(() => loss(model, lx.narrow(0, 0, 2), ly.narrow(0, 0, 2), 0.5).backward());
      await reducer.syncGradients();  // a no-op here
    });
    out.insideFlag = insideFlag;
    out.afterFlag = reducer.syncEnabled;
    // After the noSync micro-batch the gradients are still this rank's own: they differ between ranks.
    const local = torch.scope(() => model.fc1.weight.grad!.sum().item());
    const locals = await pg.allGather(torch.tensor([local], { dtype: 'float64' }));
    out.localGradsDiffer = new Set(locals.map((t) => t.item())).size === world;
    torch.scope(() => loss(model, lx.narrow(0, 2, 2), ly.narrow(0, 2, 2), 0.5).backward());
    await reducer.syncGradients();
    torch.scope(() => loss(ref, x, y).backward());
    out.gradDiff2 = maxDiff(model.parameters(), ref.parameters(), true);
    opt.step(); refOpt.step(); opt.zeroGrad(); refOpt.zeroGrad();
    out.paramDiff2 = maxDiff(model.parameters(), ref.parameters(), false);
    // Step 3: armed, so backward's hooks issue the buckets as they fill, in bucket order.
    out.overlaps = reducer.overlaps;
    reducer.armForBackward();
    torch.scope(() => loss(model, lx, ly).backward());
    await reducer.syncGradients();
    out.issuedInBackward = reducer.issuedInBackward;
    torch.scope(() => loss(ref, x, y).backward());
    out.gradDiff3 = maxDiff(model.parameters(), ref.parameters(), true);
    opt.step(); refOpt.step(); opt.zeroGrad(); refOpt.zeroGrad();
    out.paramDiff3 = maxDiff(model.parameters(), ref.parameters(), false);
    // Step 4: armed with the loss: the unused parameter is ready at once, so every bucket leaves during backward.
    torch.scope(() => {
      const l = loss(model, lx, ly);
      reducer.armForBackward(l);
      l.backward();
    });
    await reducer.syncGradients();
    out.issuedWithLoss = reducer.issuedInBackward;
    torch.scope(() => loss(ref, x, y).backward());
    out.gradDiff4 = maxDiff(model.parameters(), ref.parameters(), true);
    out.unusedGrad4 = torch.scope(() => model.unused.grad?.abs().max().item() ?? 'none');
    opt.step(); refOpt.step();
    out.paramDiff4 = maxDiff(model.parameters(), ref.parameters(), false);
    // Ranks end with identical parameters (exactly, not just close to the reference).
    const sums = await pg.allGather(torch.tensor(model.parameters().map((p) => torch.scope(() => p.to('float64').sum().item())), { dtype: 'float64' }));
    out.paramsIdentical = sums.every((t) => JSON.stringify(t.toArray()) === JSON.stringify(sums[0]!.toArray()));
    return out;
  },

  // GradReducer.create refuses ranks whose models differ, naming them.
  async reducerMismatch(rank, _world, timeoutMs) {
    await using pg = await dist.init({ timeoutMs });
    const params = [torch.zeros([rank === 1 ? 3 : 2], { requiresGrad: true })];
    return { create: await GradReducer.create(pg, params).then(() => 'resolved', (e: Error) => e.message) };
  },

  // Every collective once, with values that tell ranks apart: the parent checks them exactly.
  async collectives(rank, world, timeoutMs) {
    await using pg = await dist.init({ timeoutMs });
    const out: Out = { rank: pg.rank, worldSize: pg.worldSize };
    const base = (k: number) => torch.tensor([rank + 1, 10 * (rank + 1), -rank, k], { dtype: 'float32' });
    out.sum = values(await pg.allReduce(base(1), 'sum'));
    out.avg = values(await pg.allReduce(base(2), 'avg'));
    out.max = values(await pg.allReduce(base(3), 'max'));
    out.min = values(await pg.allReduce(base(4), 'min'));
    out.sumInt = values(await pg.allReduce(torch.tensor([rank, 2 ** 40 + rank], { dtype: 'int64' }), 'sum'));
    out.bcast0 = values(await pg.broadcast(torch.tensor([rank * 100 + 1, rank * 100 + 2]), 0));
    out.bcast1 = values(await pg.broadcast(torch.tensor([rank * 100 + 1, rank * 100 + 2]), 1));
    const gathered = await pg.allGather(torch.tensor([[rank, rank + 0.5]]));
    out.gather = gathered.map(values);
    out.gatherShapes = gathered.map((g) => g.shape);
    out.gatherEmpty = (await pg.allGather(torch.zeros([0, 3]))).map((g) => g.shape);  // Gloo alone crashes on it (SIGFPE)
    // allToAll with variable splits: rank r sends (r + d + 1) rows to rank d, each row [r, d, i].
    const inputSplits = Array.from({ length: world }, (_, d) => rank + d + 1);
    const rows: number[][] = [];
    inputSplits.forEach((n, d) => { for (let i = 0; i < n; i++) rows.push([rank, d, i]); });
    const a2a = await pg.allToAll(torch.tensor(rows, { dtype: 'int64' }), { inputSplits });
    out.a2a = a2a.output.toArray();
    out.a2aSplits = a2a.outputSplits;
    // The same with outputSplits given (no split exchange): each rank receives (src + rank + 1) rows from src.
    const outputSplits = Array.from({ length: world }, (_, s) => s + rank + 1);
    const a2b = await pg.allToAll(torch.tensor(rows, { dtype: 'float32' }), { inputSplits, outputSplits });
    out.a2b = a2b.output.toArray();
    out.a2bSplits = a2b.outputSplits;
    out.a2bShape = a2b.output.shape;
    // Called without awaiting: an allToAll that must first learn its splits, then an allReduce and a
    // broadcast. Rank 0 calls the last two 200 ms later (its split exchange is done by then), the others at
    // once: the later calls must wait for the allToAll's second exchange, or the ranks' orders differ.
    const first = pg.allToAll(torch.tensor(rows, { dtype: 'int64' }), { inputSplits });
    if (rank === 0) await new Promise((r) => setTimeout(r, 200));
    const pipelined = [first, pg.allReduce(torch.tensor([rank + 1]), 'sum'), pg.broadcast(torch.tensor([rank + 7]), world - 1)] as const;
    const [p1, p2, p3] = await Promise.all(pipelined);
    out.pipelined = { a2a: p1.output.toArray(), sum: values(p2), bcast: values(p3) };
    // Barrier: rank 0 arrives late; nobody leaves before it arrives.
    if (rank === 0) await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await pg.barrier();
    out.barrierLeftAt = Date.now();
    out.barrierWaitedMs = Date.now() - t0;
    // Errors a caller can make, reported before anything is sent.
    out.badSplits = await pg.allToAll(torch.zeros([3, 2]), { inputSplits: [1, 1, 1, 1].slice(0, world + 1) }).then(() => 'resolved', (e: Error) => e.message);
    out.badRoot = await pg.broadcast(torch.zeros([1]), world).then(() => 'resolved', (e: Error) => e.message);
    out.avgInt = await pg.allReduce(torch.zeros([1], { dtype: 'int64' }), 'avg').then(() => 'resolved', (e: Error) => e.message);
    // Still usable after refused calls.
    out.after = values(await pg.allReduce(torch.ones([2]), 'sum'));
    return out;
  },

  // The last rank dies inside an allReduce (SIGKILL: no cleanup of any kind); the others must reject.
  async peerDies(rank, world, timeoutMs) {
    const pg = await dist.init({ timeoutMs });
    const big = torch.ones([16 << 20]);  // 64 MB: still in flight when the peer dies
    if (rank === world - 1) {
      const p = pg.allReduce(big, 'sum');
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), 5);
      await p;
      return { unexpected: 'the dying rank completed its allReduce' };
    }
    const t0 = performance.now();
    const out: Out = {};
    try {
      // Several in a row so that the peer's death lands inside one of them whatever the timing.
      for (let i = 0; i < 50; i++) await pg.allReduce(big, 'sum');
      out.unexpected = 'resolved';
    } catch (e) {
      out.error = errorInfo(e, t0);
    }
    // The group refuses further collectives at once, naming the failed one.
    const t1 = performance.now();
    out.next = await pg.allReduce(torch.ones([1])).then(() => ({ unexpected: 'resolved' }), (e) => errorInfo(e, t1));
    await pg.destroy();
    return out;
  },

  // A rank calls process.exit() while its collective is pending: the process must exit with that code (no abort, no hang).
  async exitWhilePending(rank, world, timeoutMs) {
    const pg = await dist.init({ timeoutMs });
    if (rank === world - 1) {
      void pg.allReduce(torch.ones([4]), 'sum').catch(() => undefined);
      setTimeout(() => process.exit(7), 50);
      await new Promise((r) => setTimeout(r, 60_000));
      return { unexpected: 'still running' };
    }
    // Rank 0 never joins that allReduce: the peer exits with it pending. Rank 0's barrier then fails.
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    return { barrier: await pg.barrier().then(() => 'resolved', (e) => errorInfo(e, t0)) };
  },

  // Only rank 0 is started: the rendezvous must time out.
  async initTimeout(_rank, _world, timeoutMs) {
    const t0 = performance.now();
    return { init: await dist.init({ timeoutMs }).then(() => 'resolved', (e) => errorInfo(e, t0)) };
  },

  // Rank 1 joins the group and then never calls the collective: rank 0's allReduce must time out.
  async collectiveTimeout(rank, _world, timeoutMs) {
    const pg = await dist.init({ timeoutMs });
    if (rank !== 0) {
      await new Promise((r) => setTimeout(r, timeoutMs + 4000));
      return {};
    }
    const t0 = performance.now();
    const out: Out = { allReduce: await pg.allReduce(torch.ones([8])).then(() => 'resolved', (e) => errorInfo(e, t0)) };
    return out;
  },

  // The event loop runs while a collective waits: rank 1 enters 600 ms late; rank 0 counts timer ticks meanwhile.
  async responsive(rank, _world, timeoutMs) {
    const pg = await dist.init({ timeoutMs });
    const t = torch.full([1 << 20], rank + 1);
    if (rank !== 0) {
      await new Promise((r) => setTimeout(r, 600));
      await pg.allReduce(t);
      await pg.destroy();
      return {};
    }
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 10);
    const t0 = performance.now();
    try {
      await pg.allReduce(t);
    } finally {
      clearInterval(timer);
    }
    const out = { ticks, ms: performance.now() - t0, first: values(t.narrow(0, 0, 2)) };
    await pg.destroy();
    return out;
  },
};

if (process.env.M6_DIST_TEST_WORKER) {
  const scenario = process.argv[2] ?? '';
  const run = SCENARIOS[scenario];
  if (!run) throw new Error(`worker: unknown scenario '${scenario}' (${Object.keys(SCENARIOS).join(', ')})`);
  const rank = Number(process.env.RANK), world = Number(process.env.WORLD_SIZE);
  const timeoutMs = Number(process.env.M6_DIST_TEST_TIMEOUT_MS ?? 10_000);
  await waitForStart();
  const out = await run(rank, world, timeoutMs);
  process.stdout.write(JSON.stringify(out) + '\n');
}
