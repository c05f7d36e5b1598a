// The loss of one batch, whatever its tasks: rows of generative tasks (describe, answer, design,
// denoise) are teacher-forced through M6Model.forward; rows of the embed task are embedded twice,
// image alone and text alone, and scored with the contrastive loss against the other embed rows of
// the batch (the loader gives them as one group per batch). The batch loss adds the two objectives,
// the contrastive one scaled by its task's weight.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { contrastiveLoss, type M6Input, type M6Model } from '../model/index.js';
import { rowLosses, type TrainingTensors } from './batchTensors.js';

/** Tasks trained by contrast rather than generation. */
export const CONTRASTIVE_TASKS: ReadonlySet<string> = new Set(['embed']);

export interface BatchLoss {
  /** What backward() is called on: both objectives and the weighted MoE auxiliary losses; undefined
   * when no row could be scored (a lone embed row has nothing to be contrasted with). */
  loss: Tensor | undefined;
  /** Each row's own loss (token-mean cross-entropy, or its contrastive loss), as numbers: per-task progress. */
  rows: number[];
  /** Positions the model ran over (patches + source + target per row of each forward, padding
   * included; an embed row counts its image pass and its text pass): what tokens/s counts. */
  positions: number;
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
  return out;
}

/**
 * How strongly the contrastive loss trains the shared stem and blocks (its projection head learns at
 * full strength). Colour alone tells most random pairs apart, and at full strength the contrastive
 * gradient reshapes the image features around colour, away from the shapes the generative tasks
 * need. 9-minute demo runs (describe + answer + embed, one thread): at 1, describe's category
 * accuracy 8.5% and text→image recall@10 69.4%; at 0.1, 21.5% and 87.7%. The search vectors are
 * then built mostly on features the generative tasks learn.
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
  const cfg = model.cfg;
  const aux = image.auxLoss.add(text.auxLoss).mul(cfg.auxLossWeight).add(image.zLoss.add(text.zLoss).mul(cfg.zLossWeight));
  return { loss: c.loss, rows: c.rows, aux };
}

/**
 * The generative rows split by layout: whether a row has an image, and whether its target is image
 * codes. Why: one forward over a mixed batch pads every row to the longest of each part, so a
 * design row (no image, 64-code target) carries the describe rows' 64 masked patches and they carry
 * its 64-position target: on the demo's mixture about 145 positions per row where each layout needs
 * 80–100. Attention grows with the square of that. Each layout's rows go through the model alone,
 * trimmed to their own longest source and target; the masks make the per-row results the same.
 */
function layoutGroups(t: TrainingTensors, rows: readonly number[]): { rows: number[]; image: boolean; imageTarget: boolean }[] {
  const hasImage = t.images === undefined ? undefined : t.imageMask === undefined ? null : (t.imageMask.toArray() as boolean[]);
  const isImageTarget = t.targetIsImage?.toArray() as boolean[] | undefined;
  const groups = new Map<string, { rows: number[]; image: boolean; imageTarget: boolean }>();
  for (const r of rows) {
    const image = hasImage === undefined ? false : hasImage === null ? true : hasImage[r]!;
    const imageTarget = isImageTarget?.[r] ?? false;
    const key = `${image}/${imageTarget}`;
    (groups.get(key) ?? groups.set(key, { rows: [], image, imageTarget }).get(key)!).rows.push(r);
  }
  return [...groups.values()];
}

/** Columns up to the last real (mask true) one of any row: the rest is padding in every row. */
function usedColumns(mask: Tensor): number {
  const used = mask.any(0).toArray() as boolean[];
  return Math.max(1, used.lastIndexOf(true) + 1);
}

/** One layout's rows as the model's input: its own padding only, images only if the rows have them. */
function layoutInput(t: TrainingTensors, g: { rows: number[]; image: boolean; imageTarget: boolean }): M6Input & { labels: Tensor } {
  const s = selectRows(t, g.rows);
  const S = usedColumns(s.sourceMask), T = usedColumns(s.targetMask);
  const input: M6Input & { labels: Tensor } = {
    source: s.source.narrow(1, 0, S), sourceMask: s.sourceMask.narrow(1, 0, S),
    target: s.target.narrow(1, 0, T), targetMask: s.targetMask.narrow(1, 0, T), labels: s.labels.narrow(1, 0, T),
    targetKind: g.imageTarget ? 'image' : 'text',
  };
  if (g.image) input.images = s.images!;
  return input;
}

/** Positions one forward runs over (image patches + source + target, padding included): the throughput count. */
function forwardPositions(model: M6Model, input: M6Input): number {
  const { imageSize, patchSize } = model.cfg;
  const patches = input.images === undefined ? 0 : (imageSize / patchSize) ** 2;
  return input.target.shape[0]! * (patches + (input.source?.shape[1] ?? 0) + input.target.shape[1]!);
}

/**
 * The loss of a batch whose rows serve `tasks[i]`: the generative rows' mean token loss (over all
 * their label tokens, whichever layout group they ran in) plus the contrastive rows' loss times
 * their task's `lossWeights` entry (default 1), as CoCa adds its contrastive and captioning losses.
 * Call inside a scope (and autocast, if wanted).
 */
export function batchLoss(model: M6Model, t: TrainingTensors, tasks: readonly string[], lossWeights: Readonly<Record<string, number>> = {}): BatchLoss {
  const B = tasks.length;
  const embedRows: number[] = [], lmRows: number[] = [];
  tasks.forEach((task, i) => (CONTRASTIVE_TASKS.has(task) ? embedRows : lmRows).push(i));
  const perRow = new Array<number>(B).fill(NaN);
  let loss: Tensor | undefined;
  let positions = 0;
  if (lmRows.length > 0) {
    const groups = layoutGroups(t, lmRows);
    const tokens = (rows: readonly number[]) => rows.reduce((n, r) => n + t.labelCounts[r]!, 0);
    const allTokens = tokens(lmRows);
    const cfg = model.cfg;
    for (const g of groups) {
      const input = layoutInput(t, g);
      positions += forwardPositions(model, input);
      const out = model.forward(input);
      // Token-weighted, so the sum is the mean over every generative label token of the batch (as one
      // forward over all rows gives); the MoE losses are per-token means too, weighted by rows.
      const part = out.lmLoss!.mul(tokens(g.rows) / allTokens)
        .add(out.auxLoss.mul(cfg.auxLossWeight).add(out.zLoss.mul(cfg.zLossWeight)).mul(g.rows.length / lmRows.length));
      loss = loss === undefined ? part : loss.add(part);
      rowLosses(out.logits, input.labels).forEach((l, k) => (perRow[g.rows[k]!] = l));
    }
  }
  if (embedRows.length >= 2) {
    const et = embedRows.length === B ? t : selectRows(t, embedRows);
    const S = usedColumns(et.sourceMask);
    const e = embedLoss(model, { ...et, source: et.source.narrow(1, 0, S), sourceMask: et.sourceMask.narrow(1, 0, S) });
    const weighted = e.loss.add(e.aux).mul(lossWeights[tasks[embedRows[0]!]!] ?? 1);
    loss = loss === undefined ? weighted : loss.add(weighted);
    (e.rows.detach().toArray() as number[]).forEach((l, k) => (perRow[embedRows[k]!] = l));
    positions += embedRows.length * ((model.cfg.imageSize / model.cfg.patchSize) ** 2 + S);
  }
  return { loss, rows: perRow, positions };
}
