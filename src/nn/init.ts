// Weight initialisation, in place and without autograd (torch.nn.init).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export function normal_(t: Tensor, std = 0.02, mean = 0): Tensor { return torch.noGrad(() => t.normal_(mean, std)); }
export function zeros_(t: Tensor): Tensor { return torch.noGrad(() => t.zero_()); }
export function ones_(t: Tensor): Tensor { return torch.noGrad(() => t.fill_(1)); }
export function uniform_(t: Tensor, a: number, b: number): Tensor { return torch.noGrad(() => t.uniform_(a, b)); }

/** fan_in, fan_out of a weight laid out (out, in, *kernel) as in PyTorch. */
export function fans(shape: readonly number[]): [number, number] {
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [(shape[1] ?? 1) * receptive, shape[0] * receptive];
}

/** PyTorch's default for Linear/Conv weights: kaiming_uniform(a=√5) = U(−1/√fan_in, 1/√fan_in). */
export function kaimingUniform_(t: Tensor): Tensor {
  const bound = 1 / Math.sqrt(fans(t.shape)[0]);
  return uniform_(t, -bound, bound);
}

export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const [fi, fo] = fans(t.shape);
  const bound = gain * Math.sqrt(6 / (fi + fo));
  return uniform_(t, -bound, bound);
}
