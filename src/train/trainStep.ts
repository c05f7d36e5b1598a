// One optimizer step of the trainer: gradAccum micro-batches of forward and backward (one tensor
// scope each, bf16 autocast when asked), the gradient clip and the AdamW update — and the NaN
// policy: a step whose loss or gradient norm is not finite is skipped (no update, the gradients
// dropped), counted, and reported; the loop stops the run after too many in a row.
import * as torch from '../torch/index.js';
import type { Batch } from '../data/loader.js';
import type { M6Model } from '../model/index.js';
import { clipGradNorm, type AdamW } from '../optim/index.js';
import { batchToTensors } from './batchTensors.js';
import type { LossMean } from './lossMean.js';
import type { MetricsLog, MoeRouting, StepTiming } from './metrics.js';
import { batchLoss, emptyForward, forwardPlan, FORWARD_KEYS, lmCounts, type ForwardPlan } from './objectives.js';
import type { DataParallel } from './dataParallel.js';

export interface StepSettings {
  gradAccum: number;
  clipNorm: number;
  bf16: boolean;
  /** Each contrastive task's weight against the generative loss. */
  lossWeights: Readonly<Record<string, number>>;
  lossMean: LossMean;
  /** Items the recommend softmax ranks among ((N) bool); default every item. */
  itemCandidates?: torch.Tensor;
  /** Image patches per image row (for the positions count). */
  patches: number;
  /** Tests: steps whose loss is made NaN. */
  injectNonFinite?: ReadonlySet<number>;
  /** Data parallel (world > 1): the group's reducer, and the run's task names (the layout of the reduced figures). */
  dataParallel?: { dp: DataParallel; tasks: readonly string[] };
}

/** What one step did. */
export interface StepOutcome {
  finite: boolean;
  /** The step's loss (mean over its micro-batches). */
  loss: number;
  gradNorm: number;
  /** Per task: the sum and count of its rows' losses in this step. */
  taskSums: Record<string, { sum: number; n: number }>;
  /** Each MoE layer's routing figures, averaged over the micro-batches. */
  moe: MoeRouting[];
  /** Positions the model ran over (what tokens/s counts). */
  positions: number;
  /** Seconds waiting for data, in forward, backward and the optimizer (total is the loop's). */
  timing: StepTiming;
}

/** Positions of a batch: image patches (where it has images) + source + target positions. */
function positions(b: Batch, patches: number): number {
  return b.ids.length * ((b.images !== null ? patches : 0) + b.sourceIds.shape[1]! + b.targetIds.shape[1]! - 1);
}

export class TrainStep {
  /** Non-finite steps over the whole run (a resumed run starts from its checkpoint's count). */
  nonFiniteSteps: number;
  /** Non-finite steps in a row, up to the last one. */
  consecutiveNonFinite = 0;

  constructor(
    private readonly model: M6Model,
    private readonly optimizer: AdamW,
    private readonly settings: StepSettings,
    private readonly metrics: MetricsLog,
    nonFiniteSteps = 0,
  ) {
    this.nonFiniteSteps = nonFiniteSteps;
  }

  /**
   * Runs step `step` at learning rate `lr` on the next gradAccum batches. `onBatch` sees each batch
   * as it is drawn (bad rows are reported from there). A non-finite micro-batch ends the step's
   * compute, but its remaining batches are still drawn: the data position stays step × gradAccum
   * (what resume replays to), and data-parallel ranks keep calling the same collectives.
   */
  async run(step: number, lr: number, batches: AsyncGenerator<Batch>, onBatch: (batch: Batch) => void): Promise<StepOutcome> {
    const s = this.settings, dp = s.dataParallel;
    const timing: StepTiming = { data: 0, forward: 0, backward: 0, optimizer: 0, total: 0, positions: 0 };
    const since = (start: number) => (performance.now() - start) / 1000;
    const out: StepOutcome = { finite: true, loss: 0, gradNorm: NaN, taskSums: {}, moe: [], positions: 0, timing };
    const moeSums = new Map<number, { dropped: number; maxLoad: number; n: number }>();
    for (let micro = 0; micro < s.gradAccum; micro++) {
      const waitStart = performance.now();
      const batch = (await batches.next()).value as Batch;
      timing.data += since(waitStart);
      onBatch(batch);
      // Data parallel: the global batch's counts, so each rank's loss is its share of the global mean.
      const denominators = dp !== undefined ? await dp.dp.lmDenominators(lmCounts(batch)) : undefined;
      // Expert parallel: every rank runs every micro-batch (empty passes where it has nothing), or its
      // peers' exchanges would wait for it; a non-finite step is dropped after the exchange instead.
      if (dp?.dp.experts !== undefined && (batch.ids.length === 0 || !out.finite)) { this.emptyMicro(); continue; }
      if (batch.ids.length === 0 || !out.finite) continue;
      out.positions += positions(batch, s.patches);
      const lmDenominator = denominators?.[s.lossMean];
      const r = this.micro(step, batch, timing, lmDenominator, micro === s.gradAccum - 1);
      if (!Number.isFinite(r.value)) { out.finite = false; continue; }
      out.loss += r.value / s.gradAccum;
      r.rows.forEach((l, i) => {
        if (!Number.isFinite(l)) return;
        const sum = (out.taskSums[batch.tasks[i]!] ??= { sum: 0, n: 0 });
        sum.sum += l; sum.n++;
      });
      for (const m of r.moe) {
        const sum = moeSums.get(m.layer) ?? { dropped: 0, maxLoad: 0, n: 0 };
        moeSums.set(m.layer, { dropped: sum.dropped + m.dropped, maxLoad: sum.maxLoad + m.maxLoad, n: sum.n + 1 });
      }
    }
    out.moe = [...moeSums].map(([layer, m]) => ({ layer, dropped: m.dropped / m.n, maxLoad: m.maxLoad / m.n }));
    const optimizerStart = performance.now();
    let knownNorm: number | undefined;
    if (dp !== undefined) {
      // Once per optimizer step (the micro-batches above accumulated locally, as under DDP's no_sync),
      // before the clip: the clip then sees the global gradient, the same on every rank.
      knownNorm = await dp.dp.syncGradients(this.optimizer.params);
      timing.buckets = { inBackward: dp.dp.reducer.issuedInBackward, total: dp.dp.reducer.buckets.length, wait: since(optimizerStart) };
      await dp.dp.reduceOutcome(out, dp.tasks, this.model.cfg.layers);
    }
    this.update(step, lr, out, knownNorm);
    timing.optimizer = since(optimizerStart);
    return out;
  }

