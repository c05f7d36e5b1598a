// Expert parallelism in the trainer (DeepSpeed-MoE's contract, over the data-parallel ranks): each
// rank holds E/W experts of every MoE layer and tokens travel to their experts through the in-graph
// all-to-all (model/moe.ts). What that changes in a data-parallel step:
//  - Expert gradients are not all-reduced: each arrives whole at its owner, summed over every rank's
//    loss, so it is divided by W to match the dense gradients' average (GradReducer's).
//  - The clip's gradient norm adds every rank's expert shares to the (replicated) dense part.
//  - Every rank must make the same MoE calls, forward and backward, in the same order, or the
//    exchanges do not pair up. The ranks agree first on the forwards of each micro-batch (generative,
//    contrastive, recommend); a rank without rows for one of them makes its passes empty, at the
//    same place (zero tokens and a zero loss, so their backward exchanges run too), and a rank
//    whose loss is not finite still runs its backward (the step is dropped after it).
//  - Checkpoints hold whole experts, gathered from the ranks before rank 0 writes; a resume (on any
//    number of ranks, or one process) loads whole experts and shards them again.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { ProcessGroup } from '../distributed/index.js';
import type { M6Model, MoeLayer } from '../model/index.js';
import type { OptimizerState } from '../optim/index.js';
import { InputError } from '../torch/inputError.js';
import { FORWARD_KEYS, FORWARD_PASSES, type ForwardPlan } from './objectives.js';

export class ExpertParallel {
  private constructor(
    private readonly pg: ProcessGroup,
    private readonly model: M6Model,
    private readonly layers: readonly MoeLayer[],
    private readonly experts: ReadonlySet<Tensor>,
  ) {}

  /**
   * Gives every rank rank 0's expert weights, then keeps this rank's share of each MoE layer. Call
   * it on every rank, before the optimizer is made (it holds the sharded tensors).
   */
  static async create(pg: ProcessGroup, model: M6Model): Promise<ExpertParallel> {
    const layers = model.moeLayers();
    if (layers.length === 0) throw new InputError(`--expert-parallel shards the experts of MoE layers, but ${model.cfg.name} has none (give the config experts > 0)`);
    const E = layers[0]!.experts;
    if (E % pg.worldSize !== 0) throw new InputError(`--expert-parallel splits the ${E} experts of each MoE layer evenly over the ranks, but ${pg.worldSize} ranks do not divide ${E}: use a number of processes that does`);
    for (const l of layers) for (const p of l.expertParameters) await pg.broadcast(p, 0);
    for (const l of layers) l.shardExperts(pg);
    return new ExpertParallel(pg, model, layers, new Set(layers.flatMap((l) => l.expertParameters)));
  }

  /** Whether `p` is an expert weight (sharded, not all-reduced). */
  isExpert(p: Tensor): boolean { return this.experts.has(p); }

  /**
   * Every rank's forwards for this micro-batch, joined: a forward any rank makes, every rank makes
   * (with empty passes where it has no rows: batchLoss's `alsoRun`). Synchronous (one all-to-all of
   * three flags), so it can run inside the micro-batch's tensor scope; it also starts the count of
   * MoE calls that `checkCalls` verifies.
   */
  agreePlan(local: ForwardPlan): ForwardPlan {
    for (const l of this.layers) l.exchanges = 0;
    const W = this.pg.worldSize, n = FORWARD_KEYS.length;
    const mine = FORWARD_KEYS.map((k) => (local[k] ? 1 : 0));
    const splits = Array<number>(W).fill(n);
    const all = torch.scope(() => this.pg.allToAllInGraph(torch.tensor(Array.from({ length: W }, () => mine).flat(), { dtype: 'int64' }), splits, splits).toArray() as number[]);
    const any = (i: number) => all.some((v, j) => j % n === i && v > 0);
    return { lm: any(0), embed: any(1), recommend: any(2) };
  }

