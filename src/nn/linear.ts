// Linear and Embedding layers.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, type ModuleOptions } from './module.js';
import { kaimingUniform_, normal_, uniform_ } from './init.js';

/** y = x Wᵀ + b, W of shape (out, in) as in PyTorch. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: ModuleOptions & { bias?: boolean } = {}) {
    super();
    this.weight = this.param('weight', kaimingUniform_(torch.empty([outFeatures, inFeatures], opts)));
    const bound = 1 / Math.sqrt(inFeatures);
    this.bias = opts.bias === false ? undefined : this.param('bias', uniform_(torch.empty([outFeatures], opts), -bound, bound));
  }
  forward(x: Tensor): Tensor { return torch.nn.linear(x, this.weight, this.bias); }
}

/** A lookup table of `num` vectors of size `dim`. */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number, opts: ModuleOptions & { paddingIdx?: number; std?: number } = {}) {
    super();
    this.weight = this.param('weight', normal_(torch.empty([num, dim], opts), opts.std ?? 1));
    this.paddingIdx = opts.paddingIdx ?? -1;
  }
  readonly paddingIdx: number;
  forward(indices: Tensor): Tensor { return torch.nn.embedding(indices, this.weight, this.paddingIdx); }
}