  /** One micro-batch's forward and backward, in its own tensor scope. */
  private micro(step: number, batch: Batch, timing: StepTiming, lmDenominator: number | undefined, last: boolean): { value: number; rows: number[]; moe: MoeRouting[] } {
    const s = this.settings;
    const since = (start: number) => (performance.now() - start) / 1000;
    return torch.scope(() => {
      const forwardStart = performance.now();
      const t = batchToTensors(batch);
      const forward = (alsoRun?: ForwardPlan) => batchLoss(this.model, t, batch.tasks, {
        ...(alsoRun !== undefined ? { alsoRun } : {}),
        lossWeights: s.lossWeights, mean: s.lossMean, ...(s.itemCandidates !== undefined ? { itemCandidates: s.itemCandidates } : {}),
        ...(lmDenominator !== undefined ? { lmDenominator } : {}),
      });
      const experts = s.dataParallel?.dp.experts;
      const plan = experts?.agreePlan(forwardPlan(t, batch.tasks));
      const loss = s.bf16 ? torch.autocast(() => forward(plan)) : forward(plan);
      if (plan !== undefined) experts!.checkCalls(plan);
      if (loss.loss === undefined) return { value: 0, rows: loss.rows, moe: loss.moe };
      const total = s.injectNonFinite?.has(step) ? loss.loss.mul(NaN) : loss.loss;
      const value = total.item();
      timing.forward += since(forwardStart);
      // Expert parallel: the backward runs even so (its exchanges pair with the peers'); the step is dropped.
      if (!Number.isFinite(value) && experts === undefined) return { value, rows: [] as number[], moe: [] };
      const backwardStart = performance.now();
      // The step's last backward: its gradients are final as it produces them, so buckets can leave early.
      const scaled = total.div(s.gradAccum);
      if (last) s.dataParallel?.dp.armForBackward(scaled);
      scaled.backward();
      if (!Number.isFinite(value)) return { value, rows: [] as number[], moe: [] };
      timing.backward += since(backwardStart);
      return { value, rows: loss.rows, moe: loss.moe };
    });
  }

  /** Expert parallel: a micro-batch this rank has nothing to compute for still makes its peers' passes. */
  private emptyMicro(): void {
    const experts = this.settings.dataParallel!.dp.experts!;
    torch.scope(() => {
      const plan = experts.agreePlan({ lm: false, embed: false, recommend: false });
      const run = () => FORWARD_KEYS.filter((f) => plan[f]).map((f) => emptyForward(this.model, f));
      const zeros = this.settings.bf16 ? torch.autocast(run) : run();
      experts.checkCalls(plan);
      if (zeros.length > 0) torch.stack(zeros).sum().backward();
    });
  }

  /** Clip and update when the step is finite; otherwise skip it and count it. The gradients are dropped either way. */
  private update(step: number, lr: number, out: StepOutcome, knownNorm?: number): void {
    if (out.finite) {
      out.gradNorm = clipGradNorm(this.optimizer.params, this.settings.clipNorm, 2, knownNorm);
      out.finite = Number.isFinite(out.gradNorm);
    }
    if (out.finite) {
      for (const g of this.optimizer.groups) g.hyper.lr = lr;
      this.optimizer.step();
      this.consecutiveNonFinite = 0;
    } else {
      this.nonFiniteSteps++;
      this.consecutiveNonFinite++;
      this.metrics.write({ kind: 'event', step, event: 'non-finite', detail: `loss ${out.loss}, grad norm ${out.gradNorm}; step skipped (${this.consecutiveNonFinite} in a row)` });
    }
    this.optimizer.zeroGrad();
  }
}
