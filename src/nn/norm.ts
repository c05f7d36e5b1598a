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
  forward(x: Tensor): Tensor { return torch.nn.layerNorm(x, this.shape, this.weight, this.bias, this.eps); }
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
