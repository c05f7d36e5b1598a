// Sparse Mixture-of-Experts FFN (M6-T; Switch/GShard routing), and the dense FFN it replaces.
//
// A router scores every token against every expert; each token goes to its top-1 expert in each of
// k groups ("expert prototyping", M6-T) or to its top-k experts overall. Total parameters grow with
// the number of experts, FLOPs per token do not.
//
// Two dispatch modes:
//  - capacity (capacityFactor > 0): each expert takes at most C = ⌈factor · assignments / E⌉ tokens,
//    first choices before second ones; the rest are dropped (they pass through the residual). All
//    experts then run as ONE batched matmul over a padded (E, C, D) buffer.
//  - dropless (capacityFactor = 0, and always in eval mode; MegaBlocks-style): tokens sorted by expert,
//    one matmul per expert on its exact slice; nothing dropped, no padding.
// dispatch() and combine() are separate steps, and between them goes the all-to-all of expert
// parallelism (GShard, DeepSpeed-MoE): after `shardExperts(group)` each rank holds E/W experts,
// sends every token row to its expert's rank, runs its own experts on what arrives, and sends the
// outputs back. The router and everything outside the layer stay replicated (data parallel).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, Linear, type ModuleOptions } from '../nn/index.js';
import { uniform_, normal_ } from '../nn/init.js';

/** The dense FFN: Linear → GELU → Linear. */
export class Ffn extends Module {
  readonly fc: Linear;
  readonly proj: Linear;
  constructor(dim: number, hidden: number, opts: ModuleOptions = {}) {
    super();
    this.fc = this.module('fc', new Linear(dim, hidden, opts));
    this.proj = this.module('proj', new Linear(hidden, dim, opts));
  }
  forward(x: Tensor): Tensor {
    return torch.scope(() => this.proj.forward(this.fc.forward(x).gelu()));
  }
}

export interface MoeOptions extends ModuleOptions {
  experts: number;
  /** Expert prototyping: k groups of experts, top-1 in each. 1 = route over all experts with topK. */
  groups?: number;
  topK?: number;
  /** 0 = dropless. */
  capacityFactor?: number;
}

export interface MoeOutput {
  out: Tensor;          // (N, D): Σ gate · expert(x); zero for dropped tokens
  auxLoss: Tensor;      // load balancing, scalar; 1.0 for a perfectly uniform router
  zLoss: Tensor;        // router z-loss, scalar
  load: Tensor;         // (E,) fraction of assignments each expert received (before dropping)
  dropped: Tensor;      // scalar: fraction of assignments dropped by capacity
}

/**
 * What an expert-parallel layer needs of a process group: distributed/'s `ProcessGroup` is one. The
 * all-to-all is synchronous and differentiable (its backward sends gradients back the same way).
 */
export interface ExpertGroup {
  readonly rank: number;
  readonly worldSize: number;
  allToAllInGraph(t: Tensor, inputSplits: readonly number[], outputSplits: readonly number[]): Tensor;
}

/** Where each (token, choice) assignment goes. */
export interface Routing {
  expert: Tensor;       // (A,) int64 expert of each assignment, A = N · choices, choice-major (first choices first)
  token: Tensor;        // (A,) int64 token of each assignment
  gate: Tensor;         // (A,) router probability of that expert
  auxLoss: Tensor;
  zLoss: Tensor;
  load: Tensor;
}

export class MoeLayer extends Module {
  readonly router: Tensor;   // (E, D)
  // Expert weights are stored (in, out) — x @ w, not x @ wᵀ as Linear — so the batched matmuls take them
  // as they are: a transposed view would be cast to bf16 under autocast every step and slows the
  // backward ~2× (measured: 147 vs 332 ms for 64 experts, 8k tokens).
  readonly w1: Tensor;       // (E, D, F)
  readonly b1: Tensor;       // (E, F)
  readonly w2: Tensor;       // (E, F, D)
  readonly b2: Tensor;       // (E, D)
  readonly groups: number;
  readonly topK: number;
  readonly capacityFactor: number;
  #group: ExpertGroup | undefined;
  /** Forward calls since the trainer last reset it (expert parallel: every rank must make as many). */
  exchanges = 0;

