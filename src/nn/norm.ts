// Normalisation layers over the last dimension(s).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, type ModuleOptions } from './module.js';

export class LayerNorm extends Module {
  readonly weight: Tensor | undefined;
  readonly bias: Tensor | undefined;
  readonly shape: number[];
  constructor(shape: number | number[], readonly eps = 1e-5, opts: ModuleOptions & { affine?: boolean; bias?: boolean } = {}) {
    super();
    this.shape = Array.isArray(shape) ? shape : [shape];
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param('weight', torch.ones(this.shape, opts)) : undefined;
    this.bias = affine && opts.bias !== false ? this.param('bias', torch.zeros(this.shape, opts)) : undefined;
  }
  /** Normalises in the weights' precision: a bf16 input (a conv's output under autocast) is upcast
   * first, as CUDA autocast runs layer_norm in fp32 — libtorch 1.13's CPU autocast does not, and
   * refuses mixed dtypes. */
  forward(x: Tensor): Tensor {
    if (this.weight !== undefined && x.dtype !== this.weight.dtype) return torch.scope(() => torch.nn.layerNorm(x.to({ dtype: this.weight!.dtype }), this.shape, this.weight, this.bias, this.eps));
    return torch.nn.layerNorm(x, this.shape, this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  readonly shape: number[];
  constructor(shape: number | number[], readonly eps = 1e-6, opts: ModuleOptions = {}) {
    super();
    this.shape = Array.isArray(shape) ? shape : [shape];
    this.weight = this.param('weight', torch.ones(this.shape, opts));
  }
  forward(x: Tensor): Tensor { return torch.nn.rmsNorm(x, this.shape, this.weight, this.eps); }
}

// Normalising over channel groups per sample keeps the statistics independent of the batch, which
// matters when a batch is a handful of images (the VQ tokenizer's conv stacks).
/** (B, C, …) normalised over each of `groups` channel groups, then scaled and shifted per channel. */
export class GroupNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly groups: number, readonly channels: number, readonly eps = 1e-6, opts: ModuleOptions = {}) {
    super();
    if (channels % groups !== 0) throw new RangeError(`GroupNorm: ${channels} channels do not split into ${groups} groups`);
    this.weight = this.param('weight', torch.ones([channels], opts));
    this.bias = this.param('bias', torch.zeros([channels], opts));
  }
  forward(x: Tensor): Tensor {
    return torch.scope(() => {
      // Statistics in the weights' precision: under autocast x arrives in bf16/fp16, and libtorch 1.13's
      // CPU autocast leaves group_norm to fail on the mixed dtypes.
      const xf = x.dtype === this.weight.dtype ? x : x.to(this.weight.dtype);
      const y = torch.call('aten::group_norm', '', [xf, this.groups, this.weight, this.bias, this.eps, false]);
      if (!(y instanceof torch.Tensor)) throw new Error('aten::group_norm returned no tensor');
      return y;
    });
  }
}
