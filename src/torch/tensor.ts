// The Tensor class: a typed, disposable handle to a libtorch tensor, with the operator methods a
// multimodal transformer needs. Every method is a thin call of one ATen operator through the
// dispatcher (autograd, autocast and devices come from libtorch); composite helpers live in
// functional.ts. Method names follow PyTorch's in camelCase; in-place variants end in `_`.
import { native, type Handle, type NativeArg, type NativeResult, type OpInfo } from './native.js';
import { op, opInfo as opInfoFor, orderArgs as orderArgsFor } from './ops.js';
import { track, release, keep as keepOwned, type Owned, type Scope } from './scope.js';
import {
  dtypeCode, dtypeFromCode, dtypeOfArray, typedArrayFromBytes, type AnyTypedArray, type DType,
} from './dtype.js';
import { parseDevice, type Device } from './device.js';

export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | Scalar;
export type Shape = readonly number[];
/** Nested JS arrays of numbers/booleans, as `torch.tensor` takes and `toArray` gives. */
export type NestedArray = number | boolean | NestedArray[];
/** What `tensor()` takes: nested arrays of numbers, booleans or bigints (int64). */
export type NestedInput = number | boolean | bigint | NestedInput[];

/** One index of `t.index(...)`: a number selects, `'a:b:c'` / `':'` / `{start,end,step}` slice, `null` adds
 * a dimension, `'...'` skips the dimensions it covers, a Tensor indexes by integers or a boolean mask. */
export type IndexSpec = number | string | null | Tensor | { start?: number; end?: number; step?: number };

// Operators, looked up once when this module loads.
const O = {
  add: op('aten::add', 'Tensor'), addS: op('aten::add', 'Scalar'),
  sub: op('aten::sub', 'Tensor'), subS: op('aten::sub', 'Scalar'), rsubS: op('aten::rsub', 'Scalar'),
  mul: op('aten::mul', 'Tensor'), mulS: op('aten::mul', 'Scalar'),
  div: op('aten::div', 'Tensor'), divS: op('aten::div', 'Scalar'), divMode: op('aten::div', 'Tensor_mode'),
  pow: op('aten::pow', 'Tensor_Tensor'), powS: op('aten::pow', 'Tensor_Scalar'),
  neg: op('aten::neg'), abs: op('aten::abs'), exp: op('aten::exp'), log: op('aten::log'), sqrt: op('aten::sqrt'),
  rsqrt: op('aten::rsqrt'), sin: op('aten::sin'), cos: op('aten::cos'), tanh: op('aten::tanh'), sigmoid: op('aten::sigmoid'),
  relu: op('aten::relu'), gelu: op('aten::gelu'), silu: op('aten::silu'), erf: op('aten::erf'), reciprocal: op('aten::reciprocal'),
  square: op('aten::square'), floor: op('aten::floor'), ceil: op('aten::ceil'), round: op('aten::round'), sign: op('aten::sign'),
  log1p: op('aten::log1p'),
  clamp: op('aten::clamp'), maximum: op('aten::maximum'), minimum: op('aten::minimum'),
  eq: op('aten::eq', 'Tensor'), eqS: op('aten::eq', 'Scalar'), ne: op('aten::ne', 'Tensor'), neS: op('aten::ne', 'Scalar'),
  lt: op('aten::lt', 'Tensor'), ltS: op('aten::lt', 'Scalar'), le: op('aten::le', 'Tensor'), leS: op('aten::le', 'Scalar'),
  gt: op('aten::gt', 'Tensor'), gtS: op('aten::gt', 'Scalar'), ge: op('aten::ge', 'Tensor'), geS: op('aten::ge', 'Scalar'),
  logicalNot: op('aten::logical_not'), logicalAnd: op('aten::logical_and'), logicalOr: op('aten::logical_or'),
  isfinite: op('aten::isfinite'), isnan: op('aten::isnan'),
  sum: op('aten::sum'), sumDim: op('aten::sum', 'dim_IntList'), mean: op('aten::mean'), meanDim: op('aten::mean', 'dim'),
  max: op('aten::max'), maxDim: op('aten::max', 'dim'), min: op('aten::min'), minDim: op('aten::min', 'dim'),
  amax: op('aten::amax'), amin: op('aten::amin'), argmax: op('aten::argmax'), argmin: op('aten::argmin'),
  logsumexp: op('aten::logsumexp'), varCorrection: op('aten::var', 'correction'), stdCorrection: op('aten::std', 'correction'),
  prod: op('aten::prod'), prodDim: op('aten::prod', 'dim_int'), all: op('aten::all'), allDim: op('aten::all', 'dim'),
  any: op('aten::any'), anyDim: op('aten::any', 'dim'), vectorNorm: op('aten::linalg_vector_norm'),
  matmul: op('aten::matmul'), mm: op('aten::mm'), bmm: op('aten::bmm'),
  maskedFillS: op('aten::masked_fill', 'Scalar'), maskedFill: op('aten::masked_fill', 'Tensor'),
  gather: op('aten::gather'), scatter: op('aten::scatter', 'src'), scatterS: op('aten::scatter', 'value'),
  scatterAdd: op('aten::scatter_add'), indexSelect: op('aten::index_select'), indexAdd: op('aten::index_add'),
  index: op('aten::index', 'Tensor'), indexPut_: op('aten::index_put_'),
  topk: op('aten::topk'), sort: op('aten::sort'), argsort: op('aten::argsort'), cumsum: op('aten::cumsum'),
  oneHot: op('aten::one_hot'), bincount: op('aten::bincount'), nonzero: op('aten::nonzero'), multinomial: op('aten::multinomial'),
  reshape: op('aten::reshape'), view: op('aten::view'), permute: op('aten::permute'), transpose: op('aten::transpose', 'int'),
  slice: op('aten::slice', 'Tensor'), select: op('aten::select', 'int'), squeeze: op('aten::squeeze'), squeezeDim: op('aten::squeeze', 'dim'),
  unsqueeze: op('aten::unsqueeze'), expand: op('aten::expand'), contiguous: op('aten::contiguous'), flatten: op('aten::flatten', 'using_ints'),
  narrow: op('aten::narrow'), repeat: op('aten::repeat'),
  repeatInterleave: op('aten::repeat_interleave', 'self_int'), repeatInterleaveT: op('aten::repeat_interleave', 'self_Tensor'), tril: op('aten::tril'), triu: op('aten::triu'),
  split: op('aten::split', 'Tensor'), unbind: op('aten::unbind', 'int'), splitSizes: op('aten::split_with_sizes'), chunk: op('aten::chunk'),
  alias: op('aten::alias'), setData: op('aten::set_data'),
  toCopy: op('aten::_to_copy'), clone: op('aten::clone'), detach: op('aten::detach'),
  copy_: op('aten::copy_'), fill_: op('aten::fill_', 'Scalar'), zero_: op('aten::zero_'),
  add_: op('aten::add_', 'Tensor'), addS_: op('aten::add_', 'Scalar'), sub_: op('aten::sub_', 'Tensor'),
  mul_: op('aten::mul_', 'Tensor'), mulS_: op('aten::mul_', 'Scalar'), div_: op('aten::div_', 'Tensor'), divS_: op('aten::div_', 'Scalar'),
  clamp_: op('aten::clamp_'), maskedFillS_: op('aten::masked_fill_', 'Scalar'), normal_: op('aten::normal_'), uniform_: op('aten::uniform_'),
  addcmul_: op('aten::addcmul_'), addcdiv_: op('aten::addcdiv_'), lerp_: op('aten::lerp_', 'Scalar'),
} as const;

