// Multi-tensor ("foreach") operators: one call updates every tensor of a list, so an optimizer step
// over hundreds of parameters costs a handful of boundary crossings, not thousands.
import { native } from '../torch/native.js';
import { op } from '../torch/ops.js';
import { wrapList, type Tensor } from '../torch/tensor.js';

const O = {
  mul_: op('aten::_foreach_mul_', 'Scalar'),
  addList_: op('aten::_foreach_add_', 'List'), add_: op('aten::_foreach_add_', 'Scalar'),
  addcmul_: op('aten::_foreach_addcmul_', 'Scalar'), addcdiv_: op('aten::_foreach_addcdiv_', 'Scalar'),
  addcdivList_: op('aten::_foreach_addcdiv_', 'ScalarList'),
  sqrt: op('aten::_foreach_sqrt'), norm: op('aten::_foreach_norm', 'Scalar'),
} as const;

const h = (ts: readonly Tensor[]) => ts.map((t) => t.handle);

export function foreachMul_(ts: readonly Tensor[], s: number): void { native.call(O.mul_, h(ts), s); }
export function foreachAdd_(ts: readonly Tensor[], s: number): void { native.call(O.add_, h(ts), s); }
/** ts[i] += alpha * others[i] */
export function foreachAddList_(ts: readonly Tensor[], others: readonly Tensor[], alpha = 1): void { native.call(O.addList_, h(ts), h(others), alpha); }
/** ts[i] += value * a[i] * b[i] */
export function foreachAddcmul_(ts: readonly Tensor[], a: readonly Tensor[], b: readonly Tensor[], value = 1): void {
  native.call(O.addcmul_, h(ts), h(a), h(b), value);
}
/** ts[i] += value * a[i] / b[i] */
export function foreachAddcdiv_(ts: readonly Tensor[], a: readonly Tensor[], b: readonly Tensor[], value: number | number[] = 1): void {
  if (Array.isArray(value)) native.call(O.addcdivList_, h(ts), h(a), h(b), value);
  else native.call(O.addcdiv_, h(ts), h(a), h(b), value);
}
export function foreachSqrt(ts: readonly Tensor[]): Tensor[] { return wrapList(native.call(O.sqrt, h(ts))); }
export function foreachNorm(ts: readonly Tensor[], p = 2): Tensor[] { return wrapList(native.call(O.norm, h(ts), p)); }
