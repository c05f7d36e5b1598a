// The safetensors header (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, then a JSON header {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {str: str}}, then the tensor bytes. Read and checked here, apart from the loader,
// so that it runs without libtorch (test/io/fuzz.test.ts fuzzes it in worker threads): every file
// that is not a safetensors file fails as a SafetensorsError naming it and what is wrong.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { dtypeBytes, type DType } from '../torch/dtype.js';
import { fileReadProblem, InputError } from '../torch/inputError.js';

export const TO_ST: Record<DType, string> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const FROM_ST = new Map<string, DType>(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));

export interface SafetensorsEntry { dtype: DType; shape: number[]; begin: number; end: number }
export interface SafetensorsHeader { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string>; dataOffset: number }

export class SafetensorsError extends InputError {
  /** `detail` says what is wrong inside the file; `unreadable` that the file could not be read at all. */
  constructor(readonly file: string, detail: string, unreadable = false) {
    super(unreadable ? `${file} ${detail}` : `${file}: not a valid safetensors file: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

/** Opens a safetensors file for reading, or says why it cannot (missing, a folder, not permitted). */
function openForReading(path: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new SafetensorsError(path, fileReadProblem(err), true);
  }
  const st = fstatSync(fd);
  // Linux opens a folder for reading; the read would fail later with a bare EISDIR.
  if (!st.isFile()) {
    closeSync(fd);
    throw new SafetensorsError(path, st.isDirectory() ? fileReadProblem({ code: 'EISDIR' }) : 'is not a regular file', true);
  }
  return { fd, size: st.size };
}

/** Reads and validates the header only (cheap: a few KB, whatever the file size). */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const { fd, size } = openForReading(path);
  try {
    if (size < 8) throw new SafetensorsError(path, `${size} bytes is too short for the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(size - 8) || n > 100_000_000n) throw new SafetensorsError(path, `header length ${n} exceeds the file (${size} bytes)`);
    const headerBuf = Buffer.alloc(Number(n));
    readSync(fd, headerBuf, 0, headerBuf.length, 8);
    let json: unknown;
    try { json = JSON.parse(headerBuf.toString('utf8')); } catch (e) { throw new SafetensorsError(path, `header is not JSON (${(e as Error).message})`); }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new SafetensorsError(path, 'header is not a JSON object');
    const dataOffset = 8 + Number(n);
    const dataSize = size - dataOffset;
    const entries = new Map<string, SafetensorsEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new SafetensorsError(path, '__metadata__ must map strings to strings');
        metadata = v as Record<string, string>;
        continue;
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SafetensorsError(path, `tensor '${name}' is ${JSON.stringify(v)}; expected {dtype, shape, data_offsets}`);
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = typeof e.dtype === 'string' ? FROM_ST.get(e.dtype) : undefined;
      if (!dtype) throw new SafetensorsError(path, `tensor '${name}' has dtype ${JSON.stringify(e.dtype)}; m6 reads ${[...FROM_ST.keys()].join(', ')}`);
      if (!Array.isArray(e.shape) || !e.shape.every((s) => Number.isInteger(s) && s >= 0)) throw new SafetensorsError(path, `tensor '${name}' has a bad shape ${JSON.stringify(e.shape)}`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isInteger(x))) throw new SafetensorsError(path, `tensor '${name}' has bad data_offsets`);
      const [begin, end] = off as [number, number];
      const want = (e.shape as number[]).reduce((a, b) => a * b, 1) * dtypeBytes(dtype);
      if (begin < 0 || end < begin || end > dataSize) throw new SafetensorsError(path, `tensor '${name}' data [${begin}, ${end}) lies outside the ${dataSize} data bytes`);
      if (end - begin !== want) throw new SafetensorsError(path, `tensor '${name}' has ${end - begin} bytes; ${dtype} [${e.shape}] needs ${want}`);
      entries.set(name, { dtype, shape: e.shape as number[], begin, end });
    }
    return { entries, metadata, dataOffset };
  } finally {
    closeSync(fd);
  }
}