function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}

export class Tensor implements Owned, Disposable {
  /** @internal */ _id: Handle;
  /** @internal */ _owner: Scope | null = null;
  /** @internal */ _finalized = false;
  private _shape: number[] | undefined = undefined;
  private _dtype: DType | undefined = undefined;

  /** @internal Use the factory functions (`tensor`, `zeros`, …); this wraps a fresh handle from the addon. */
  constructor(id: Handle) {
    this._id = id;
    track(this);
  }

  /** The addon handle. Throws once the tensor is disposed, instead of passing a dead handle to native code. */
  get handle(): Handle {
    if (this._id === 0) throw new Error('this tensor was disposed (dispose(), `using`, or the scope that made it ended); keep() it or return it from the scope to use it later');
    return this._id;
  }

  get isDisposed(): boolean { return this._id === 0; }

  dispose(): void { release(this); }
  [Symbol.dispose](): void { release(this); }

  /** Lets this tensor outlive every scope (until dispose() or garbage collection). */
  keep(): this { return keepOwned(this); }

  // ---- metadata -------------------------------------------------------------------------------
  get shape(): readonly number[] { return (this._shape ??= native.shape(this.handle)); }
  get ndim(): number { return this.shape.length; }
  get numel(): number { let n = 1; for (const s of this.shape) n *= s; return n; }
  get dtype(): DType { return (this._dtype ??= dtypeFromCode(native.dtype(this.handle))); }
  get device(): Device { return native.device(this.handle) as Device; }
  size(dim: number): number { return this.shape[normDim(dim, this.ndim)]; }
  isContiguous(): boolean { return native.isContiguous(this.handle); }
  toString(): string { return `Tensor(${native.describe(this.handle)})`; }

  // ---- read-back ------------------------------------------------------------------------------
  /** The elements, row-major, in a fresh typed array (float16/bfloat16 come back widened to Float32Array). */
  toTypedArray(): AnyTypedArray {
    const d = this.dtype;
    if (d === 'float16' || d === 'bfloat16') {
      using f = this.to('float32');
      return f.toTypedArray();
    }
    return typedArrayFromBytes(d, native.toBytes(this.handle));
  }
  /** The raw bytes of the elements, row-major (bf16/f16 as their 16-bit patterns). */
  toBytes(): Uint8Array { return new Uint8Array(native.toBytes(this.handle)); }
  /** The single element as a number (or boolean for bool tensors). */
  item(): number { return Number(native.item(this.handle)); }
  /** Nested JS arrays, as `tensor()` takes them. int64 values become numbers (exact below 2^53). */
  toArray(): NestedArray {
    const flat = this.toTypedArray();
    const isBool = this.dtype === 'bool';
    const get = (i: number): number | boolean => {
      const v = flat[i];
      return isBool ? v !== 0 : Number(v);
    };
    const shape = this.shape;
    if (shape.length === 0) return get(0);
    let i = 0;
    const build = (d: number): NestedArray[] => {
      const out: NestedArray[] = [];
      for (let k = 0; k < shape[d]; k++) out.push(d === shape.length - 1 ? get(i++) : build(d + 1));
      return out;
    };
    return build(0);
  }