  constructor(readonly dim: number, readonly hidden: number, readonly o: MoeOptions) {
    super();
    const E = o.experts;
    this.groups = o.groups ?? 1;
    this.topK = this.groups > 1 ? 1 : (o.topK ?? 1);
    this.capacityFactor = o.capacityFactor ?? 1.25;
    if (E % this.groups !== 0) throw new RangeError(`MoeLayer: ${E} experts do not split into ${this.groups} groups`);
    const t = { device: o.device, dtype: o.dtype };
    // Small router init keeps early routing near uniform (Switch Transformer).
    this.router = this.param('router', normal_(torch.empty([E, dim], t), 0.02 / Math.sqrt(dim / 64)));
    // Each expert is initialised as a Linear would be: U(±1/√fan_in).
    const b1 = 1 / Math.sqrt(dim), b2 = 1 / Math.sqrt(hidden);
    this.w1 = this.param('w1', uniform_(torch.empty([E, dim, hidden], t), -b1, b1));
    this.b1 = this.param('b1', uniform_(torch.empty([E, hidden], t), -b1, b1));
    this.w2 = this.param('w2', uniform_(torch.empty([E, hidden, dim], t), -b2, b2));
    this.b2 = this.param('b2', uniform_(torch.empty([E, dim], t), -b2, b2));
  }

