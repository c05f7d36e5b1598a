// Data-parallel training over a c10d process group (PyTorch DDP's contract): every rank holds the same
// model, trains on its share of every global batch (the loader's `shard`), and averages gradients with
// GradReducer once per optimizer step, before the clip, so every rank makes the same update.
//
// Every rank must call the same collectives in the same order, so whatever decides control flow is
// agreed on before it is acted on: the stop request and the time budget at the top of each step
// (`agree`), a NaN/Inf on any rank before the update (`reduceOutcome`). Only rank 0 writes files.
import * as torch from '../torch/index.js';
import { GradReducer, type ProcessGroup } from '../distributed/index.js';
import type { M6Model } from '../model/index.js';
import type { StepOutcome } from './trainStep.js';
import { InputError } from '../torch/inputError.js';
import { ExpertParallel } from './expertParallel.js';

// Buffer dtypes a Gloo broadcast carries (bool masks and the like are built the same on every rank).
const BROADCAST_DTYPES = new Set(['float32', 'float64', 'float16', 'bfloat16', 'int32', 'int64']);

/** Every rank's `settings` must be rank 0's: an error naming the ranks and the first setting that differs. */
async function checkSameSettings(pg: ProcessGroup, settings: Readonly<Record<string, unknown>>): Promise<void> {
  const keys = Object.keys(settings).sort();
  // One 31-bit hash per setting, gathered from every rank.
  const hash = (v: unknown) => { const t = JSON.stringify(v) ?? 'undefined'; let h = 0; for (let i = 0; i < t.length; i++) h = (Math.imul(h, 31) + t.charCodeAt(i)) | 0; return h; };
  const mine = torch.tensor(keys.map((k) => hash(settings[k])), { dtype: 'int64' });
  const all = await pg.allGather(mine);
  try {
    const rows = all.map((t) => (t.toArray() as number[]).map(Number));
    const bad = rows.flatMap((r, rank) => { const k = r.findIndex((h, i) => h !== rows[0]![i]); return k >= 0 ? [`rank ${rank}'s ${keys[k]}`] : []; });
    if (bad.length > 0) throw new InputError(`data parallel: the ranks must train with the same settings, but ${bad.join(', ')} differ${bad.length === 1 ? 's' : ''} from rank 0's (this rank's: ${JSON.stringify(settings)}); start every rank with the same flags`);
  } finally {
    mine.dispose();
    for (const t of all) t.dispose();
  }
}

export class DataParallel implements Disposable {
  private constructor(readonly pg: ProcessGroup, readonly reducer: GradReducer, readonly experts: ExpertParallel | undefined) {}

  /**
   * Checks the ranks built the same model and run the same schedule (`settings`: what must agree, e.g.
   * seed, batch, step; ranks started by hand with other flags would silently train apart), then gives
   * every rank rank 0's parameters and buffers (DDP's constructor). With `expertParallel`, the MoE
   * layers' experts are then sharded over the ranks (expertParallel.ts) and left out of the reducer.
   */
  static async create(pg: ProcessGroup, model: M6Model, settings: Readonly<Record<string, unknown>> = {}, opts: { expertParallel?: boolean } = {}): Promise<DataParallel> {
    await checkSameSettings(pg, settings);
    const experts = opts.expertParallel === true ? await ExpertParallel.create(pg, model) : undefined;
    // Expert parallel keeps the reduction after backward: its in-graph all-to-alls run inside backward, and
    // buckets issued from hooks could interleave with them in a different order on each rank.
    const reducer = await GradReducer.create(pg, model.parameters().filter((p) => experts?.isExpert(p) !== true), { overlap: experts === undefined });
    for (const [, b] of model.namedBuffers()) if (BROADCAST_DTYPES.has(b.dtype)) await pg.broadcast(b, 0);
    return new DataParallel(pg, reducer, experts);
  }

  /** Before the backward of a step's last micro-batch: its hooks start the buckets' all-reduces (GradReducer.armForBackward). */
  armForBackward(loss: torch.Tensor): void { this.reducer.armForBackward(loss); }

