// The loss of one batch, whatever its tasks: rows of generative tasks (describe, answer, design,
// denoise) are teacher-forced through M6Model.forward; rows of the embed task are embedded twice,
// image alone and text alone, and scored with the contrastive loss against the other embed rows of
// the batch (the loader gives them as one group per batch); rows of the recommend task predict
// each next item of a shopper's history among all items. The batch loss adds the objectives, the
// contrastive one scaled by its task's weight (recommend rows share the slots by weight instead).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { contrastiveLoss, type M6Model } from '../model/index.js';
import { IGNORE_INDEX, nextTokenLabels, type TrainingTensors } from './batchTensors.js';
import { DEFAULT_LOSS_MEAN, type LossMean } from './lossMean.js';
import type { MoeRouting } from './metrics.js';
import type { Batch } from '../data/loader.js';

/** Tasks trained by contrast rather than generation. */
export const CONTRASTIVE_TASKS: ReadonlySet<string> = new Set(['embed']);

export interface BatchLoss {
  /** What backward() is called on: both objectives and the weighted MoE auxiliary losses; undefined
   * when no row could be scored (a lone embed row has nothing to be contrasted with). */
  loss: Tensor | undefined;
  /** Each row's own loss (token-mean cross-entropy, or its contrastive loss), as numbers: per-task progress. */
  rows: number[];
  /** Routing of each MoE layer in the generative pass (empty for a dense model or a batch without generative rows). */
  moe: MoeRouting[];
}

function selectRows(t: TrainingTensors, rows: readonly number[]): TrainingTensors {
  const idx = torch.tensor(Int32Array.from(rows), { dtype: 'int64' });
  const pick = (x: Tensor): Tensor => x.indexSelect(0, idx);
  const out: TrainingTensors = {
    source: pick(t.source), sourceMask: pick(t.sourceMask), target: pick(t.target), targetMask: pick(t.targetMask), labels: pick(t.labels),
    labelCounts: rows.map((r) => t.labelCounts[r]!),
  };
  if (t.images !== undefined) out.images = pick(t.images);
  if (t.imageMask !== undefined) out.imageMask = pick(t.imageMask);
  if (t.targetIsImage !== undefined) out.targetIsImage = pick(t.targetIsImage);
  if (t.items !== undefined) out.items = pick(t.items);
  if (t.pairs !== undefined) out.pairs = { source: pick(t.pairs.source), sourcePos: pick(t.pairs.sourcePos), target: pick(t.pairs.target), targetPos: pick(t.pairs.targetPos) };
  return out;
}

/**
 * How strongly the contrastive loss trains the shared stem and blocks (its projection head learns at
 * full strength). Colour alone tells most random pairs apart, and at full strength the contrastive
 * gradient reshapes the image features around colour, away from the shapes the generative tasks
 * need: at 0.1 the search vectors are built mostly on features the generative tasks learn (the
 * README's "Why these defaults" gives the measurements).
 */
export const EMBED_TRUNK_GRADIENT = 0.1;

/**
 * The embed rows' loss: image vectors against their texts' vectors. A contrastive batch needs at
 * least two pairs (one pair has nothing to be contrasted with: its loss is zero and teaches nothing).
 */
function embedLoss(model: M6Model, t: TrainingTensors): { loss: Tensor; rows: Tensor; aux: Tensor } {
  if (t.images === undefined) throw new RangeError('embed rows need images');
  const image = model.embed({ images: t.images, trunkGradScale: EMBED_TRUNK_GRADIENT });
  const text = model.embed({ source: t.source, sourceMask: t.sourceMask, trunkGradScale: EMBED_TRUNK_GRADIENT });
  // Rows with the same caption are matches of each other's images (a label used as the caption repeats).
  const sameText = t.source.unsqueeze(1).eq(t.source.unsqueeze(0)).all(2);
  const c = contrastiveLoss(image.vectors, text.vectors, model.logitScale, sameText);
  const aux = model.routingLoss(image.auxLoss.add(text.auxLoss), image.zLoss.add(text.zLoss));
  return { loss: c.loss, rows: c.rows, aux };
}

