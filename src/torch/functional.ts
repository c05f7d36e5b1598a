// torch.nn.functional: the layers of a multimodal transformer as functions of tensors.
// Where libtorch 1.13 lacks an operator that 2.x has (rms_norm, scaled_dot_product_attention), it is
// composed from older operators, and the native one is used when the dispatcher has it.
import { native } from './native.js';
import { hasOp, op } from './ops.js';
import { scope } from './scope.js';
import { Tensor, wrap, type Scalar } from './tensor.js';
import { dtypeCode, type DType } from './dtype.js';

const F = {
  linear: op('aten::linear'), embedding: op('aten::embedding'), layerNorm: op('aten::layer_norm'),
  softmax: op('aten::softmax', 'int'), logSoftmax: op('aten::log_softmax', 'int'), dropout: op('aten::dropout'),
  conv2d: op('aten::conv2d'), convTranspose2d: op('aten::conv_transpose2d', 'input'),
  upNearest: op('aten::upsample_nearest2d', 'vec'), upBilinear: op('aten::upsample_bilinear2d', 'vec'),
  avgPool2d: op('aten::avg_pool2d'), maxPool2d: op('aten::max_pool2d'), adaptiveAvgPool2d: op('aten::adaptive_avg_pool2d'),
  crossEntropy: op('aten::cross_entropy_loss'), nllLoss: op('aten::nll_loss'), mse: op('aten::mse_loss'),
  pad: op('aten::constant_pad_nd'), logsigmoid: op('aten::log_sigmoid'),
} as const;

const nativeRmsNorm = hasOp('aten::rms_norm', '') ? op('aten::rms_norm') : undefined;
const nativeSdpa = hasOp('aten::scaled_dot_product_attention', '') ? op('aten::scaled_dot_product_attention') : undefined;

export type Reduction = 'mean' | 'sum' | 'none';
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };
function reduction(r: Reduction | undefined): number {
  const code = REDUCTION[r ?? 'mean'];
  if (code === undefined) throw new TypeError(`reduction must be 'mean', 'sum' or 'none', got '${String(r)}'`);
  return code;
}

/** x @ weightᵀ + bias; weight is (out, in) as in PyTorch. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  return wrap(native.call(F.linear, x.handle, weight.handle, bias?.handle ?? null));
}

export function embedding(indices: Tensor, weight: Tensor, paddingIdx = -1): Tensor {
  return wrap(native.call(F.embedding, weight.handle, indices.handle, paddingIdx));
}

export function layerNorm(x: Tensor, normalizedShape: readonly number[], weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  return wrap(native.call(F.layerNorm, x.handle, normalizedShape as number[], weight?.handle ?? null, bias?.handle ?? null, eps));
}

/** RMSNorm over the last dims: x / sqrt(mean(x²) + eps) * weight. */
export function rmsNorm(x: Tensor, normalizedShape: readonly number[], weight?: Tensor, eps = 1e-6): Tensor {
  if (nativeRmsNorm !== undefined) return wrap(native.call(nativeRmsNorm, x.handle, normalizedShape as number[], weight?.handle ?? null, eps));
  return scope(() => {
    const dims = normalizedShape.map((_, i) => -1 - i);
    const normed = x.mul(x.square().mean(dims, { keepdim: true }).add(eps).rsqrt());
    return weight ? normed.mul(weight) : normed;
  });
}

export function softmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return wrap(native.call(F.softmax, x.handle, dim, dtype ? dtypeCode(dtype) : undefined));
}
export function logSoftmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return wrap(native.call(F.logSoftmax, x.handle, dim, dtype ? dtypeCode(dtype) : undefined));
}
export function logSigmoid(x: Tensor): Tensor { return wrap(native.call(F.logsigmoid, x.handle)); }
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor { return x.gelu(approximate); }
export function silu(x: Tensor): Tensor { return x.silu(); }
export function relu(x: Tensor): Tensor { return x.relu(); }
export function sigmoid(x: Tensor): Tensor { return x.sigmoid(); }
export function tanh(x: Tensor): Tensor { return x.tanh(); }

