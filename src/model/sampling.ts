// Logits processors for generation: what the next token may be (constraints), and how a token is
// drawn from what remains (temperature, top-k, top-p). Each takes and returns (N, V) float logits,
// with -Infinity where a token is ruled out, so they compose in any order and softmax stays exact.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { M6Config } from './config.js';
import type { TargetKind } from './m6.js';

/**
 * The tokens a target of `kind` may never emit, as a (V) bool tensor (true = banned):
 * an image target only image codes (so everything else is banned, stop tokens included: an image
 * ends by length, after exactly grid² codes); a text target never an image code, nor `suppress`
 * (padding and BOS: the model sees them as inputs but should never write them).
 */
export function bannedTokens(cfg: M6Config, kind: TargetKind, suppress: readonly number[], device: torch.Device = 'cpu'): Tensor {
  return torch.scope(() => {
    const ids = torch.arange(cfg.vocabSize, undefined, 1, { device });
    const isImageCode = ids.ge(cfg.imageCodeStart).logicalAnd(ids.lt(cfg.imageCodeStart + cfg.imageCodes));
    if (kind === 'image') return isImageCode.logicalNot();
    let banned = isImageCode;
    for (const id of suppress) if (id >= 0 && id < cfg.vocabSize) banned = banned.logicalOr(ids.eq(id));
    return banned;
  });
}

/** Rules out banned tokens: banned is (V) or (N, V) bool. */
export function applyBan(logits: Tensor, banned: Tensor): Tensor {
  return logits.maskedFill(banned, -Infinity);
}

/** Keeps the k largest logits of each row (ties at the k-th value are kept too). */
export function topKFilter(logits: Tensor, k: number): Tensor {
  const V = logits.shape[logits.ndim - 1];
  if (k >= V) return logits.alias();
  return torch.scope(() => {
    const kth = logits.topk(k, -1).values.narrow(-1, k - 1, 1);  // (N, 1)
    return logits.maskedFill(logits.lt(kth), -Infinity);
  });
}

/**
 * Nucleus sampling (Holtzman et al.): keeps the smallest set of most likely tokens whose probability
 * reaches p. A token is dropped when the tokens ranked above it already hold more than p, so the
 * most likely token always stays.
 */
export function topPFilter(logits: Tensor, p: number): Tensor {
  if (p >= 1) return logits.alias();
  return torch.scope(() => {
    const { values, indices } = logits.sort(-1, true);                 // (N, V), most likely first
    const probs = torch.nn.softmax(values, -1);
    const before = probs.cumsum(-1).sub(probs);                         // mass ranked above each token
    const dropSorted = before.gt(p);
    const drop = dropSorted.scatter(-1, indices, dropSorted);           // back to vocabulary order
    return logits.maskedFill(drop, -Infinity);
  });
}

export interface SamplingOptions {
  /** Divides the logits: < 1 sharpens, > 1 flattens. Must be > 0. */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Sample only from the nucleus holding probability p (1 or undefined = all). */
  topP?: number;
}

/** Draws one token per row of (N, V) logits after temperature, top-k and top-p; returns (N) int64. */
export function sampleNext(logits: Tensor, o: SamplingOptions): Tensor {
  return torch.scope(() => {
    let l = o.temperature !== undefined && o.temperature !== 1 ? logits.div(o.temperature) : logits;
    if (o.topK) l = topKFilter(l, o.topK);
    if (o.topP !== undefined) l = topPFilter(l, o.topP);
    return torch.nn.softmax(l, -1).multinomial(1).squeeze(-1);
  });
}

/** Just the sampling fields of a larger options record, those that are set (so defaults apply to the rest). */
export function pickSampling(o: SamplingOptions): SamplingOptions {
  return {
    ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
    ...(o.topK !== undefined ? { topK: o.topK } : {}),
    ...(o.topP !== undefined ? { topP: o.topP } : {}),
  };
}

/** Checks sampling options up front, so a typo fails before any compute. */
export function validateSampling(o: SamplingOptions): void {
  if (o.temperature !== undefined && !(o.temperature > 0)) throw new RangeError(`temperature must be > 0 (got ${o.temperature}); use greedy decoding for temperature 0`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) throw new RangeError(`topK must be a non-negative integer (got ${o.topK})`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1] (got ${o.topP})`);
}