/** The (history position → next item) steps of recommend rows; undefined when they have none. */
function recommendSteps(t: TrainingTensors): { at: number[]; next: number[]; rowOf: number[] } | undefined {
  const items = t.items;
  if (items === undefined || items.shape[1]! < 2) return undefined;
  const L = items.shape[1]!;
  const at: number[] = [], next: number[] = [], rowOf: number[] = [];
  (items.toArray() as number[][]).forEach((row, b) => { for (let i = 0; i + 1 < L; i++) if (row[i]! >= 0 && row[i + 1]! >= 0) { at.push(b * (L - 1) + i); next.push(row[i + 1]!); rowOf.push(b); } });
  return at.length > 0 ? { at, next, rowOf } : undefined;
}

/**
 * The recommend rows' loss (SASRec's objective, M6-Rec's model): at every step of each history
 * the query must pick the next item among all candidate items, by cross-entropy over their scores.
 * A full softmax rather than sampled negatives: scoring an item is one row of the item table, so
 * every candidate costs one multiply-add per dimension, and a catalog's worth of negatives trains
 * far better than a batch's. `candidates` ((N) bool) leaves out items with no training
 * interactions: as negatives only, their learnt vectors would learn nothing but "never me".
 * Each row's loss is the mean over its steps.
 */
type RecommendSteps = NonNullable<ReturnType<typeof recommendSteps>>;

function recommendLoss(model: M6Model, t: TrainingTensors, found: RecommendSteps, candidates: Tensor | undefined): { loss: Tensor; rows: Tensor; aux: Tensor } {
  const items = t.items!;
  const [B, L] = items.shape as [number, number];
  const { at, next, rowOf } = found;
  // Rows picked from a mixed batch keep its prompt width, which may be another task's question:
  // cut the padding all these rows share, or the histories lose those positions (and may not fit).
  const width = Math.max(1, Math.round(t.sourceMask.sum(1).max().item()));
  const r = model.recommendQueries({ history: items.narrow(1, 0, L - 1), source: t.source.narrow(1, 0, width), sourceMask: t.sourceMask.narrow(1, 0, width) });
  const device = items.device;
  const queries = r.queries.reshape(B * (L - 1), -1).indexSelect(0, torch.tensor(Int32Array.from(at), { dtype: 'int64', device }));
  let logits = model.itemScores(queries, model.itemVectors());
  if (candidates !== undefined) logits = logits.maskedFill(candidates.logicalNot().unsqueeze(0), -1e4);
  const steps = torch.nn.crossEntropy(logits, torch.tensor(Int32Array.from(next), { dtype: 'int64', device }), { reduction: 'none' });
  const rowIdx = torch.tensor(Int32Array.from(rowOf), { dtype: 'int64', device });
  const sums = torch.zeros([B], { device }).indexAdd(0, rowIdx, steps);
  const counts = torch.zeros([B], { device }).indexAdd(0, rowIdx, torch.ones([at.length], { device }));
  return { loss: steps.mean(), rows: sums.div(counts), aux: model.routingLoss(r.auxLoss, r.zLoss) };
}

export interface BatchLossOptions {
  /** Each contrastive task's weight against the generative loss (default 1). */
  lossWeights?: Readonly<Record<string, number>>;
  /** Items the recommend softmax ranks among ((N) bool); default every item. */
  itemCandidates?: Tensor;
  /** Default DEFAULT_LOSS_MEAN. */
  mean?: LossMean;
  /**
   * Data parallel: what the generative loss divides by instead of this batch's own count (label
   * tokens for 'tokens', rows with a label for 'rows'): the global batch's count over the world size
   * (lmCounts, all-reduced), so that the ranks' averaged gradients are the one-process gradient of
   * the global batch, however the tokens fall between the ranks.
   */
  lmDenominator?: number;
  /**
   * Expert parallel: the forwards other ranks make. Where this batch has none of their rows, it makes
   * their passes through the blocks empty (zero tokens, a zero loss), in the same order, so that the
   * MoE layers' exchanges pair up with the peers' (train/expertParallel.ts).
   */
  alsoRun?: ForwardPlan;
}

