// A loader batch (typed arrays) → the model's inputs (tensors), for teacher forcing:
//
//   targetIds  <bos> a b c <eos> <pad>
//   target     <bos> a b c <eos>          decoder input: every token but the last
//   labels       a   b c <eos> -100       next token at each position; -100 where that token is padding
//
// Token ids become int64 and 1/0 masks become bool, as M6Model.forward wants them.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { Batch, TensorData } from '../data/loader.js';
import type { PairLayout } from '../model/index.js';

/** The label value the loss ignores (PyTorch's and M6Model's ignore_index). */
export const IGNORE_INDEX = -100;

export interface TrainingTensors {
  images?: Tensor;        // (B, 3, S, S) float32
  /** (B) bool: rows that have an image; absent when every row has one (the others' patches are masked out). */
  imageMask?: Tensor;
  source: Tensor;         // (B, Ls) int64
  sourceMask: Tensor;     // (B, Ls) bool
  target: Tensor;         // (B, Lt-1) int64: decoder input
  targetMask: Tensor;     // (B, Lt-1) bool
  labels: Tensor;         // (B, Lt-1) int64, IGNORE_INDEX at padding
  /** (B) bool: rows whose target is image codes (design); absent when no row's is. M6Input.targetKind per row. */
  targetIsImage?: Tensor;
  /** (B, Li) int64 item indices (recommend rows), -1 at padding; absent when no row has items. */
  items?: Tensor;
  /** Packed rows (Batch.pairOf): each source and decoder-input token's pair and position within it. */
  pairs?: PairLayout;
  /** Label tokens (not ignored) per row: what the loss averages over, and the throughput count. */
  labelCounts: number[];
}

/** Drops the last column of a row-major [B, L] array: [B, L-1]. */
function withoutLastColumn<T extends Int32Array | Float32Array>(t: TensorData<T>, make: (n: number) => T): TensorData<T> {
  const [B, L] = t.shape as [number, number];
  const out = make(B * (L - 1));
  for (let b = 0; b < B; b++) out.set(t.data.subarray(b * L, b * L + L - 1), b * (L - 1));
  return { data: out, shape: [B, L - 1] };
}

/**
 * Next-token labels: targetIds[:, 1:], with IGNORE_INDEX where targetMask[:, 1:] is 0 and, in packed
 * rows, where the next token opens another pair (one pair's <eos> does not predict the next's <bos>).
 */
export function nextTokenLabels(targetIds: TensorData<Int32Array>, targetMask: TensorData<Float32Array>, pairOf?: TensorData<Int32Array>): { labels: TensorData<Int32Array>; counts: number[] } {
  const [B, L] = targetIds.shape as [number, number];
  const labels = new Int32Array(B * (L - 1));
  const counts = new Array<number>(B).fill(0);
  for (let b = 0; b < B; b++) {
    for (let t = 1; t < L; t++) {
      const real = targetMask.data[b * L + t] !== 0 && (pairOf === undefined || pairOf.data[b * L + t] === pairOf.data[b * L + t - 1]);
      labels[b * (L - 1) + t - 1] = real ? targetIds.data[b * L + t]! : IGNORE_INDEX;
      if (real) counts[b]!++;
    }
  }
  return { labels: { data: labels, shape: [B, L - 1] }, counts };
}

function ids(t: TensorData<Int32Array>, device: torch.Device): Tensor {
  return torch.tensor(t.data, { shape: t.shape, dtype: 'int64', device });
}

function mask(t: TensorData<Float32Array>, device: torch.Device): Tensor {
  return torch.tensor(Uint8Array.from(t.data, (v) => (v !== 0 ? 1 : 0)), { shape: t.shape, dtype: 'bool', device });
}

function flags(t: TensorData<Uint8Array>, device: torch.Device): Tensor {
  return torch.tensor(Uint8Array.from(t.data, (v) => (v !== 0 ? 1 : 0)), { shape: t.shape, dtype: 'bool', device });
}

/** Each token's position within its pair: [B, L], counted from 0 where its pair starts (padding 0). */
export function positionsInPairs(pairOf: TensorData<Int32Array>): TensorData<Int32Array> {
  const [B, L] = pairOf.shape as [number, number];
  const data = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    let start = 0;
    for (let t = 0; t < L; t++) {
      const p = pairOf.data[b * L + t]!;
      if (t > 0 && p !== pairOf.data[b * L + t - 1]) start = t;
      data[b * L + t] = p < 0 ? 0 : t - start;
    }
  }
  return { data, shape: [B, L] };
}

function pairLayout(pairOf: NonNullable<Batch['pairOf']>, device: torch.Device): PairLayout {
  const target = withoutLastColumn(pairOf.target, (n) => new Int32Array(n));
  return {
    source: ids(pairOf.source, device), sourcePos: ids(positionsInPairs(pairOf.source), device),
    target: ids(target, device), targetPos: ids(positionsInPairs(target), device),
  };
}

/** The tensors of one batch (created in the caller's scope). */
export function batchToTensors(batch: Batch, device: torch.Device = 'cpu'): TrainingTensors {
  if (batch.targetIds.shape[1]! < 2) throw new RangeError(`target rows need <bos> and at least one more token; got length ${batch.targetIds.shape[1]}`);
  const { labels, counts } = nextTokenLabels(batch.targetIds, batch.targetMask, batch.pairOf?.target);
  const out: TrainingTensors = {
    source: ids(batch.sourceIds, device),
    sourceMask: mask(batch.sourceMask, device),
    target: ids(withoutLastColumn(batch.targetIds, (n) => new Int32Array(n)), device),
    targetMask: mask(withoutLastColumn(batch.targetMask, (n) => new Float32Array(n)), device),
    labels: ids(labels, device),
    labelCounts: counts,
  };
  if (batch.images !== null) out.images = torch.tensor(batch.images.data, { shape: batch.images.shape, device });
  // A row without an image (a design prompt beside describe rows) must not attend to the blank
  // pixels standing in for it: with the mask it reads its text exactly as if the batch had no images.
  if (batch.images !== null && batch.imageMask.data.includes(0)) out.imageMask = flags(batch.imageMask, device);
  if (batch.targetIsImage !== undefined && batch.targetIsImage.data.includes(1)) out.targetIsImage = flags(batch.targetIsImage, device);
  if (batch.items !== undefined) out.items = ids(batch.items, device);
  if (batch.pairOf !== undefined) out.pairs = pairLayout(batch.pairOf, device);
  return out;
}