  /**
   * After the forwards: this rank must have made the MoE calls of the agreed plan, or its exchanges
   * paired with the wrong ones of its peers; say so rather than train on mixed-up tokens.
   */
  checkCalls(plan: ForwardPlan): void {
    const calls = this.layers.reduce((n, l) => n + l.exchanges, 0);
    const expected = FORWARD_KEYS.reduce((n, k) => n + (plan[k] ? FORWARD_PASSES[k] : 0), 0) * this.model.moeLayersPerPass().length;
    if (calls !== expected) throw new Error(`expert parallel: rank ${this.pg.rank} made ${calls} MoE calls in this micro-batch where the agreed forwards (${FORWARD_KEYS.filter((k) => plan[k]).join(', ') || 'none'}) make ${expected}: its exchanges no longer pair with its peers'`);
  }

  /**
   * After the dense gradients' all-reduce: expert gradients become the average over the ranks' losses
   * (an expert that got no token here has a zero gradient, as in one process).
   */
  scaleExpertGradients(): void {
    torch.noGrad(() => torch.scope(() => {
      for (const p of this.experts) {
        if (p.grad === undefined) p.grad = torch.zerosLike(p).keep();
        else p.grad.div_(this.pg.worldSize);
      }
    }));
  }

  /** The global gradient norm of `params`: the dense part (the same on every rank) plus every rank's experts. */
  async gradNorm(params: readonly Tensor[]): Promise<number> {
    const squares = (keep: (p: Tensor) => boolean) => torch.scope(() => params.reduce((s, p) => (p.grad !== undefined && keep(p) ? s + p.grad.float().square().sum().item() : s), 0));
    const dense = squares((p) => !this.isExpert(p));
    const t = torch.tensor([squares((p) => this.isExpert(p))], { dtype: 'float64' });
    try {
      const [experts] = (await this.pg.allReduce(t, 'sum')).toArray() as number[];
      return Math.sqrt(dense + experts!);
    } finally {
      t.dispose();
    }
  }

  /**
   * The whole model and optimizer state, as one process would save them: each expert weight and its
   * optimizer moments gathered from every rank. Every rank must call it; the gathered tensors are the
   * caller's to dispose (`dispose` of the result).
   */
  async wholeState(params: readonly Tensor[], optimizer: OptimizerState): Promise<{ model: Map<string, Tensor>; optimizer: OptimizerState; dispose: () => void }> {
    const made: Tensor[] = [];
    const whole = async (t: Tensor): Promise<Tensor> => {
      const parts = await this.pg.allGather(t.contiguous());
      const all = torch.cat(parts).keep();
      for (const p of parts) p.dispose();
      made.push(all);
      return all;
    };
    const model = this.model.stateDict();
    for (const [name, t] of model) if (this.isExpert(t)) model.set(name, await whole(t));
    const tensors = { ...optimizer.tensors };
    for (const key of Object.keys(tensors).sort()) if (this.isExpert(params[paramIndex(key)]!)) tensors[key] = await whole(tensors[key]!);
    return { model, optimizer: { ...optimizer, tensors }, dispose: () => { for (const t of made) t.dispose(); } };
  }

  /** A whole-model optimizer state (a checkpoint's) cut to this rank's experts, for `loadStateDict`. */
  localOptimizerState(state: OptimizerState, params: readonly Tensor[]): OptimizerState {
    const n = this.layers[0]!.localExperts, first = this.pg.rank * n;
    const tensors = { ...state.tensors };
    for (const key of Object.keys(tensors)) {
      const p = params[paramIndex(key)];
      if (p !== undefined && this.isExpert(p) && tensors[key]!.shape[0] === n * this.pg.worldSize) tensors[key] = torch.keep(tensors[key]!.narrow(0, first, n).contiguous());
    }
    return { ...state, tensors };
  }
}

/** The parameter index of an optimizer state key (`"12.exp_avg"` → 12). */
function paramIndex(key: string): number {
  return Number(key.slice(0, key.indexOf('.')));
}
