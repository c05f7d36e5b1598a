// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_).
import { noGrad } from '../torch/autograd.js';
import { scope } from '../torch/scope.js';
import { stack, tensor, type Tensor } from '../torch/tensor.js';
import { foreachNorm } from './foreach.js';

/**
 * Scales all gradients so their joint p-norm is at most `maxNorm`; returns the norm before clipping
 * (a number: reading it syncs, which a training loop wants anyway for logging and NaN checks).
 * `knownNorm`: the norm when it spans more than these gradients (expert parallel: other ranks hold
 * the rest of the experts' gradients).
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number, normType = 2, knownNorm?: number): number {
  return noGrad(() => scope(() => {
    const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== undefined);
    if (!grads.length) return 0;
    const totalNorm = knownNorm ?? (() => {
      const norms = foreachNorm(grads, normType);
      return (normType === Infinity ? stack(norms).max() : stack(norms).norm(normType)).item();
    })();
    const coef = maxNorm / (totalNorm + 1e-6);
    if (coef < 1) {
      const c = tensor(coef);   // 0-d: a [1]-shaped factor cannot scale a 0-d gradient in place
      for (const g of grads) g.mul_(c.to({ device: g.device, dtype: g.dtype }));
    }
    return totalNorm;
  }));
}