/** Which of the model's forwards a batch makes: its generative rows', its contrastive pairs', its recommend histories'. */
export interface ForwardPlan { lm: boolean; embed: boolean; recommend: boolean }
export const FORWARD_KEYS: ReadonlyArray<keyof ForwardPlan> = ['lm', 'embed', 'recommend'];
/** Passes through the blocks each forward makes (embed: the images', then the texts'). */
export const FORWARD_PASSES: Readonly<Record<keyof ForwardPlan, number>> = { lm: 1, embed: 2, recommend: 1 };

/** Forward `f`'s passes through the blocks with zero tokens, as a zero loss (expert parallel: see alsoRun). */
export function emptyForward(model: M6Model, f: keyof ForwardPlan): Tensor {
  let zero = model.emptyMoePass().sum().mul(0);
  for (let k = 1; k < FORWARD_PASSES[f]; k++) zero = zero.add(model.emptyMoePass().sum().mul(0));
  return zero;
}

/** The batch's rows by the forward that serves them. */
function rowsByForward(tasks: readonly string[]): Record<keyof ForwardPlan, number[]> {
  const rows: Record<keyof ForwardPlan, number[]> = { lm: [], embed: [], recommend: [] };
  tasks.forEach((task, i) => rows[task === 'recommend' ? 'recommend' : CONTRASTIVE_TASKS.has(task) ? 'embed' : 'lm'].push(i));
  return rows;
}

/** The forwards `batchLoss` makes for this batch. */
export function forwardPlan(t: TrainingTensors, tasks: readonly string[]): ForwardPlan {
  return planBatch(t, tasks).plan;
}

/** The forwards, the rows of each, and the recommend rows' tensors and steps (read once: a host copy). */
function planBatch(t: TrainingTensors, tasks: readonly string[]): { plan: ForwardPlan; rows: Record<keyof ForwardPlan, number[]>; recommend?: { t: TrainingTensors; steps: RecommendSteps } } {
  const rows = rowsByForward(tasks);
  const rt = rows.recommend.length === 0 ? undefined : rows.recommend.length === tasks.length ? t : selectRows(t, rows.recommend);
  const steps = rt !== undefined ? recommendSteps(rt) : undefined;
  return {
    plan: { lm: rows.lm.length > 0, embed: rows.embed.length >= 2, recommend: steps !== undefined },
    rows,
    ...(steps !== undefined ? { recommend: { t: rt!, steps } } : {}),
  };
}

/** The generative rows' label tokens and the rows that have any: what the two means divide by. */
export function lmCounts(batch: Batch): { tokens: number; rows: number } {
  // The label tokens the loss reads: counted as nextTokenLabels counts them (a packed row's pair boundaries are none).
  const { counts } = nextTokenLabels(batch.targetIds, batch.targetMask, batch.pairOf?.target);
  let tokens = 0, rows = 0;
  batch.tasks.forEach((task, b) => {
    if (task === 'recommend' || CONTRASTIVE_TASKS.has(task)) return;
    tokens += counts[b]!;
    if (counts[b]! > 0) rows++;
  });
  return { tokens, rows };
}

/**
 * The loss of a batch whose rows serve `tasks[i]`: the generative rows' loss (averaged as `o.mean`
 * says) plus the contrastive rows' loss times their task's weight in `o.lossWeights`, as CoCa adds
 * its contrastive and captioning losses. Call inside a scope (and autocast, if wanted).
 */
