// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Loading maps the file and views it (zero-copy);
// saving streams one tensor at a time into a temp file that is renamed into place (atomic).
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { renameDurably, tempNameFor } from './atomicFile.js';
import { native } from '../torch/native.js';
import { Tensor } from '../torch/tensor.js';
import { dtypeBytes, dtypeCode } from '../torch/dtype.js';
import { readSafetensorsHeader, TO_ST } from './safetensorsHeader.js';

export { readSafetensorsHeader, SafetensorsError, type SafetensorsEntry, type SafetensorsHeader } from './safetensorsHeader.js';

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

/** What was written: the file's size and sha256, computed from the bytes as they went out (no re-read). */
export interface WrittenFile { bytes: number; sha256: string }

/**
 * Writes tensors (any device; copied to the CPU one at a time) to `path` atomically: a temp file is
 * written and fsynced, then renamed over `path` (atomicFile.ts), so a crash never leaves a half-written checkpoint.
 */
export function saveSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): WrittenFile {
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
    const hash = createHash('sha256');
    let bytes = 0;
    // writeSync may write less than asked (a full disk, a huge buffer): loop, or the file would be short and its hash wrong.
    const write = (b: Uint8Array): void => { for (let at = 0; at < b.byteLength;) at += writeSync(fd, b, at); hash.update(b); bytes += b.byteLength; };
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    write(len);
    write(json);
    for (const [, t] of entries) {
      if (t.numel) write(t.toBytes());
    }
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameDurably(tmp, path);
    return { bytes, sha256: hash.digest('hex') };
  } catch (e) {
    if (open) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
}
