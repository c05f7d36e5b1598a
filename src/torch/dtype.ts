// Element types. The numeric codes are c10::ScalarType's (c10/core/ScalarType.h), as tch-rs's Kind cites them.

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const CODES: Record<DType, number> = {
  uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15,
};
const NAMES = new Map<number, DType>(Object.entries(CODES).map(([k, v]) => [v, k as DType]));

export const DTYPES = Object.keys(CODES) as readonly DType[];

export function dtypeCode(d: DType): number {
  const c = CODES[d];
  if (c === undefined) throw new TypeError(`unknown dtype '${String(d)}': expected one of ${DTYPES.join(', ')}`);
  return c;
}

export function dtypeFromCode(code: number): DType {
  const d = NAMES.get(code);
  if (!d) throw new TypeError(`libtorch returned a dtype m6 does not support (ScalarType ${code})`);
  return d;
}

export function isFloatingDtype(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export function dtypeBytes(d: DType): number {
  switch (d) {
    case 'float64': case 'int64': return 8;
    case 'float32': case 'int32': return 4;
    case 'float16': case 'bfloat16': case 'int16': return 2;
    default: return 1;
  }
}

/** The typed array a dtype reads back as. Half types read back widened to Float32Array (JS has no 16-bit float array). */
export type TypedArrayFor<D extends DType> =
  D extends 'float64' ? Float64Array :
  D extends 'float32' | 'float16' | 'bfloat16' ? Float32Array :
  D extends 'int64' ? BigInt64Array :
  D extends 'int32' ? Int32Array :
  D extends 'int16' ? Int16Array :
  D extends 'int8' ? Int8Array :
  D extends 'uint8' | 'bool' ? Uint8Array : never;

export type AnyTypedArray = Float64Array | Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

/** The dtype a typed array holds. */
export function dtypeOfArray(a: AnyTypedArray | Uint16Array): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array) return 'uint8';
  throw new TypeError(`no dtype for ${Object.prototype.toString.call(a)}; pass { dtype } for raw 16-bit data`);
}

export function typedArrayFromBytes(d: DType, buf: ArrayBuffer): AnyTypedArray {
  switch (d) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'int64': return new BigInt64Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'int16': return new Int16Array(buf);
    case 'int8': return new Int8Array(buf);
    case 'uint8': case 'bool': return new Uint8Array(buf);
    default: throw new TypeError(`${d} has no typed array; convert with .to('float32') first`);
  }
}