  // ---- autograd -------------------------------------------------------------------------------
  get requiresGrad(): boolean { return native.requiresGrad(this.handle); }
  set requiresGrad(on: boolean) { native.setRequiresGrad(this.handle, on); }
  requiresGrad_(on = true): this { native.setRequiresGrad(this.handle, on); return this; }
  get isLeaf(): boolean { return native.isLeaf(this.handle); }
  /** The accumulated gradient (a new handle on each read; dispose it or read it inside a scope), or undefined. */
  get grad(): Tensor | undefined {
    const g = native.grad(this.handle);
    return g === undefined ? undefined : new Tensor(g);
  }
  set grad(g: Tensor | undefined) { native.setGrad(this.handle, g ? g.handle : null); }
  retainGrad(): this { native.retainGrad(this.handle); return this; }
  /** Accumulates d(this)/d(leaf) into every leaf's `.grad`. A non-scalar tensor needs `gradient`. */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward([this.handle], [gradient ? gradient.handle : null], opts.retainGraph, opts.createGraph ?? false);
  }
  detach(): Tensor { return wrap(native.call(O.detach, this.handle)); }

  // ---- conversion -----------------------------------------------------------------------------
  /** A copy on another device and/or dtype; returns a new handle to the same data when nothing changes. */
  to(target: DType | Device | { dtype?: DType; device?: Device; copy?: boolean }): Tensor {
    const o = typeof target === 'string' ? (isDeviceString(target) ? { device: target as Device } : { dtype: target as DType }) : target;
    const dtype = o.dtype ?? this.dtype;
    const device = o.device ? parseDevice(o.device) : undefined;
    const sameDevice = !device || sameDeviceAs(device, this.device);
    if (!o.copy && dtype === this.dtype && sameDevice) return this.alias();
    return wrap(native.call(O.toCopy, this.handle, dtypeCode(dtype), undefined, device));
  }
  cpu(): Tensor { return this.to({ device: 'cpu' }); }
  cuda(index = 0): Tensor { return this.to({ device: `cuda:${index}` }); }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  half(): Tensor { return this.to('float16'); }
  bfloat16(): Tensor { return this.to('bfloat16'); }
  long(): Tensor { return this.to('int64'); }
  int(): Tensor { return this.to('int32'); }
  bool(): Tensor { return this.to('bool'); }
  clone(): Tensor { return wrap(native.call(O.clone, this.handle)); }
  contiguous(): Tensor { return wrap(native.call(O.contiguous, this.handle)); }
  /** A second handle to the same tensor (shares data and autograd history). */
  alias(): Tensor { return wrap(native.call(O.alias, this.handle)); }

  // ---- views and reshaping --------------------------------------------------------------------
  reshape(...shape: number[] | [Shape]): Tensor { return wrap(native.call(O.reshape, this.handle, flatShape(shape))); }
  view(...shape: number[] | [Shape]): Tensor { return wrap(native.call(O.view, this.handle, flatShape(shape))); }
  permute(...dims: number[] | [Shape]): Tensor { return wrap(native.call(O.permute, this.handle, flatShape(dims))); }
  transpose(dim0: number, dim1: number): Tensor { return wrap(native.call(O.transpose, this.handle, dim0, dim1)); }
  /** The transpose of a matrix (the last two dims of a batch). */
  get T(): Tensor { return this.transpose(-2, -1); }
  squeeze(dim?: number): Tensor {
    return wrap(dim === undefined ? native.call(O.squeeze, this.handle) : native.call(O.squeezeDim, this.handle, dim));
  }
  unsqueeze(dim: number): Tensor { return wrap(native.call(O.unsqueeze, this.handle, dim)); }
  expand(...shape: number[] | [Shape]): Tensor { return wrap(native.call(O.expand, this.handle, flatShape(shape))); }
  expandAs(other: Tensor): Tensor { return this.expand(other.shape); }
  flatten(startDim = 0, endDim = -1): Tensor { return wrap(native.call(O.flatten, this.handle, startDim, endDim)); }
  narrow(dim: number, start: number, length: number): Tensor { return wrap(native.call(O.narrow, this.handle, dim, start, length)); }
  select(dim: number, index: number): Tensor { return wrap(native.call(O.select, this.handle, dim, index)); }
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return wrap(native.call(O.slice, this.handle, dim, start ?? null, end ?? null, step));
  }
  repeat(...repeats: number[] | [Shape]): Tensor { return wrap(native.call(O.repeat, this.handle, flatShape(repeats))); }
  /** Repeats each element `repeats` times along `dim` (flattened when no dim): [a, b] → [a, a, b, b]. */
  repeatInterleave(repeats: number | Tensor, dim?: number): Tensor {
    return wrap(typeof repeats === 'number'
      ? native.call(O.repeatInterleave, this.handle, repeats, dim ?? null)
      : native.call(O.repeatInterleaveT, this.handle, repeats.handle, dim ?? null));
  }
  tril(diagonal = 0): Tensor { return wrap(native.call(O.tril, this.handle, diagonal)); }
  triu(diagonal = 0): Tensor { return wrap(native.call(O.triu, this.handle, diagonal)); }
  /** Splits into pieces of `size` along `dim` (or of the given sizes). */
  split(size: number | number[], dim = 0): Tensor[] {
    return wrapList(Array.isArray(size) ? native.call(O.splitSizes, this.handle, size, dim) : native.call(O.split, this.handle, size, dim));
  }
  chunk(chunks: number, dim = 0): Tensor[] { return wrapList(native.call(O.chunk, this.handle, chunks, dim)); }
  /** The slices along `dim`, as a list. Prefer it to select() in a loop when all slices take part in a
   * graph: its backward stacks the slices' gradients once, where each select() would allocate a
   * zero tensor of the whole input. */
  unbind(dim = 0): Tensor[] { return wrapList(native.call(O.unbind, this.handle, dim)); }

  /** NumPy-style indexing: `t.index(0, '1:3', null, '...', idx)`. Basic indices give views. */
  index(...specs: IndexSpec[]): Tensor {
    const { view, advanced } = this.basicIndex(specs);
    if (!advanced) return view;
    try {
      return wrap(native.call(O.index, view.handle, advanced.map((t) => (t ? t.handle : null))));
    } finally {
      view.dispose();
    }
  }

  /** Writes `value` into `t.index(...specs)` in place (`t[specs] = value`). */
  indexPut_(specs: IndexSpec[], value: TensorOrScalar): this {
    const { view, advanced } = this.basicIndex(specs);
    try {
      if (advanced) {
        const v = isTensor(value) ? value : full([], value, { dtype: this.dtype, device: this.device });
        try {
          native.call(O.indexPut_, view.handle, advanced.map((t) => (t ? t.handle : null)), v.handle, false);
        } finally {
          if (v !== value) v.dispose();
        }
      } else if (isTensor(value)) {
        native.call(O.copy_, view.handle, value.handle);
      } else {
        native.call(O.fill_, view.handle, value);
      }
    } finally {
      view.dispose();
    }
    return this;
  }

  private basicIndex(specs: IndexSpec[]): { view: Tensor; advanced: (Tensor | null)[] | undefined } {
    const consumed = specs.filter((s) => s !== null && s !== '...').length;
    if (specs.filter((s) => s === '...').length > 1) throw new RangeError("index: at most one '...'");
    if (consumed > this.ndim) throw new RangeError(`index: ${consumed} indices for a tensor of ${this.ndim} dimensions (${this})`);
    let view = this.alias();
    const advanced: (Tensor | null)[] = [];
    let hasAdvanced = false;
    let dim = 0;
    const replace = (next: Tensor) => { view.dispose(); view = next; };
    try {
      for (const s of specs) {
        if (s === null) { replace(view.unsqueeze(dim)); advanced.push(null); dim++; }
        else if (s === '...') { const skip = this.ndim - consumed; for (let k = 0; k < skip; k++) advanced.push(null); dim += skip; }
        else if (typeof s === 'number') {
          const n = view.shape[dim];
          if (s >= n || s < -n) throw new RangeError(`index ${s} is out of range for dimension ${dim} of size ${n} (${this})`);
          replace(view.select(dim, s));
        } else if (isTensor(s)) {
          advanced.push(s); hasAdvanced = true;
          dim += s.dtype === 'bool' || s.dtype === 'uint8' ? s.ndim : 1;
        } else {
          const { start, end, step } = typeof s === 'string' ? parseSlice(s) : s;
          if (start !== undefined || end !== undefined || (step ?? 1) !== 1) replace(view.slice(dim, start, end, step ?? 1));
          advanced.push(null); dim++;
        }
      }
    } catch (e) {
      view.dispose();
      throw e;
    }
    if (!hasAdvanced) return { view, advanced: undefined };
    while (advanced.length && advanced[advanced.length - 1] === null) advanced.pop();
    return { view, advanced };
  }

  // ---- arithmetic (broadcasting; a number is a Scalar of the tensor's kind) ---------------------
  add(other: TensorOrScalar, alpha?: number): Tensor {
    if (alpha === undefined) return binary(this, other, O.add, O.addS);
    return wrap(isTensor(other) ? native.call(O.add, this.handle, other.handle, alpha) : native.call(O.addS, this.handle, other, alpha));
  }
  sub(other: TensorOrScalar, alpha?: number): Tensor {
    if (alpha === undefined) return binary(this, other, O.sub, O.subS);
    return wrap(isTensor(other) ? native.call(O.sub, this.handle, other.handle, alpha) : native.call(O.subS, this.handle, other, alpha));
  }
  /** `other - this` */
  rsub(other: Scalar): Tensor { return wrap(native.call(O.rsubS, this.handle, other)); }
  mul(other: TensorOrScalar): Tensor { return binary(this, other, O.mul, O.mulS); }
  /** True division; `roundingMode` 'trunc' or 'floor' for integer-style division. */
  div(other: TensorOrScalar, roundingMode?: 'trunc' | 'floor'): Tensor {
    if (roundingMode) {
      const o = isTensor(other) ? other : full([], other, { dtype: this.dtype, device: this.device });
      try { return wrap(native.call(O.divMode, this.handle, o.handle, roundingMode)); } finally { if (o !== other) o.dispose(); }
    }
    return binary(this, other, O.div, O.divS);
  }
  pow(exponent: TensorOrScalar): Tensor { return binary(this, exponent, O.pow, O.powS); }
  neg(): Tensor { return unary(this, O.neg); }
  abs(): Tensor { return unary(this, O.abs); }
  exp(): Tensor { return unary(this, O.exp); }
  log(): Tensor { return unary(this, O.log); }
  log1p(): Tensor { return unary(this, O.log1p); }
  sqrt(): Tensor { return unary(this, O.sqrt); }
  rsqrt(): Tensor { return unary(this, O.rsqrt); }
  sin(): Tensor { return unary(this, O.sin); }
  cos(): Tensor { return unary(this, O.cos); }
  tanh(): Tensor { return unary(this, O.tanh); }
  sigmoid(): Tensor { return unary(this, O.sigmoid); }
  relu(): Tensor { return unary(this, O.relu); }
  /** GELU; `approximate: 'tanh'` for the GPT-2 form. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    if (approximate === 'none' && GELU_NEEDS_DENSE_GRAD && this.requiresGrad && native.gradEnabled()) return geluDenseGrad(this);
    return wrap(native.call(O.gelu, this.handle, approximate));
  }
  silu(): Tensor { return unary(this, O.silu); }
  erf(): Tensor { return unary(this, O.erf); }
  reciprocal(): Tensor { return unary(this, O.reciprocal); }
  square(): Tensor { return unary(this, O.square); }
  floor(): Tensor { return unary(this, O.floor); }
  ceil(): Tensor { return unary(this, O.ceil); }
  round(): Tensor { return unary(this, O.round); }
  sign(): Tensor { return unary(this, O.sign); }
  clamp(min?: number, max?: number): Tensor { return wrap(native.call(O.clamp, this.handle, min ?? null, max ?? null)); }
  maximum(other: Tensor): Tensor { return wrap(native.call(O.maximum, this.handle, other.handle)); }
  minimum(other: Tensor): Tensor { return wrap(native.call(O.minimum, this.handle, other.handle)); }

  // ---- comparisons and logic (bool results) ---------------------------------------------------
  eq(other: TensorOrScalar): Tensor { return binary(this, other, O.eq, O.eqS); }
  ne(other: TensorOrScalar): Tensor { return binary(this, other, O.ne, O.neS); }
  lt(other: TensorOrScalar): Tensor { return binary(this, other, O.lt, O.ltS); }
  le(other: TensorOrScalar): Tensor { return binary(this, other, O.le, O.leS); }
  gt(other: TensorOrScalar): Tensor { return binary(this, other, O.gt, O.gtS); }
  ge(other: TensorOrScalar): Tensor { return binary(this, other, O.ge, O.geS); }
  logicalNot(): Tensor { return unary(this, O.logicalNot); }
  logicalAnd(other: Tensor): Tensor { return wrap(native.call(O.logicalAnd, this.handle, other.handle)); }
  logicalOr(other: Tensor): Tensor { return wrap(native.call(O.logicalOr, this.handle, other.handle)); }
  isfinite(): Tensor { return unary(this, O.isfinite); }
  isnan(): Tensor { return unary(this, O.isnan); }

  // ---- reductions -----------------------------------------------------------------------------
  sum(dim?: number | number[], opts: ReduceOpts = {}): Tensor {
    const dtype = opts.dtype ? dtypeCode(opts.dtype) : undefined;
    return wrap(dim === undefined ? native.call(O.sum, this.handle, dtype) : native.call(O.sumDim, this.handle, dim, opts.keepdim ?? false, dtype));
  }
  mean(dim?: number | number[], opts: ReduceOpts = {}): Tensor {
    const dtype = opts.dtype ? dtypeCode(opts.dtype) : undefined;
    return wrap(dim === undefined ? native.call(O.mean, this.handle, dtype) : native.call(O.meanDim, this.handle, dim, opts.keepdim ?? false, dtype));
  }
  /** The largest element; with `dim`, the maxima and where they are along it. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  max(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return wrap(native.call(O.max, this.handle));
    const [values, indices] = wrapList(native.call(O.maxDim, this.handle, dim, keepdim));
    return { values, indices };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  min(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return wrap(native.call(O.min, this.handle));
    const [values, indices] = wrapList(native.call(O.minDim, this.handle, dim, keepdim));
    return { values, indices };
  }
  amax(dim: number | number[], keepdim = false): Tensor { return wrap(native.call(O.amax, this.handle, dim, keepdim)); }
  amin(dim: number | number[], keepdim = false): Tensor { return wrap(native.call(O.amin, this.handle, dim, keepdim)); }
  argmax(dim?: number, keepdim = false): Tensor { return wrap(native.call(O.argmax, this.handle, dim ?? null, keepdim)); }
  argmin(dim?: number, keepdim = false): Tensor { return wrap(native.call(O.argmin, this.handle, dim ?? null, keepdim)); }
  logsumexp(dim: number | number[], keepdim = false): Tensor { return wrap(native.call(O.logsumexp, this.handle, dim, keepdim)); }
  /** Variance; `correction` 1 (default) is the unbiased estimate, 0 the population variance. */
  var(dim?: number | number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return wrap(native.call(O.varCorrection, this.handle, dim ?? null, opts.correction ?? 1, opts.keepdim ?? false));
  }
  std(dim?: number | number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return wrap(native.call(O.stdCorrection, this.handle, dim ?? null, opts.correction ?? 1, opts.keepdim ?? false));
  }
  prod(dim?: number, keepdim = false): Tensor {
    return wrap(dim === undefined ? native.call(O.prod, this.handle) : native.call(O.prodDim, this.handle, dim, keepdim));
  }
  all(dim?: number, keepdim = false): Tensor {
    return wrap(dim === undefined ? native.call(O.all, this.handle) : native.call(O.allDim, this.handle, dim, keepdim));
  }
  any(dim?: number, keepdim = false): Tensor {
    return wrap(dim === undefined ? native.call(O.any, this.handle) : native.call(O.anyDim, this.handle, dim, keepdim));
  }
  /** The p-norm over all elements or over `dim`. */
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return wrap(native.call(O.vectorNorm, this.handle, p, dim ?? null, keepdim));
  }

  // ---- linear algebra ------------------------------------------------------------------------
  matmul(other: Tensor): Tensor { return wrap(native.call(O.matmul, this.handle, other.handle)); }
  mm(other: Tensor): Tensor { return wrap(native.call(O.mm, this.handle, other.handle)); }
  bmm(other: Tensor): Tensor { return wrap(native.call(O.bmm, this.handle, other.handle)); }

  // ---- selection, scatter/gather, sorting -----------------------------------------------------
  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return wrap(isTensor(value) ? native.call(O.maskedFill, this.handle, mask.handle, value.handle) : native.call(O.maskedFillS, this.handle, mask.handle, value));
  }
  gather(dim: number, index: Tensor): Tensor { return wrap(native.call(O.gather, this.handle, dim, index.handle)); }
  scatter(dim: number, index: Tensor, src: TensorOrScalar): Tensor {
    return wrap(isTensor(src) ? native.call(O.scatter, this.handle, dim, index.handle, src.handle) : native.call(O.scatterS, this.handle, dim, index.handle, src));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor { return wrap(native.call(O.scatterAdd, this.handle, dim, index.handle, src.handle)); }
  indexSelect(dim: number, index: Tensor): Tensor { return wrap(native.call(O.indexSelect, this.handle, dim, index.handle)); }
  indexAdd(dim: number, index: Tensor, source: Tensor, alpha?: number): Tensor {
    return wrap(native.call(O.indexAdd, this.handle, dim, index.handle, source.handle, alpha));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [values, indices] = wrapList(native.call(O.topk, this.handle, k, dim, largest, sorted));
    return { values, indices };
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = wrapList(native.call(O.sort, this.handle, dim, descending));
    return { values, indices };
  }
  argsort(dim = -1, descending = false): Tensor { return wrap(native.call(O.argsort, this.handle, dim, descending)); }
  cumsum(dim: number, dtype?: DType): Tensor { return wrap(native.call(O.cumsum, this.handle, dim, dtype ? dtypeCode(dtype) : undefined)); }
  oneHot(numClasses = -1): Tensor { return wrap(native.call(O.oneHot, this.handle, numClasses)); }
  bincount(weights?: Tensor, minlength = 0): Tensor { return wrap(native.call(O.bincount, this.handle, weights?.handle ?? null, minlength)); }
  /** Indices of the non-zero elements, shape (n, ndim). */
  nonzero(): Tensor { return unary(this, O.nonzero); }
  /** Samples indices from rows of non-negative weights (uses the global seed). */
  multinomial(numSamples: number, replacement = false): Tensor { return wrap(native.call(O.multinomial, this.handle, numSamples, replacement)); }

  // ---- in place (return this; allowed on leaves only under noGrad) ----------------------------
  copy_(src: Tensor): this { native.call(O.copy_, this.handle, src.handle); return this; }
  fill_(value: Scalar): this { native.call(O.fill_, this.handle, value); return this; }
  zero_(): this { native.call(O.zero_, this.handle); return this; }
  add_(other: TensorOrScalar, alpha?: number): this {
    if (isTensor(other)) native.call(O.add_, this.handle, other.handle, alpha); else native.call(O.addS_, this.handle, other, alpha);
    return this;
  }
  sub_(other: Tensor, alpha?: number): this { native.call(O.sub_, this.handle, other.handle, alpha); return this; }
  mul_(other: TensorOrScalar): this {
    if (isTensor(other)) native.call(O.mul_, this.handle, other.handle); else native.call(O.mulS_, this.handle, other);
    return this;
  }
  div_(other: TensorOrScalar): this {
    if (isTensor(other)) native.call(O.div_, this.handle, other.handle); else native.call(O.divS_, this.handle, other);
    return this;
  }
  clamp_(min?: number, max?: number): this { native.call(O.clamp_, this.handle, min ?? null, max ?? null); return this; }
  maskedFill_(mask: Tensor, value: Scalar): this { native.call(O.maskedFillS_, this.handle, mask.handle, value); return this; }
  /** this += value * t1 * t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this { native.call(O.addcmul_, this.handle, t1.handle, t2.handle, value); return this; }
  /** this += value * t1 / t2 */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this { native.call(O.addcdiv_, this.handle, t1.handle, t2.handle, value); return this; }
  /** this += weight * (end - this) */
  lerp_(end: Tensor, weight: number): this { native.call(O.lerp_, this.handle, end.handle, weight); return this; }
  /** Makes this tensor hold `data` (another shape, dtype or device), keeping its identity: whoever holds
   * this tensor (an optimizer, a module) sees the new data. PyTorch's `t.data = data`. */
  setData_(data: Tensor): this {
    native.call(O.setData, this.handle, data.handle);
    this._shape = undefined;
    this._dtype = undefined;
    return this;
  }
  normal_(mean = 0, std = 1): this { native.call(O.normal_, this.handle, mean, std); return this; }
  uniform_(from = 0, to = 1): this { native.call(O.uniform_, this.handle, from, to); return this; }
}

