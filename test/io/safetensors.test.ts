import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { loadSafetensors, saveSafetensors, readSafetensorsHeader } from '../../src/io/index.js';
import { native } from '../../src/torch/native.js';
import { fixtures } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'm6-st-'));

test('round trip is bit-exact for every dtype, with metadata', () => {
  torch.manualSeed(5);
  const tensors: Record<string, torch.Tensor> = {};
  for (const dtype of torch.DTYPES) {
    const base = torch.randn([3, 5]).mul(100);
    tensors[`t_${dtype}`] = dtype === 'bool' ? base.gt(0) : base.to(dtype);
  }
  tensors.scalar = torch.tensor([3.5]).reshape([]);
  tensors.empty = torch.zeros([0, 4]);
  tensors.strided = torch.randn([4, 6]).transpose(0, 1);
  const file = join(dir, 'all.safetensors');
  saveSafetensors(file, tensors, { step: '7' });
  const { tensors: back, metadata } = loadSafetensors(file);
  assert.deepEqual(metadata, { step: '7' });
  assert.deepEqual([...back.keys()].sort(), Object.keys(tensors).sort());
  for (const [k, t] of Object.entries(tensors)) {
    const b = back.get(k)!;
    assert.equal(b.dtype, t.dtype, k);
    assert.deepEqual(b.shape, t.shape, k);
    assert.deepEqual(b.toBytes(), t.toBytes(), `${k} bytes differ`);
  }
  assert.equal(readdirSync(dir).filter((f) => f.includes('.tmp-')).length, 0, 'no temp file left behind');
});

test('loading is zero-copy: tensors view the mapped file, and writes to them never reach the file', () => {
  const file = join(dir, 'big.safetensors');
  saveSafetensors(file, { w: torch.arange(1 << 16, undefined, 1, { dtype: 'float32' }) });
  const bytesBefore = readFileSync(file);
  const { tensors } = loadSafetensors(file);
  const w = tensors.get('w')!;
  const live0 = torch.liveTensorBytes();
  assert.equal(w.index(12345).item(), 12345);
  // A view of the mapping: the data pointer lies outside libtorch's allocator and the table counts its bytes
  // only once; modifying it is copy-on-write.
  assert.ok(native.dataPtr(w.handle) > 0);
  w.indexPut_([0], -1);
  assert.equal(w.index(0).item(), -1);
  assert.deepEqual(readFileSync(file), bytesBefore);
  assert.ok(torch.liveTensorBytes() >= live0);
});

test('a file written by the reference implementation loads with the right values', () => {
  const { tensors, metadata } = loadSafetensors(join(fixtures, 'reference.safetensors'));
  assert.equal(metadata.format, 'pt');
  const expect: Record<string, [torch.DType, number[]]> = {
    f64: ['float64', [2, 3]], f32: ['float32', [3, 2]], f16: ['float16', [4]], bf16: ['bfloat16', [2, 2]], i64: ['int64', [5]],
    i32: ['int32', [2, 2]], i16: ['int16', [3]], i8: ['int8', [3]], u8: ['uint8', [2, 3]], bool: ['bool', [4]], empty: ['float32', [0, 3]],
  };
  for (const [name, [dtype, shape]] of Object.entries(expect)) {
    const t = tensors.get(name);
    assert.ok(t, `missing ${name}`);
    assert.equal(t.dtype, dtype, name);
    assert.deepEqual(t.shape, shape, name);
    const n = shape.reduce((a, b) => a * b, 1);
    const want = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 2 === 1 : i));
    const got = t.flatten().toArray() as (number | boolean)[];
    assert.deepEqual(got, want, name);
  }
});

test('corrupt files are refused with a message that names the file and the problem', () => {
  const bad = (name: string, bytes: Buffer) => { const f = join(dir, name); writeFileSync(f, bytes); return f; };
  assert.throws(() => loadSafetensors(bad('short.safetensors', Buffer.from([1, 2]))), /short\.safetensors.*too short/);
  const len = Buffer.alloc(8); len.writeBigUInt64LE(1000n);
  assert.throws(() => loadSafetensors(bad('len.safetensors', Buffer.concat([len, Buffer.from('{}')]))), /header length 1000 exceeds/);
  const mk = (h: object, data = 0) => { const j = Buffer.from(JSON.stringify(h)); const l = Buffer.alloc(8); l.writeBigUInt64LE(BigInt(j.length)); return Buffer.concat([l, j, Buffer.alloc(data)]); };
  assert.throws(() => loadSafetensors(bad('dtype.safetensors', mk({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, 1))), /'a' has dtype "F8"/);
  assert.throws(() => loadSafetensors(bad('size.safetensors', mk({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4))), /'a' has 4 bytes; float32 \[2\] needs 8/);
  assert.throws(() => loadSafetensors(bad('oob.safetensors', mk({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4))), /outside the 4 data bytes/);
  assert.throws(() => readSafetensorsHeader(bad('json.safetensors', Buffer.concat([(() => { const l = Buffer.alloc(8); l.writeBigUInt64LE(3n); return l; })(), Buffer.from('{x:')]))), /not JSON/);
  assert.ok(existsSync(dir));
});

test('a file that is missing, a folder, unreadable or truncated is named as what it is', async (t) => {
  const { chmodSync, mkdirSync, truncateSync, statSync } = await import('node:fs');
  const { SafetensorsError } = await import('../../src/io/index.js');
  const { isRoot } = await import('../helpers.js');
  const refused = (f: string, re: RegExp) => assert.throws(() => readSafetensorsHeader(f), (e: Error) => e instanceof SafetensorsError && re.test(e.message) && e.message.includes(f) && !e.message.includes('\n'), f);
  refused(join(dir, 'nope.safetensors'), /nope\.safetensors does not exist/);
  mkdirSync(join(dir, 'folder.safetensors'));
  refused(join(dir, 'folder.safetensors'), /is a folder, expected a file/);
  const good = join(dir, 'good.safetensors');
  saveSafetensors(good, { a: torch.arange(0, 64, 1, { dtype: 'float32' }), b: torch.ones([3]) });
  const locked = join(dir, 'locked.safetensors');
  writeFileSync(locked, readFileSync(good));
  chmodSync(locked, 0o000);
  if (isRoot) t.diagnostic('running as root, which reads a mode-000 file: the permission-denied case is checked end to end in test/cli/badFiles.test.ts (as nobody)');
  else refused(locked, /cannot be read: permission denied/);
  const cut = join(dir, 'cut.safetensors');
  writeFileSync(cut, readFileSync(good));
  truncateSync(cut, statSync(cut).size - 10);
  refused(cut, /tensor '\w' data \[\d+, \d+\) lies outside the \d+ data bytes/);
  const mk = (h: object) => { const j = Buffer.from(JSON.stringify(h)); const l = Buffer.alloc(8); l.writeBigUInt64LE(BigInt(j.length)); return Buffer.concat([l, j]); };
  writeFileSync(join(dir, 'null.safetensors'), mk({ a: null }));
  refused(join(dir, 'null.safetensors'), /tensor 'a' is null; expected \{dtype, shape, data_offsets\}/);
  writeFileSync(join(dir, 'meta.safetensors'), mk({ __metadata__: ['x'] }));
  refused(join(dir, 'meta.safetensors'), /__metadata__ must map strings to strings/);
});