  get experts(): number { return this.o.experts; }
  /** The expert-parallel group, once `shardExperts` has run. */
  get expertGroup(): ExpertGroup | undefined { return this.#group; }
  /** Experts whose weights this process holds: all of them, or E/W under expert parallelism. */
  get localExperts(): number { return this.experts / (this.#group?.worldSize ?? 1); }

  /**
   * Keeps only this rank's experts, [rank·E/W, (rank+1)·E/W), in place (the parameters keep their
   * identity). Every rank must build the layer with the same weights first (the same seed, or a
   * broadcast), so that the shards together are the one-process layer.
   */
  shardExperts(group: ExpertGroup): void {
    const E = this.experts, W = group.worldSize;
    if (this.#group) throw new Error('MoeLayer: the experts are already sharded');
    if (E % W !== 0) throw new RangeError(`MoeLayer: expert parallelism splits the experts evenly over the ranks, but ${E} experts do not split over ${W} ranks`);
    const n = E / W, first = group.rank * n;
    torch.noGrad(() => torch.scope(() => {
      for (const w of this.expertParameters) w.setData_(w.narrow(0, first, n).contiguous().clone());
    }));
    this.#group = group;
  }
  /** Choices per token: k groups (prototyping) or top-k. */
  get choices(): number { return this.groups > 1 ? this.groups : this.topK; }

  /** Router: scores in float32 (bf16 routing is unstable), choices, and the auxiliary losses. */
  route(x: Tensor): Routing {
    return torch.scope(() => {
      const [N] = x.shape;
      const E = this.experts, G = this.groups, k = this.choices;
      const logits = torch.nn.linear(x.float(), this.router.float());  // (N, E)
      const zLoss = logits.logsumexp(-1).square().mean();
      let probs: Tensor, expert: Tensor, gate: Tensor;
      if (G > 1) {
        const Eg = E / G;
        probs = torch.nn.softmax(logits.view(N, G, Eg), -1);  // each group is its own router
        const best = probs.max(-1);  // (N, G)
        expert = best.indices.add(torch.arange(0, E, Eg, { device: x.device }));  // group g's experts start at g·Eg
        gate = best.values;
        probs = probs.view(N, E);
      } else {
        probs = torch.nn.softmax(logits, -1);
        const top = probs.topk(k, -1);
        expert = top.indices;
        gate = top.values;
      }
      // Choice-major order: every token's first choice outranks any second choice when capacity runs out.
      const expertFlat = expert.transpose(0, 1).reshape(-1);
      const gateFlat = gate.transpose(0, 1).reshape(-1);
      const token = torch.arange(N, undefined, 1, { device: x.device }).repeat(k);
      // Load balancing (Switch): Eg · Σ_e f_e · P_e per group, averaged over groups, where f_e is the
      // fraction of the group's assignments sent to e and P_e the mean router probability of e.
      const counts = torch.zeros([E], { device: x.device }).indexAdd(0, expertFlat, torch.ones([N * k], { device: x.device }));
      const f = counts.div(N * (G > 1 ? 1 : k));
      const P = probs.mean(0);
      const auxLoss = f.mul(P).sum().mul(E / G).div(G);
      return { expert: expertFlat, token, gate: gateFlat.to(x.dtype), auxLoss, zLoss, load: counts.div(N * k) };
    });
  }

  forward(x: Tensor): MoeOutput {
    if (this.#group) this.exchanges++;
    return torch.scope(() => {
      const r = this.route(x);
      // Capacity is a training-time device. At inference every token gets its experts: otherwise which
      // tokens drop would depend on how many share the call (batch-mates, cached vs full decoding).
      const { out, dropped } = this.capacityFactor > 0 && this.training ? this.capacityForward(x, r) : this.droplessForward(x, r);
      return { out, dropped, auxLoss: r.auxLoss, zLoss: r.zLoss, load: r.load };
    });
  }

  /** The expert weights (sharded under expert parallelism; the router is not). */
  get expertParameters(): Tensor[] { return [this.w1, this.b1, this.w2, this.b2]; }

  /** Expert capacity for `assignments` assignments. */
  capacity(assignments: number): number {
    return Math.max(1, Math.ceil((this.capacityFactor * assignments) / this.experts));
  }

  /** Positions of each assignment within its expert's queue (0, 1, …, in assignment order). */
  private positions(expert: Tensor): { order: Tensor; position: Tensor; counts: Tensor } {
    const A = expert.shape[0];
    // Sorting by expert·A + index is a stable sort by expert with a plain sort.
    const order = expert.mul(A).add(torch.arange(A, undefined, 1, { device: expert.device })).argsort();
    const sortedExpert = expert.index(order);
    const counts = sortedExpert.bincount(undefined, this.experts);
    const starts = counts.cumsum(0).sub(counts);
    const posSorted = torch.arange(A, undefined, 1, { device: expert.device }).sub(starts.index(sortedExpert));
    const position = torch.zerosLike(posSorted).scatter(0, order, posSorted);
    return { order, position, counts };
  }

  /** Capacity mode: dispatch into a padded (E, C, D) buffer, one batched matmul, combine. */
  private capacityForward(x: Tensor, r: Routing): { out: Tensor; dropped: Tensor } {
    const A = r.expert.shape[0];
    const C = this.capacity(A);
    const { buffer, slot, token, gate, kept } = this.dispatch(x, r, C);
    const y = this.#group ? this.exchangedPadded(buffer, this.#group) : this.runExpertsPadded(buffer);  // (E·C, D)
    const out = this.combine(y, slot, token, gate, x.shape[0]);
    return { out, dropped: kept.logicalNot().float().mean() };
  }

  /** Scatters kept assignments' token vectors into expert slots. (Expert parallelism: all-to-all #1.) */
  dispatch(x: Tensor, r: Routing, C: number): { buffer: Tensor; slot: Tensor; token: Tensor; gate: Tensor; kept: Tensor } {
    const { position } = this.positions(r.expert);
    const kept = position.lt(C);
    const slot = r.expert.mul(C).add(position).index(kept);
    const token = r.token.index(kept);
    const gate = r.gate.index(kept);
    const D = x.shape[1];
    const buffer = torch.zeros([this.experts * C, D], { dtype: x.dtype, device: x.device }).indexAdd(0, slot, x.indexSelect(0, token));
    return { buffer, slot, token, gate, kept };
  }

  /**
   * Expert parallel, capacity mode: the (E·C, D) buffer is expert-major, so rank s's experts are one
   * block of E/W·C rows. Ranks with fewer tokens have a smaller C, so each first learns every peer's
   * capacity (one small exchange). What arrives is [source][expert][slot]; each local expert runs on
   * all its sources' slots at once, and the outputs go back the way they came.
   */
  private exchangedPadded(buffer: Tensor, g: ExpertGroup): Tensor {
    const W = g.worldSize, n = this.localExperts, D = this.dim;
    const block = buffer.shape[0] / W;
    const ones = Array<number>(W).fill(1);
    const theirs = (g.allToAllInGraph(torch.full([W], block, { dtype: 'int64' }), ones, ones).toArray() as number[]);
    const mine = Array<number>(W).fill(block);
    const got = g.allToAllInGraph(buffer, mine, theirs);
    const slots = theirs.map((b) => b / n);
    const bySource = got.split(theirs, 0).map((p, s) => p.view(n, slots[s]!, D));
    const y = this.runExpertsPadded(torch.cat(bySource, 1).view(-1, D)).view(n, -1, D);
    const back = torch.cat(y.split(slots, 1).map((p) => p.reshape(-1, D)));
    return g.allToAllInGraph(back, theirs, mine);
  }

  /** The experts held here at once on (E·C, D) rows: (E, C, D) @ (E, D, F) → GELU → @ (E, F, D). */
  private runExpertsPadded(buffer: Tensor): Tensor {
    const E = this.localExperts, D = this.dim;
    const h = buffer.view(E, -1, D);
    const a = torch.baddbmm(this.b1.unsqueeze(1), h, this.w1).gelu();
    return torch.baddbmm(this.b2.unsqueeze(1), a, this.w2).view(-1, D);
  }

  /** Gathers expert outputs back to their tokens, weighted by the gate. (Expert parallelism: all-to-all #2.) */
  combine(y: Tensor, slot: Tensor, token: Tensor, gate: Tensor, N: number): Tensor {
    const rows = y.indexSelect(0, slot).mul(gate.unsqueeze(1).to(y.dtype));
    return torch.zeros([N, y.shape[1]], { dtype: y.dtype, device: y.device }).indexAdd(0, token, rows);
  }

  /** Dropless mode: tokens sorted by expert, one matmul per expert on its exact slice. */
  private droplessForward(x: Tensor, r: Routing): { out: Tensor; dropped: Tensor } {
    const { order, counts } = this.positions(r.expert);
    const token = r.token.index(order);
    const gate = r.gate.index(order);
    const xs = x.indexSelect(0, token);
    const ys = this.#group ? this.exchangedDropless(xs, counts, this.#group) : this.runExperts(xs, counts.toArray() as number[]);
    const out = torch.zeros([x.shape[0], x.shape[1]], { dtype: ys.dtype, device: x.device }).indexAdd(0, token, ys.mul(gate.unsqueeze(1).to(ys.dtype)));
    return { out, dropped: torch.zeros([], { device: x.device }) };
  }

  /** The experts held here, each on its slice of `xs` (rows sorted by expert; `sizes` rows each). */
  private runExperts(xs: Tensor, sizes: readonly number[]): Tensor {
    const pieces: Tensor[] = [];
    let start = 0;
    // unbind, not select(e) per expert: select's backward would allocate a whole (E, D, F) gradient per expert.
    const [w1, b1, w2, b2] = [this.w1, this.b1, this.w2, this.b2].map((t) => t.unbind(0));
    sizes.forEach((n, e) => {
      if (n === 0) return;
      const h = xs.narrow(0, start, n);
      const a = torch.addmm(b1[e]!, h, w1[e]!).gelu();
      pieces.push(torch.addmm(b2[e]!, a, w2[e]!));
      start += n;
    });
    // Every row routed elsewhere (expert parallel): an empty (0, D) result keeps the exchange going.
    return pieces.length > 0 ? torch.cat(pieces) : xs.narrow(0, 0, 0).mul(0);
  }

  /**
   * Expert parallel, dropless: rows sorted by expert go to their experts' ranks. A first exchange of
   * the per-expert counts tells each rank how many rows arrive from each source, for which expert;
   * arrivals ([source][expert][row]) are regrouped by expert, run, put back in arrival order and
   * returned, so `xs`'s rows come back in their own order.
   */
  private exchangedDropless(xs: Tensor, counts: Tensor, g: ExpertGroup): Tensor {
    const W = g.worldSize, n = this.localExperts;
    const equal = Array<number>(W).fill(n);
    const sent = counts.toArray() as number[];
    const came = g.allToAllInGraph(counts, equal, equal).toArray() as number[];  // [source][local expert]
    const perRank = (c: number[]) => Array.from({ length: W }, (_, s) => c.slice(s * n, (s + 1) * n).reduce((a, b) => a + b, 0));
    const sendSplits = perRank(sent), recvSplits = perRank(came);
    const got = g.allToAllInGraph(xs, sendSplits, recvSplits);
    const { byExpert, sizes } = groupArrivals(came, W, n);
    const inverse = Array<number>(byExpert.length);
    byExpert.forEach((arrival, i) => { inverse[arrival] = i; });
    const index = (a: number[]) => torch.tensor(a, { dtype: 'int64', device: xs.device });
    const ys = this.runExperts(got.indexSelect(0, index(byExpert)), sizes);
    return g.allToAllInGraph(ys.indexSelect(0, index(inverse)), recvSplits, sendSplits);
  }

  /** Parameters of one expert (for counting active parameters). */
  get paramsPerExpert(): number { return 2 * this.dim * this.hidden + this.hidden + this.dim; }
}

/**
 * The order that groups rows arriving as [source][expert][row] by expert ([expert][source][row]):
 * `byExpert[i]` is the arrival index of the i-th grouped row; `sizes[e]` the rows of local expert e.
 */
export function groupArrivals(counts: readonly number[], sources: number, experts: number): { byExpert: number[]; sizes: number[] } {
  const start: number[] = [];
  let at = 0;
  for (const c of counts) { start.push(at); at += c; }
  const byExpert: number[] = [];
  const sizes = Array<number>(experts).fill(0);
  for (let e = 0; e < experts; e++) {
    for (let s = 0; s < sources; s++) {
      const k = s * experts + e;
      for (let i = 0; i < counts[k]!; i++) byExpert.push(start[k]! + i);
      sizes[e]! += counts[k]!;
    }
  }
  return { byExpert, sizes };
}