export interface ReduceOpts { keepdim?: boolean; dtype?: DType }

// ---- helpers shared by the factories and functional.ts -----------------------------------------

/** Wraps a handle returned by the addon. */
export function wrap(r: NativeResult): Tensor {
  if (typeof r !== 'number') throw new Error(`expected a tensor from libtorch, got ${r === undefined ? 'nothing' : typeof r}`);
  return new Tensor(r);
}

/** Wraps a list of handles returned by the addon (tuple or Tensor[] returns). */
export function wrapList(r: NativeResult): Tensor[] {
  if (!Array.isArray(r)) throw new Error('expected a list of tensors from libtorch');
  return r.map((h) => wrap(h));
}

// libtorch 1.13's CPU backward of the exact (erf) GELU is wrong — NaN/Inf or garbage — when the gradient
// reaching it is strided differently from its input (e.g. gelu(x).transpose(1, 2) @ w). Python's torch
// 1.13 has the same bug. Routing the output through reshape(-1).view(shape) costs nothing forward, and
// its backward hands gelu a contiguous gradient (a copy only when it was not); the input is made
// contiguous too. 2.x kernels are fine.
const GELU_NEEDS_DENSE_GRAD = /^1\./.test(native.torchVersion());

function geluDenseGrad(x: Tensor): Tensor {
  const xc = x.isContiguous() ? x : x.contiguous();
  const y = wrap(native.call(O.gelu, xc.handle, 'none'));
  const flat = y.reshape(-1);
  const out = flat.view(x.shape);
  flat.dispose();
  y.dispose();
  if (xc !== x) xc.dispose();
  return out;
}