  /**
   * The step's gradient exchange, once per optimizer step: the dense gradients averaged over the
   * ranks (buckets), the experts' scaled to the same average. Returns the global gradient norm where
   * the ranks hold different gradients (expert parallel), else undefined (the clip computes it).
   */
  async syncGradients(params: readonly torch.Tensor[]): Promise<number | undefined> {
    await this.reducer.syncGradients();
    if (this.experts === undefined) return undefined;
    this.experts.scaleExpertGradients();
    return this.experts.gradNorm(params);
  }

  get rank(): number { return this.pg.rank; }
  get worldSize(): number { return this.pg.worldSize; }
  /** Rank 0: the one that writes checkpoints, metrics, plots and the run's files. */
  get isLeader(): boolean { return this.pg.rank === 0; }

  /** The global batch's generative label tokens and labelled rows, each over the world size (objectives' lmDenominator). */
  async lmDenominators(local: { tokens: number; rows: number }): Promise<{ tokens: number; rows: number }> {
    const t = torch.tensor([local.tokens, local.rows], { dtype: 'float64' });
    try {
      const [tokens, rows] = (await this.pg.allReduce(t, 'sum')).toArray() as number[];
      return { tokens: tokens! / this.worldSize, rows: rows! / this.worldSize };
    } finally {
      t.dispose();
    }
  }

  /**
   * What every rank acts on at the top of a step: stop if any rank was asked to (signals reach the
   * ranks at different moments), and the largest elapsed share of the time budget (clocks differ;
   * the learning rate of a --minutes run depends on it).
   */
  async agree(stop: boolean, timeFraction: number): Promise<{ stop: boolean; timeFraction: number }> {
    const t = torch.tensor([stop ? 1 : 0, Number.isFinite(timeFraction) ? timeFraction : 0], { dtype: 'float64' });
    try {
      const [s, f] = (await this.pg.allReduce(t, 'max')).toArray() as number[];
      return { stop: s! > 0, timeFraction: f! };
    } finally {
      t.dispose();
    }
  }

  /**
   * Makes a step's figures the global batch's, in place: the loss (each rank's is its share of the
   * global mean: averaged), per-task sums and counts and positions (summed), MoE routing (averaged
   * over the ranks that routed), finite only if finite on every rank. `tasks` and `layers` fix the layout.
   */
  async reduceOutcome(out: StepOutcome, tasks: readonly string[], layers: number): Promise<void> {
    const moe = new Map(out.moe.map((m) => [m.layer, m]));
    const v: number[] = [out.finite ? 0 : 1, out.finite ? out.loss : 0, out.positions];
    for (const name of tasks) v.push(out.taskSums[name]?.sum ?? 0, out.taskSums[name]?.n ?? 0);
    for (let l = 0; l < layers; l++) { const m = moe.get(l); v.push(m?.dropped ?? 0, m?.maxLoad ?? 0, m !== undefined ? 1 : 0); }
    const t = torch.tensor(v, { dtype: 'float64' });
    let r: number[];
    try {
      r = (await this.pg.allReduce(t, 'sum')).toArray() as number[];
    } finally {
      t.dispose();
    }
    out.finite = r[0] === 0;
    out.loss = out.finite ? r[1]! / this.worldSize : NaN;
    out.positions = r[2]!;
    out.taskSums = {};
    tasks.forEach((name, i) => { const n = r[4 + 2 * i]!; if (n > 0) out.taskSums[name] = { sum: r[3 + 2 * i]!, n }; });
    const at = 3 + 2 * tasks.length;
    out.moe = [];
    for (let l = 0; l < layers; l++) {
      const n = r[at + 3 * l + 2]!;
      if (n > 0) out.moe.push({ layer: l, dropped: r[at + 3 * l]! / n, maxLoad: r[at + 3 * l + 1]! / n });
    }
  }

  async barrier(): Promise<void> { await this.pg.barrier(); }

  dispose(): void { this.reducer.dispose(); }
  [Symbol.dispose](): void { this.dispose(); }
}
