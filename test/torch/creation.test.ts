import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { assertClose } from '../helpers.js';

test('tensor() from nested arrays infers shape and dtype', () => {
  const t = torch.tensor([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(t.shape, [2, 3]);
  assert.equal(t.dtype, 'float32');
  assert.deepEqual(t.toArray(), [[1, 2, 3], [4, 5, 6]]);
  assert.equal(torch.tensor([true, false]).dtype, 'bool');
  assert.deepEqual(torch.tensor([true, false]).toArray(), [true, false]);
  assert.equal(torch.tensor([1n, 2n]).dtype, 'int64');
  assert.throws(() => torch.tensor([[1, 2], [3]]), /ragged/);
});

test('tensor() from typed arrays keeps their dtype; dtype option converts', () => {
  assert.equal(torch.tensor(new Int32Array([1, 2])).dtype, 'int32');
  assert.equal(torch.tensor(new Uint8Array([1, 2])).dtype, 'uint8');
  assert.equal(torch.tensor(new Float64Array([1.5])).dtype, 'float64');
  const t = torch.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
  assert.deepEqual(t.shape, [2, 3]);
  for (const dtype of torch.DTYPES) {
    const c = torch.tensor([0, 1, 2], { dtype });
    assert.equal(c.dtype, dtype);
    assertClose(c.toArray(), dtype === 'bool' ? [false, true, true] : [0, 1, 2]);
  }
});

test('read-back: toTypedArray, item, toBytes', () => {
  const t = torch.tensor([1.5, -2], { dtype: 'float64' });
  assert.ok(t.toTypedArray() instanceof Float64Array);
  assert.equal(torch.tensor([7], { dtype: 'int64' }).toTypedArray()[0], 7n);
  assert.equal(torch.tensor([[3.25]]).item(), 3.25);
  assert.ok(torch.tensor([1, 2], { dtype: 'bfloat16' }).toTypedArray() instanceof Float32Array);
  assert.deepEqual([...torch.tensor([1], { dtype: 'bfloat16' }).toBytes()], [0x80, 0x3f]);  // bf16 1.0 = 0x3f80
  assert.throws(() => torch.tensor([1, 2]).item(), /2 elements/);
});

test('factories: zeros/ones/full/arange/linspace/eye', () => {
  assert.deepEqual(torch.zeros([2, 2]).toArray(), [[0, 0], [0, 0]]);
  assert.deepEqual(torch.ones([3], { dtype: 'int32' }).toArray(), [1, 1, 1]);
  assert.deepEqual(torch.full([2], 2.5).toArray(), [2.5, 2.5]);
  assert.equal(torch.full([2], 2).dtype, 'float32');
  assert.equal(torch.full([2], 2, { dtype: 'int64' }).dtype, 'int64');
  assert.deepEqual(torch.arange(4).toArray(), [0, 1, 2, 3]);
  assert.equal(torch.arange(4).dtype, 'int64');
  assert.deepEqual(torch.arange(1, 2, 0.25).toArray(), [1, 1.25, 1.5, 1.75]);
  assert.deepEqual(torch.linspace(0, 1, 5).toArray(), [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(torch.eye(2).toArray(), [[1, 0], [0, 1]]);
  assert.deepEqual(torch.zerosLike(torch.ones([2], { dtype: 'int32' })).toArray(), [0, 0]);
  assert.deepEqual(torch.fullLike(torch.ones([2]), 3).toArray(), [3, 3]);
});

test('random factories follow the global seed', () => {
  torch.manualSeed(42);
  const a = torch.randn([5]).toArray();
  const r = torch.rand([100]);
  const i = torch.randint(3, 7, [100]);
  torch.manualSeed(42);
  assert.deepEqual(torch.randn([5]).toArray(), a);
  assert.ok(r.ge(0).all().item() && r.lt(1).all().item());
  assert.ok(i.ge(3).all().item() && i.lt(7).all().item());
  assert.equal(i.dtype, 'int64');
  const n = torch.randn([20000]);
  assertClose(n.mean().item(), 0, 0.05);
  assertClose(n.std().item(), 1, 0.05);
});

test('conversions between dtypes and the meta device', () => {
  const t = torch.tensor([1.7, -1.7]);
  assert.deepEqual(t.to('int64').toArray(), [1, -1]);
  assert.equal(t.to('float32').dtype, 'float32');
  const m = torch.zeros([1000, 1000, 1000], { device: 'meta' });
  assert.equal(m.device, 'meta');
  assert.deepEqual(m.matmul(torch.zeros([1000, 5], { device: 'meta' })).shape, [1000, 1000, 5]);
  assert.throws(() => m.toArray(), /meta tensor has no data/);
  assert.throws(() => torch.zeros([2], { device: 'gpu' as torch.Device }), /unknown device 'gpu'/);
});