/** Zeroes elements with probability p and scales the rest by 1/(1-p), when `training`. */
export function dropout(x: Tensor, p: number, training = true): Tensor {
  if (p < 0 || p > 1) throw new RangeError(`dropout probability must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x.alias();
  return wrap(native.call(F.dropout, x.handle, p, training));
}

export interface Conv2dOptions { stride?: number | number[]; padding?: number | number[]; dilation?: number | number[]; groups?: number }

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor, o: Conv2dOptions = {}): Tensor {
  return wrap(native.call(F.conv2d, x.handle, weight.handle, bias?.handle ?? null, o.stride ?? 1, o.padding ?? 0, o.dilation ?? 1, o.groups ?? 1));
}

export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor, o: Conv2dOptions & { outputPadding?: number | number[] } = {}): Tensor {
  return wrap(native.call(F.convTranspose2d, x.handle, weight.handle, bias?.handle ?? null, o.stride ?? 1, o.padding ?? 0,
    o.outputPadding ?? 0, o.groups ?? 1, o.dilation ?? 1));
}

export interface InterpolateOptions { size?: [number, number]; scaleFactor?: number | [number, number]; mode?: 'nearest' | 'bilinear'; alignCorners?: boolean }

/** Resizes (N, C, H, W) images to `size` or by `scaleFactor`. */
export function interpolate(x: Tensor, o: InterpolateOptions): Tensor {
  if (!o.size === !o.scaleFactor) throw new TypeError('interpolate: give exactly one of size and scaleFactor');
  const scales = o.scaleFactor === undefined ? null : Array.isArray(o.scaleFactor) ? o.scaleFactor : [o.scaleFactor, o.scaleFactor];
  const size = o.size ?? null;
  if ((o.mode ?? 'nearest') === 'nearest') return wrap(native.call(F.upNearest, x.handle, size, scales));
  return wrap(native.call(F.upBilinear, x.handle, size, o.alignCorners ?? false, scales));
}

export function avgPool2d(x: Tensor, kernelSize: number | number[], stride?: number | number[], padding: number | number[] = 0): Tensor {
  return wrap(native.call(F.avgPool2d, x.handle, kernelSize, stride ?? [], padding));
}
export function maxPool2d(x: Tensor, kernelSize: number | number[], stride?: number | number[], padding: number | number[] = 0): Tensor {
  return wrap(native.call(F.maxPool2d, x.handle, kernelSize, stride ?? [], padding));
}
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | [number, number]): Tensor {
  return wrap(native.call(F.adaptiveAvgPool2d, x.handle, typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize));
}

/** Pads the last dims: `pad` is [left, right, top, bottom, …] as in PyTorch. */
export function pad(x: Tensor, padding: readonly number[], value: Scalar = 0): Tensor {
  return wrap(native.call(F.pad, x.handle, padding as number[], value));
}

export interface CrossEntropyOptions { ignoreIndex?: number; labelSmoothing?: number; reduction?: Reduction; weight?: Tensor }

/** Cross-entropy of logits (N, C) [or (N, C, d…)] against class indices (N) [or (N, d…)]. */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return wrap(native.call(F.crossEntropy, logits.handle, target.handle, o.weight?.handle ?? null, reduction(o.reduction),
    o.ignoreIndex ?? -100, o.labelSmoothing ?? 0));
}

export function nllLoss(logProbs: Tensor, target: Tensor, o: { ignoreIndex?: number; reduction?: Reduction; weight?: Tensor } = {}): Tensor {
  return wrap(native.call(F.nllLoss, logProbs.handle, target.handle, o.weight?.handle ?? null, reduction(o.reduction), o.ignoreIndex ?? -100));
}

export function mseLoss(input: Tensor, target: Tensor, red?: Reduction): Tensor {
  return wrap(native.call(F.mse, input.handle, target.handle, reduction(red)));
}

export interface AttentionOptions {
  /** Boolean (true = may attend) or additive float mask, broadcastable to (…, Tq, Tk). */
  mask?: Tensor;
  isCausal?: boolean;
  dropoutP?: number;
  /** Defaults to 1/sqrt(head dim). */
  scale?: number;
}

/** softmax(q kᵀ · scale + mask) v over (…, T, D) tensors. */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): Tensor {
  if (o.mask && o.isCausal) throw new TypeError('scaledDotProductAttention: give mask or isCausal, not both');
  const d = q.shape[q.ndim - 1];
  const scale = o.scale ?? 1 / Math.sqrt(d);
  if (nativeSdpa !== undefined && q.device !== 'meta') {
    return wrap(native.call(nativeSdpa, q.handle, k.handle, v.handle, o.mask?.handle ?? null, o.dropoutP ?? 0, o.isCausal ?? false, scale));
  }
  // Each intermediate is released as soon as the next one exists (as Python's refcounting does):
  // autograd keeps what backward needs, and the allocator gets the (B, H, Tq, Tk) buffers back while
  // they are still in cache. Holding them to the end of a scope measurably slows bf16 training.
  return scope(() => {
    const step = (prev: Tensor, next: Tensor): Tensor => { prev.dispose(); return next; };
    // One query against the cache (a decode step): q·kᵀ as a broadcast product summed over the head
    // dimension, and the same for p·v. libtorch 1.13's CPU bmm runs a batch of products this small as a
    // loop of one GEMM call per (row, head) with three select()s each (5,600 calls in a batch-16
    // describe), where these are a few vectorised kernels over the whole cache.
    const oneQuery = q.shape[q.ndim - 2] === 1 && q.device === 'cpu';
    const kT = oneQuery ? undefined : k.transpose(-2, -1);
    let scores = kT !== undefined ? step(kT, q.matmul(kT)) : scope(() => q.mul(k).sum(-1).unsqueeze(-2));  // (…, 1, Tk)
    scores = step(scores, scores.mul(scale));  // (…, Tq, Tk)
    let mask = o.mask;
    if (o.isCausal) {
      const tq = q.shape[q.ndim - 2], tk = k.shape[k.ndim - 2];
      mask = new Tensor(native.call(op('aten::ones'), [tq, tk], dtypeCode('bool'), undefined, q.device) as number).tril(tk - tq);
    }
    if (mask) {
      if (mask.dtype === 'bool') {
        const hidden = mask.logicalNot();
        scores = step(scores, scores.maskedFill(hidden, -Infinity));
        hidden.dispose();
      } else {
        scores = step(scores, scores.add(mask));
      }
    }
    let probs = step(scores, softmax(scores, -1));
    if (o.dropoutP) probs = step(probs, dropout(probs, o.dropoutP, true));
    return oneQuery ? scope(() => probs.transpose(-2, -1).mul(v).sum(-2, { keepdim: true })) : probs.matmul(v);
  });
}
