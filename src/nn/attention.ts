// Multi-head self-attention with additive/boolean masks and a KV cache for incremental decoding.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, type ModuleOptions } from './module.js';
import { Linear } from './linear.js';

/**
 * Keys and values of the positions decoded so far, for one attention layer: preallocated to
 * `maxLength` and filled in place, so step t costs O(t), not O(t) plus a copy of the whole cache.
 */
export class KvCache {
  private k: Tensor | undefined;
  private v: Tensor | undefined;
  length = 0;
  constructor(private capacity: number) {}

  /** Positions it holds at most. */
  get maxLength(): number {
    return this.capacity;
  }

  /** The storage, (B, H, maxLength, hd) each, of which the first `length` positions are filled. */
  get stored(): { k: Tensor; v: Tensor } | undefined {
    return this.k !== undefined && this.v !== undefined ? { k: this.k, v: this.v } : undefined;
  }

  /**
   * Takes over (B, H, capacity, hd) storage whose first `length` positions are filled, freeing its
   * own (continuous batching rebuilds the cache when rows join). The tensors become the cache's.
   */
  adopt(k: Tensor, v: Tensor, length: number): void {
    if (k.shape.join() !== v.shape.join() || k.ndim !== 4 || length > k.shape[2]) throw new RangeError(`KV cache: keys ${JSON.stringify(k.shape)} and values ${JSON.stringify(v.shape)} must be one (B, H, capacity, hd) shape holding ${length} positions`);
    this.k?.dispose();
    this.v?.dispose();
    this.k = k;
    this.v = v;
    this.capacity = k.shape[2];
    this.length = length;
  }

  /** Appends (B, H, T, hd) keys/values and returns views of everything cached, (B, H, length, hd). */
  append(k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const [B, H, T, hd] = k.shape;
    if (this.length + T > this.maxLength) throw new RangeError(`KV cache full: ${this.length} + ${T} positions exceed its ${this.maxLength}`);
    return torch.noGrad(() => {
      if (!this.k || !this.v) {
        this.k = torch.zeros([B, H, this.maxLength, hd], { dtype: k.dtype, device: k.device }).keep();
        this.v = torch.zeros([B, H, this.maxLength, hd], { dtype: v.dtype, device: v.device }).keep();
      }
      torch.scope(() => {
        this.k!.narrow(2, this.length, T).copy_(k);
        this.v!.narrow(2, this.length, T).copy_(v);
      });
      this.length += T;
      return { k: this.k.narrow(2, 0, this.length), v: this.v.narrow(2, 0, this.length) };
    });
  }

  /** Keeps only the batch rows `index` (beam search reorders hypotheses). */
  reorder(index: Tensor): void {
    torch.noGrad(() => {
      for (const key of ['k', 'v'] as const) {
        const t = this[key];
        if (!t) continue;
        const picked = t.indexSelect(0, index);
        t.setData_(picked);
        picked.dispose();
      }
    });
  }

  dispose(): void {
    this.k?.dispose();
    this.v?.dispose();
    this.k = this.v = undefined;
    this.length = 0;
  }
}

export interface AttentionCall {
  /** Boolean (true = may attend) or additive mask, broadcastable to (B, H, Tq, Tk). */
  mask?: Tensor;
  isCausal?: boolean;
  cache?: KvCache;
}

export class MultiheadAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly headDim: number;
  constructor(readonly dim: number, readonly heads: number, readonly dropout = 0, opts: ModuleOptions & { bias?: boolean } = {}) {
    super();
    if (dim % heads !== 0) throw new RangeError(`MultiheadAttention: dim ${dim} is not divisible by ${heads} heads`);
    this.headDim = dim / heads;
    this.qkv = this.module('qkv', new Linear(dim, 3 * dim, opts));
    this.proj = this.module('proj', new Linear(dim, dim, opts));
  }

  /** x: (B, T, D) → (B, T, D). */
  forward(x: Tensor, call: AttentionCall = {}): Tensor {
    return torch.scope(() => {
      const [B, T, D] = x.shape;
      const [q, k0, v0] = this.qkv.forward(x).split(D, -1).map((t) => t.view(B, T, this.heads, this.headDim).transpose(1, 2));  // (B, H, T, hd)
      const { k, v } = call.cache ? call.cache.append(k0, v0) : { k: k0, v: v0 };
      const y = torch.nn.scaledDotProductAttention(q, k, v, {
        mask: call.mask, isCausal: call.isCausal, dropoutP: this.training ? this.dropout : 0,
      });
      return this.proj.forward(y.transpose(1, 2).reshape(B, T, D));
    });
  }
}