function unary(t: Tensor, opId: number): Tensor { return wrap(native.call(opId, t.handle)); }
function binary(t: Tensor, other: TensorOrScalar, tensorOp: number, scalarOp: number): Tensor {
  return wrap(isTensor(other) ? native.call(tensorOp, t.handle, other.handle) : native.call(scalarOp, t.handle, other));
}

export function normDim(dim: number, ndim: number): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= Math.max(ndim, 1)) throw new RangeError(`dimension ${dim} is out of range for a tensor of ${ndim} dimensions`);
  return d;
}

function flatShape(args: number[] | [Shape]): number[] {
  return (args.length === 1 && Array.isArray(args[0]) ? [...(args[0] as Shape)] : args) as number[];
}

function isDeviceString(s: string): boolean {
  return s === 'cpu' || s === 'meta' || s.startsWith('cuda');
}

function sameDeviceAs(want: Device, have: Device): boolean {
  return want === have || (want === 'cuda' && have === 'cuda:0');
}

function parseSlice(s: string): { start?: number; end?: number; step?: number } {
  const parts = s.split(':');
  if (parts.length < 2 || parts.length > 3) throw new SyntaxError(`bad slice '${s}': expected 'start:end' or 'start:end:step'`);
  const num = (p: string | undefined): number | undefined => {
    if (p === undefined || p.trim() === '') return undefined;
    const n = Number(p);
    if (!Number.isInteger(n)) throw new SyntaxError(`bad slice '${s}': '${p}' is not an integer`);
    return n;
  };
  return { start: num(parts[0]), end: num(parts[1]), step: num(parts[2]) };
}

