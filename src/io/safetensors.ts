// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Loading maps the file and views it (zero-copy);
// saving streams one tensor at a time into a temp file that is renamed into place (atomic).
import { closeSync, fstatSync, fsyncSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { renameDurably, tempNameFor } from './atomicFile.js';
import { native } from '../torch/native.js';
import { Tensor } from '../torch/tensor.js';
import { dtypeBytes, dtypeCode, type DType } from '../torch/dtype.js';
import { fileReadProblem, InputError } from '../torch/inputError.js';

const TO_ST: Record<DType, string> = {
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

/**
 * Loads every tensor of a safetensors file as CPU tensors that view a copy-on-write mapping of the
 * file (no copy; writing to a loaded tensor never touches the file).
 */
export function loadSafetensors(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const header = readSafetensorsHeader(path);
  const names = [...header.entries.keys()];
  const specs = names.map((k) => {
    const e = header.entries.get(k)!;
    return [dtypeCode(e.dtype), e.shape, e.begin, e.end] as [number, number[], number, number];
  });
  const handles = native.mapTensors(path, specs, header.dataOffset);
  const tensors = new Map<string, Tensor>();
  names.forEach((k, i) => tensors.set(k, new Tensor(handles[i])));
  return { tensors, metadata: header.metadata };
}

/**
 * Writes tensors (any device; copied to the CPU one at a time) to `path` atomically: a temp file is
 * written and fsynced, then renamed over `path` (atomicFile.ts), so a crash never leaves a half-written checkpoint.
 */
export function saveSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  // Larger alignments first, then by name, as the reference writer does: every tensor starts aligned.
  entries.sort(([ka, a], [kb, b]) => dtypeBytes(b.dtype) - dtypeBytes(a.dtype) || (ka < kb ? -1 : ka > kb ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = t.numel * dtypeBytes(t.dtype);
    header[name] = { dtype: TO_ST[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;  // the data section starts 8-byte aligned
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const tmp = tempNameFor(path);
  const fd = openSync(tmp, 'w');
  let open = true;
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    for (const [, t] of entries) {
      if (t.numel) writeSync(fd, t.toBytes());
    }
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameDurably(tmp, path);
  } catch (e) {
    if (open) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
}
