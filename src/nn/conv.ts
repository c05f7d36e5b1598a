// 2-D convolutions over (N, C, H, W).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, type ModuleOptions } from './module.js';
import { fans, kaimingUniform_, uniform_ } from './init.js';

export interface ConvOptions extends ModuleOptions { stride?: number; padding?: number; dilation?: number; groups?: number; bias?: boolean }

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, readonly o: ConvOptions = {}) {
    super();
    const groups = o.groups ?? 1;
    this.weight = this.param('weight', kaimingUniform_(torch.empty([outChannels, inChannels / groups, kernelSize, kernelSize], o)));
    const bound = 1 / Math.sqrt(fans(this.weight.shape)[0]);
    this.bias = o.bias === false ? undefined : this.param('bias', uniform_(torch.empty([outChannels], o), -bound, bound));
  }
  forward(x: Tensor): Tensor {
    return torch.nn.conv2d(x, this.weight, this.bias, { stride: this.o.stride, padding: this.o.padding, dilation: this.o.dilation, groups: this.o.groups });
  }
}

export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, readonly o: ConvOptions & { outputPadding?: number } = {}) {
    super();
    const groups = o.groups ?? 1;
    // Transposed conv weights are (in, out/groups, k, k); PyTorch's init uses fan_in of that layout.
    this.weight = this.param('weight', kaimingUniform_(torch.empty([inChannels, outChannels / groups, kernelSize, kernelSize], o)));
    const bound = 1 / Math.sqrt(fans(this.weight.shape)[0]);
    this.bias = o.bias === false ? undefined : this.param('bias', uniform_(torch.empty([outChannels], o), -bound, bound));
  }
  forward(x: Tensor): Tensor {
    return torch.nn.convTranspose2d(x, this.weight, this.bias, {
      stride: this.o.stride, padding: this.o.padding, dilation: this.o.dilation, groups: this.o.groups, outputPadding: this.o.outputPadding,
    });
  }
}