// ---- factories ----------------------------------------------------------------------------------

export interface TensorOptions { dtype?: DType; device?: Device; requiresGrad?: boolean }

const O2 = {
  zeros: op('aten::zeros'), ones: op('aten::ones'), full: op('aten::full'), empty: op('aten::empty', 'memory_format'),
  arange: op('aten::arange', 'start_step'), linspace: op('aten::linspace'), eye: op('aten::eye'),
  randn: op('aten::randn'), rand: op('aten::rand'), randint: op('aten::randint', 'low'),
  cat: op('aten::cat'), stack: op('aten::stack'), where: op('aten::where', 'self'), whereSO: op('aten::where', 'ScalarOther'),
  whereSS: op('aten::where', 'ScalarSelf'), whereS: op('aten::where', 'Scalar'), einsum: op('aten::einsum'),
  baddbmm: op('aten::baddbmm'), addmm: op('aten::addmm'),
  zerosLike: op('aten::zeros_like'), onesLike: op('aten::ones_like'), fullLike: op('aten::full_like'), randnLike: op('aten::randn_like'),
  emptyLike: op('aten::empty_like'),
} as const;

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}
function dt(opts: TensorOptions, fallback: DType = 'float32'): number { return dtypeCode(opts.dtype ?? fallback); }
function dev(opts: TensorOptions): string | undefined { return opts.device ? parseDevice(opts.device) : undefined; }

