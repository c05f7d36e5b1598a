// Parameter-free layers, as modules for use in Sequential stacks.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module } from './module.js';

/** Anything with a forward of one tensor. */
export interface Layer { forward(x: Tensor): Tensor }

export class GELU extends Module implements Layer {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') { super(); }
  forward(x: Tensor): Tensor { return x.gelu(this.approximate); }
}
export class SiLU extends Module implements Layer { forward(x: Tensor): Tensor { return x.silu(); } }
export class ReLU extends Module implements Layer { forward(x: Tensor): Tensor { return x.relu(); } }
export class Tanh extends Module implements Layer { forward(x: Tensor): Tensor { return x.tanh(); } }
export class Sigmoid extends Module implements Layer { forward(x: Tensor): Tensor { return x.sigmoid(); } }

/** Zeroes activations with probability p while training. */
export class Dropout extends Module implements Layer {
  constructor(readonly p: number) { super(); }
  forward(x: Tensor): Tensor { return torch.nn.dropout(x, this.p, this.training); }
}

/** Layers applied in order, registered as `0`, `1`, … (PyTorch's Sequential). */
export class Sequential extends Module implements Layer {
  readonly layers: (Module & Layer)[];
  constructor(...layers: (Module & Layer)[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.module(String(i), l));
  }
  forward(x: Tensor): Tensor {
    return torch.scope(() => this.layers.reduce((h, l) => l.forward(h), x));
  }
}
