// Gradient checking by central finite differences (torch.autograd.gradcheck): compares the
// gradient libtorch's autograd computes with (f(x+h) − f(x−h)) / 2h, elementwise, in float64.
import { noGrad } from './autograd.js';
import { scope } from './scope.js';
import { randnLike, type Tensor } from './tensor.js';

export interface GradcheckResult { ok: boolean; maxError: number; where: string }

/**
 * `fn` maps float64 inputs (which must require grad) to one tensor. Each output element is weighted
 * by a fixed random tensor, so every output element's gradient is checked at once.
 */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], o: { eps?: number; atol?: number; rtol?: number } = {}): GradcheckResult {
  const eps = o.eps ?? 1e-6, atol = o.atol ?? 1e-5, rtol = o.rtol ?? 1e-3;
  for (const x of inputs) {
    if (x.dtype !== 'float64') throw new TypeError(`gradcheck needs float64 inputs, got ${x}`);
    if (!x.requiresGrad) throw new TypeError(`gradcheck inputs must require grad (${x})`);
  }
  return scope(() => {
    const out0 = fn(...inputs);
    const weight = noGrad(() => randnLike(out0));
    const objective = (): number => scope(() => fn(...inputs).mul(weight).sum().item());
    for (const x of inputs) x.grad = undefined;
    out0.mul(weight).sum().backward();
    let maxError = 0, where = '';
    let ok = true;
    // Perturb in place, all under noGrad, so autograd never sees the edits.
    noGrad(() => inputs.forEach((x, k) => {
      const analytic = x.grad ? (x.grad.toTypedArray() as Float64Array) : new Float64Array(x.numel);
      const values = x.toTypedArray() as Float64Array;
      const flat = x.view(-1);
      for (let i = 0; i < x.numel; i++) {
        flat.indexPut_([i], values[i] + eps);
        const plus = objective();
        flat.indexPut_([i], values[i] - eps);
        const minus = objective();
        flat.indexPut_([i], values[i]);
        const numeric = (plus - minus) / (2 * eps);
        const err = Math.abs(numeric - analytic[i]);
        if (err > maxError) { maxError = err; where = `input ${k}, element ${i}: autograd ${analytic[i]}, numeric ${numeric}`; }
        if (err > atol + rtol * Math.abs(numeric)) ok = false;
      }
    }));
    return { ok, maxError, where };
  });
}