/** A tensor from nested arrays or a typed array (numbers default to float32, booleans to bool, bigints to int64). */
export function tensor(data: NestedInput | AnyTypedArray, opts: TensorOptions & { shape?: Shape } = {}): Tensor {
  let shape: number[];
  let flat: AnyTypedArray;
  let want: DType;
  if (ArrayBuffer.isView(data)) {
    flat = data as AnyTypedArray;
    shape = opts.shape ? [...opts.shape] : [flat.length];
    want = opts.dtype ?? dtypeOfArray(flat);
  } else {
    shape = [];
    const values: (number | boolean | bigint)[] = [];
    inferShape(data, 0, shape, values);
    const kind = values.length ? typeof values[0] : 'number';
    want = opts.dtype ?? (kind === 'boolean' ? 'bool' : kind === 'bigint' ? 'int64' : 'float32');
    flat = toTypedArray(values, want);
    if (opts.shape) shape = [...opts.shape];
  }
  const srcDtype = dtypeOfArray(flat);
  let t = wrap(native.fromBytes(flat, shape, dtypeCode(srcDtype)));
  if (want !== srcDtype || (opts.device && opts.device !== 'cpu')) {
    const moved = t.to({ dtype: want, device: opts.device });
    t.dispose();
    t = moved;
  }
  return finish(t, opts);
}


function inferShape(v: NestedInput, depth: number, shape: number[], out: (number | boolean | bigint)[]): void {
  if (Array.isArray(v)) {
    if (shape.length === depth) shape.push(v.length);
    else if (shape[depth] !== v.length) throw new RangeError(`tensor(): ragged nested array: length ${v.length} at depth ${depth}, expected ${shape[depth]}`);
    for (const x of v) inferShape(x, depth + 1, shape, out);
  } else {
    if (depth !== shape.length) throw new RangeError(`tensor(): ragged nested array: a value at depth ${depth}, expected depth ${shape.length}`);
    out.push(v);
  }
}

function toTypedArray(values: (number | boolean | bigint)[], dtype: DType): AnyTypedArray {
  switch (dtype) {
    case 'float64': return Float64Array.from(values, Number);
    case 'int64': return BigInt64Array.from(values, (v) => BigInt(typeof v === 'bigint' ? v : Math.trunc(Number(v))));
    case 'int32': return Int32Array.from(values, Number);
    case 'int16': return Int16Array.from(values, Number);
    case 'int8': return Int8Array.from(values, Number);
    case 'uint8': case 'bool': return Uint8Array.from(values, Number);
    default: return Float32Array.from(values, Number);  // float32, and the half types cast after upload
  }
}