export function batchLoss(model: M6Model, t: TrainingTensors, tasks: readonly string[], o: BatchLossOptions = {}): BatchLoss {
  const B = tasks.length;
  const { plan, rows, recommend } = planBatch(t, tasks);
  const pick = (r: number[]) => (r.length === B ? t : selectRows(t, r));
  const perRow = new Array<number>(B).fill(NaN);
  let loss: Tensor | undefined;
  const add = (l: Tensor) => { loss = loss === undefined ? l : loss.add(l); };
  // Passes other ranks make and this batch does not (expert parallel), each where its forward would be.
  const empty = (f: keyof ForwardPlan) => { if (o.alsoRun?.[f] === true && !plan[f]) add(emptyForward(model, f)); };
  let moe: MoeRouting[] = [];
  if (plan.lm) {
    // A packAnswers model's answer rows never let the image read the question (M6Config.packAnswers).
    const isolate = model.cfg.packAnswers && rows.lm.some((r) => tasks[r] === 'answer')
      ? torch.tensor(Uint8Array.from(rows.lm, (r) => (tasks[r] === 'answer' ? 1 : 0)), { dtype: 'bool', device: t.target.device }) : undefined;
    const r = lmLoss(model, pick(rows.lm), o, isolate);
    add(r.loss);
    r.rows.forEach((l, k) => (perRow[rows.lm[k]!] = l));
    moe = r.moe;
  }
  empty('lm');
  if (plan.embed) {
    const e = embedLoss(model, pick(rows.embed));
    add(e.loss.add(e.aux).mul(o.lossWeights?.[tasks[rows.embed[0]!]!] ?? 1));
    (e.rows.detach().toArray() as number[]).forEach((l, k) => (perRow[rows.embed[k]!] = l));
  }
  empty('embed');
  if (recommend !== undefined) {
    const r = recommendLoss(model, recommend.t, recommend.steps, o.itemCandidates);
    add(r.loss.add(r.aux));
    (r.rows.detach().toArray() as number[]).forEach((l, k) => (perRow[rows.recommend[k]!] = l));
  }
  empty('recommend');
  return { loss, rows: perRow, moe };
}

/** The generative rows' loss (averaged as `o.mean` says), per-row figures and MoE routing figures. */
function lmLoss(model: M6Model, lm: TrainingTensors, o: BatchLossOptions, isolateImage: Tensor | undefined): { loss: Tensor; rows: number[]; moe: MoeRouting[] } {
  const out = model.forward({
    images: lm.images, source: lm.source, sourceMask: lm.sourceMask, target: lm.target, targetMask: lm.targetMask,
    ...(lm.imageMask !== undefined ? { imageMask: lm.imageMask } : {}), ...(lm.targetIsImage !== undefined ? { targetKind: lm.targetIsImage } : {}),
    ...(lm.pairs !== undefined ? { pairs: lm.pairs } : {}), ...(isolateImage !== undefined ? { isolateImage } : {}),
  });
  // One cross-entropy per token serves both means and the per-row figures.
  const [Bl, T] = lm.labels.shape as [number, number];
  const tokenLoss = torch.nn.crossEntropy(out.logits.reshape(Bl * T, -1).float(), lm.labels.reshape(Bl * T), { ignoreIndex: IGNORE_INDEX, reduction: 'none' }).view(Bl, T);
  const counts = lm.labels.ne(IGNORE_INDEX).sum(1).float();
  const rowSums = tokenLoss.sum(1);
  // A row without a label token has no loss: NaN in the per-row figures, left out of the means.
  const byRows = (o.mean ?? DEFAULT_LOSS_MEAN) === 'rows';
  const numerator = byRows ? rowSums.div(counts.clamp(1)).sum() : rowSums.sum();
  const mean = o.lmDenominator !== undefined ? numerator.div(Math.max(o.lmDenominator, 1e-12))
    : numerator.div((byRows ? counts.gt(0).sum().float() : counts.sum()).clamp(1));
  let moe: MoeRouting[] = [];
  if (out.moe.length > 0) {
    // One read for all layers: [dropped, max load] per layer.
    const stats = torch.stack(out.moe.flatMap((m) => [m.dropped.float(), m.load.max().mul(m.load.shape[0]!).float()])).toArray() as number[];
    moe = out.moe.map((m, i) => ({ layer: m.layer, dropped: stats[2 * i]!, maxLoad: stats[2 * i + 1]! }));
  }
  return { loss: mean.add(model.routingLoss(out.auxLoss, out.zLoss)), rows: rowSums.div(counts).detach().toArray() as number[], moe };
}