export function zeros(shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.zeros, shape as number[], dt(opts), undefined, dev(opts))), opts);
}
export function ones(shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.ones, shape as number[], dt(opts), undefined, dev(opts))), opts);
}
export function empty(shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.empty, shape as number[], dt(opts), undefined, dev(opts))), opts);
}
/** A tensor filled with `value` (float32 unless `dtype` says otherwise: JS cannot tell 2 from 2.0). */
export function full(shape: Shape, value: Scalar, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.full, shape as number[], value, dt(opts), undefined, dev(opts))), opts);
}
/** [start, end) by step; int64 unless `dtype` says otherwise or a bound/step is fractional. */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  const fallback: DType = [s, e, step].every(Number.isInteger) ? 'int64' : 'float32';
  return finish(wrap(native.call(O2.arange, s, e, step, dt(opts, fallback), undefined, dev(opts))), opts);
}
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.linspace, start, end, steps, dt(opts), undefined, dev(opts))), opts);
}
export function eye(n: number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.eye, n, dt(opts), undefined, dev(opts))), opts);
}
/** Standard normal samples (from the global generator: see manualSeed). */
export function randn(shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.randn, shape as number[], dt(opts), undefined, dev(opts))), opts);
}
/** Uniform samples in [0, 1). */
export function rand(shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.rand, shape as number[], dt(opts), undefined, dev(opts))), opts);
}
/** Integers uniform in [low, high) (int64 unless `dtype` says otherwise). */
export function randint(low: number, high: number, shape: Shape, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.randint, low, high, shape as number[], dt(opts, 'int64'), undefined, dev(opts))), opts);
}
export function zerosLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.zerosLike, t.handle, opts.dtype ? dtypeCode(opts.dtype) : undefined, undefined, dev(opts))), opts);
}
export function onesLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.onesLike, t.handle, opts.dtype ? dtypeCode(opts.dtype) : undefined, undefined, dev(opts))), opts);
}
export function fullLike(t: Tensor, value: Scalar, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.fullLike, t.handle, value, opts.dtype ? dtypeCode(opts.dtype) : undefined, undefined, dev(opts))), opts);
}
export function randnLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.randnLike, t.handle, opts.dtype ? dtypeCode(opts.dtype) : undefined, undefined, dev(opts))), opts);
}
export function emptyLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return finish(wrap(native.call(O2.emptyLike, t.handle, opts.dtype ? dtypeCode(opts.dtype) : undefined, undefined, dev(opts))), opts);
}

// ---- functions of several tensors ---------------------------------------------------------------

export function cat(tensors: readonly Tensor[], dim = 0): Tensor { return wrap(native.call(O2.cat, tensors.map((t) => t.handle), dim)); }
export function stack(tensors: readonly Tensor[], dim = 0): Tensor { return wrap(native.call(O2.stack, tensors.map((t) => t.handle), dim)); }
/** Elementwise `condition ? a : b`. */
export function where(condition: Tensor, a: TensorOrScalar, b: TensorOrScalar): Tensor {
  const c = condition.handle;
  if (isTensor(a) && isTensor(b)) return wrap(native.call(O2.where, c, a.handle, b.handle));
  if (isTensor(a)) return wrap(native.call(O2.whereSO, c, a.handle, b as Scalar));
  if (isTensor(b)) return wrap(native.call(O2.whereSS, c, a, b.handle));
  return wrap(native.call(O2.whereS, c, a, b));
}
export function einsum(equation: string, ...tensors: Tensor[]): Tensor {
  return wrap(native.call(O2.einsum, equation, tensors.map((t) => t.handle)));
}
/** beta * input + alpha * (batch1 @ batch2) */
export function baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, opts: { beta?: number; alpha?: number } = {}): Tensor {
  return wrap(native.call(O2.baddbmm, input.handle, batch1.handle, batch2.handle, opts.beta, opts.alpha));
}
/** beta * input + alpha * (mat1 @ mat2) */
export function addmm(input: Tensor, mat1: Tensor, mat2: Tensor, opts: { beta?: number; alpha?: number } = {}): Tensor {
  return wrap(native.call(O2.addmm, input.handle, mat1.handle, mat2.handle, opts.beta, opts.alpha));
}
export function matmul(a: Tensor, b: Tensor): Tensor { return a.matmul(b); }

export type CallResult = Tensor | Tensor[] | number | boolean | string | undefined;

/** Calls any ATen operator by name: tensors in, tensors out (`call('aten::frac', '', [t])`). */
export function call(name: string, overload: string, args: readonly unknown[], kwargs: Record<string, unknown> = {}): CallResult {
  const { info, ordered } = prepareCall(name, overload, args, kwargs);
  return fromNativeResult(info, native.call(info.id, ...ordered));
}

/**
 * `call` on libuv's thread pool: a long operator (a big matmul, a conv) runs without blocking the
 * event loop. Grad mode and CPU autocast travel with the call. Inputs must stay alive until it settles.
 */
export async function callAsync(name: string, overload: string, args: readonly unknown[], kwargs: Record<string, unknown> = {}): Promise<CallResult> {
  const { info, ordered } = prepareCall(name, overload, args, kwargs);
  return fromNativeResult(info, await native.callAsync(info.id, ...ordered));
}

function prepareCall(name: string, overload: string, args: readonly unknown[], kwargs: Record<string, unknown>) {
  const toNative = (v: unknown): NativeArg => {
    if (isTensor(v)) return v.handle;
    if (Array.isArray(v)) return v.map(toNative);
    if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'bigint') return v;
    throw new TypeError(`call(${name}): cannot pass ${Object.prototype.toString.call(v)}`);
  };
  const info = opInfoFor(name, overload);
  const positional = args.map(toNative);
  const kw = Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [k, toNative(k === 'dtype' && typeof v === 'string' ? dtypeCode(v as DType) : v)]));
  return { info, ordered: orderArgsFor(info, positional, kw) };
}

function fromNativeResult(info: OpInfo, r: NativeResult): CallResult {
  const fromNative = (x: NativeResult, type: string): CallResult => {
    if (x === null || x === undefined) return undefined;
    if (type.startsWith('Tensor') && type.endsWith('[]')) return wrapList(x);
    if (type.startsWith('Tensor')) return wrap(x);
    return x as number | boolean | string;
  };
  if (info.returns.length <= 1) return fromNative(r, info.returns[0] ?? '');
  return (r as NativeResult[]).map((x, i) => fromNative(x, info.returns[i])) as Tensor[];
}
