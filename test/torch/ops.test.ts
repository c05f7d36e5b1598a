import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { assertClose } from '../helpers.js';

const m = () => torch.tensor([[1, 2, 3], [4, 5, 6]]);

test('views: reshape, view, permute, transpose, squeeze, unsqueeze, expand, contiguous, flatten', () => {
  assert.deepEqual(m().reshape(3, 2).toArray(), [[1, 2], [3, 4], [5, 6]]);
  assert.deepEqual(m().view([-1]).toArray(), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(m().transpose(0, 1).toArray(), [[1, 4], [2, 5], [3, 6]]);
  assert.deepEqual(m().T.toArray(), [[1, 4], [2, 5], [3, 6]]);
  assert.deepEqual(torch.zeros([2, 3, 4]).permute(2, 0, 1).shape, [4, 2, 3]);
  assert.deepEqual(torch.zeros([1, 3, 1]).squeeze().shape, [3]);
  assert.deepEqual(torch.zeros([1, 3, 1]).squeeze(0).shape, [3, 1]);
  assert.deepEqual(torch.zeros([3]).unsqueeze(0).shape, [1, 3]);
  assert.deepEqual(torch.tensor([1, 2]).unsqueeze(1).expand(2, 3).toArray(), [[1, 1, 1], [2, 2, 2]]);
  const t = m().transpose(0, 1);
  assert.equal(t.isContiguous(), false);
  assert.equal(t.contiguous().isContiguous(), true);
  assert.deepEqual(torch.zeros([2, 3, 4]).flatten(1).shape, [2, 12]);
  assert.deepEqual(m().narrow(1, 1, 2).toArray(), [[2, 3], [5, 6]]);
  assert.deepEqual(m().repeat(1, 2).toArray(), [[1, 2, 3, 1, 2, 3], [4, 5, 6, 4, 5, 6]]);
  assert.deepEqual(torch.tensor([1, 2]).repeatInterleave(2).toArray(), [1, 1, 2, 2]);
  assert.deepEqual(m().repeatInterleave(torch.tensor([2n, 1n]), 0).toArray(), [[1, 2, 3], [1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(torch.ones([3, 3]).tril().toArray(), [[1, 0, 0], [1, 1, 0], [1, 1, 1]]);
  assert.deepEqual(torch.ones([2, 2]).triu(1).toArray(), [[0, 1], [0, 0]]);
});

test('views share storage with their base', () => {
  const base = torch.zeros([2, 2]);
  base.transpose(0, 1).select(0, 1).fill_(7);  // column 1 of base
  assert.deepEqual(base.toArray(), [[0, 7], [0, 7]]);
});

test('index: numbers, slices, ellipsis, newaxis, integer and boolean tensors', () => {
  assert.deepEqual(m().index(1).toArray(), [4, 5, 6]);
  assert.deepEqual(m().index(-1, -1).toArray(), 6);
  assert.deepEqual(m().index(':', '1:').toArray(), [[2, 3], [5, 6]]);
  assert.deepEqual(m().index(':', '::2').toArray(), [[1, 3], [4, 6]]);
  assert.deepEqual(m().index({ start: 1 }, { end: 2 }).toArray(), [[4, 5]]);
  assert.deepEqual(m().index('...', 0).toArray(), [1, 4]);
  assert.deepEqual(m().index(null).shape, [1, 2, 3]);
  assert.deepEqual(m().index(':', null, 0).shape, [2, 1]);
  assert.deepEqual(m().index(torch.tensor([1n, 0n, 1n])).toArray(), [[4, 5, 6], [1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(m().index(':', torch.tensor([2n, 0n])).toArray(), [[3, 1], [6, 4]]);
  assert.deepEqual(m().index(m().gt(3)).toArray(), [4, 5, 6]);
});

test('indexPut_ writes through basic and advanced indices', () => {
  const t = torch.zeros([2, 3]);
  t.indexPut_([0, '1:'], 5);
  t.indexPut_([1], torch.tensor([1, 2, 3]));
  t.indexPut_([torch.tensor([0n]), torch.tensor([0n])], 9);
  assert.deepEqual(t.toArray(), [[9, 5, 5], [1, 2, 3]]);
});

test('arithmetic with broadcasting and scalars', () => {
  const a = torch.tensor([[1, 2], [3, 4]]);
  const row = torch.tensor([10, 20]);
  assert.deepEqual(a.add(row).toArray(), [[11, 22], [13, 24]]);
  assert.deepEqual(a.add(row, 2).toArray(), [[21, 42], [23, 44]]);
  assert.deepEqual(a.sub(1).toArray(), [[0, 1], [2, 3]]);
  assert.deepEqual(a.rsub(1).toArray(), [[0, -1], [-2, -3]]);
  assert.deepEqual(a.mul(row.unsqueeze(1)).toArray(), [[10, 20], [60, 80]]);
  assert.deepEqual(a.div(2).toArray(), [[0.5, 1], [1.5, 2]]);
  assert.deepEqual(torch.tensor([7, -7]).div(2, 'floor').toArray(), [3, -4]);
  assert.deepEqual(torch.tensor([7, -7]).div(2, 'trunc').toArray(), [3, -3]);
  assert.deepEqual(a.pow(2).toArray(), [[1, 4], [9, 16]]);
  assert.deepEqual(a.neg().abs().toArray(), [[1, 2], [3, 4]]);
  assertClose(torch.tensor([0, 1]).exp().toArray(), [1, Math.E]);
  assertClose(torch.tensor([1, Math.E]).log().toArray(), [0, 1]);
  assertClose(torch.tensor([4, 9]).sqrt().toArray(), [2, 3]);
  assertClose(torch.tensor([4]).rsqrt().toArray(), [0.5]);
  assertClose(torch.tensor([0]).sigmoid().toArray(), [0.5]);
  assertClose(torch.tensor([0.5]).tanh().toArray(), [Math.tanh(0.5)]);
  assertClose(torch.tensor([-1, 2]).relu().toArray(), [0, 2]);
  assertClose(torch.tensor([1]).silu().toArray(), [1 / (1 + Math.exp(-1))]);
  assertClose(torch.tensor([1]).gelu().toArray(), [0.8413447460685429], 1e-6);
  assertClose(torch.tensor([1]).gelu('tanh').toArray(), [0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (1 + 0.044715)))], 1e-6);
  assert.deepEqual(torch.tensor([-2, 0.5, 3]).clamp(-1, 1).toArray(), [-1, 0.5, 1]);
  assert.deepEqual(torch.tensor([1, 5]).maximum(torch.tensor([3, 2])).toArray(), [3, 5]);
  assert.deepEqual(torch.tensor([1, 5]).minimum(torch.tensor([3, 2])).toArray(), [1, 2]);
});

test('a number keeps the kind of the tensor it meets (int stays int, float stays float)', () => {
  const i = torch.tensor([1, 2], { dtype: 'int64' });
  assert.equal(i.add(2).dtype, 'int64');
  assert.equal(i.mul(2).dtype, 'int64');
  assert.equal(i.add(2.5).dtype, 'float32');
  assert.deepEqual(i.add(2.5).toArray(), [3.5, 4.5]);
  assert.equal(torch.tensor([1], { dtype: 'bfloat16' }).mul(3).dtype, 'bfloat16');
  assert.equal(torch.tensor([1], { dtype: 'float16' }).add(1).dtype, 'float16');
});

test('comparisons and logic', () => {
  const a = torch.tensor([1, 2, 3]);
  assert.deepEqual(a.eq(2).toArray(), [false, true, false]);
  assert.deepEqual(a.ne(torch.tensor([1, 0, 3])).toArray(), [false, true, false]);
  assert.deepEqual(a.lt(2).toArray(), [true, false, false]);
  assert.deepEqual(a.le(2).toArray(), [true, true, false]);
  assert.deepEqual(a.gt(2).toArray(), [false, false, true]);
  assert.deepEqual(a.ge(2).toArray(), [false, true, true]);
  assert.deepEqual(a.gt(1).logicalAnd(a.lt(3)).toArray(), [false, true, false]);
  assert.deepEqual(a.lt(2).logicalOr(a.gt(2)).logicalNot().toArray(), [false, true, false]);
  assert.deepEqual(torch.tensor([1, Infinity, NaN]).isfinite().toArray(), [true, false, false]);
  assert.deepEqual(torch.tensor([1, NaN]).isnan().toArray(), [false, true]);
});

test('reductions with dims and keepdim', () => {
  const a = m();
  assert.equal(a.sum().item(), 21);
  assert.deepEqual(a.sum(0).toArray(), [5, 7, 9]);
  assert.deepEqual(a.sum(1, { keepdim: true }).toArray(), [[6], [15]]);
  assert.deepEqual(a.sum([0, 1]).toArray(), 21);
  assert.equal(a.sum(undefined, { dtype: 'float64' }).dtype, 'float64');
  assert.deepEqual(a.mean(1).toArray(), [2, 5]);
  assert.equal(a.max().item(), 6);
  const { values, indices } = a.max(1);
  assert.deepEqual(values.toArray(), [3, 6]);
  assert.deepEqual(indices.toArray(), [2, 2]);
  assert.deepEqual(a.min(0).values.toArray(), [1, 2, 3]);
  assert.deepEqual(a.amax(0).toArray(), [4, 5, 6]);
  assert.deepEqual(a.amin(1, true).toArray(), [[1], [4]]);
  assert.equal(a.argmax().item(), 5);
  assert.deepEqual(a.argmax(0).toArray(), [1, 1, 1]);
  assert.deepEqual(a.argmin(1).toArray(), [0, 0]);
  assertClose(a.logsumexp(1).toArray(), [Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)), Math.log(Math.exp(4) + Math.exp(5) + Math.exp(6))]);
  assertClose(a.var(1).toArray(), [1, 1]);
  assertClose(a.var(1, { correction: 0 }).toArray(), [2 / 3, 2 / 3]);
  assertClose(a.std().item(), Math.sqrt(3.5));
  assert.equal(a.prod().item(), 720);
  assert.deepEqual(a.prod(1).toArray(), [6, 120]);
  assert.equal(a.gt(0).all().item(), 1);
  assert.deepEqual(a.gt(4).any(1).toArray(), [false, true]);
  assertClose(torch.tensor([3, 4]).norm().item(), 5);
  assertClose(torch.tensor([3, -4]).norm(1).item(), 7);
});

test('matmul, mm, bmm, baddbmm, addmm, einsum', () => {
  const a = torch.tensor([[1, 2], [3, 4]]);
  const b = torch.tensor([[5, 6], [7, 8]]);
  assert.deepEqual(a.matmul(b).toArray(), [[19, 22], [43, 50]]);
  assert.deepEqual(a.mm(b).toArray(), [[19, 22], [43, 50]]);
  assert.deepEqual(a.matmul(torch.tensor([1, 1])).toArray(), [3, 7]);
  const A = torch.stack([a, b]), B = torch.stack([b, a]);
  assert.deepEqual(A.bmm(B).toArray(), [[[19, 22], [43, 50]], [[23, 34], [31, 46]]]);
  assert.deepEqual(torch.baddbmm(torch.ones([2, 2, 2]), A, B, { beta: 2, alpha: 1 }).index(0).toArray(), [[21, 24], [45, 52]]);
  assert.deepEqual(torch.addmm(torch.ones([2]), a, b).toArray(), [[20, 23], [44, 51]]);
  assert.deepEqual(torch.einsum('ij,jk->ik', a, b).toArray(), [[19, 22], [43, 50]]);
  assert.deepEqual(torch.einsum('ii->', a).toArray(), 5);
});

test('where, maskedFill, cat, stack, split, chunk', () => {
  const a = torch.tensor([1, 2, 3, 4]);
  assert.deepEqual(torch.where(a.gt(2), a, torch.zerosLike(a)).toArray(), [0, 0, 3, 4]);
  assert.deepEqual(torch.where(a.gt(2), a, -1).toArray(), [-1, -1, 3, 4]);
  assert.deepEqual(torch.where(a.gt(2), 1, 0).toArray(), [0, 0, 1, 1]);
  assert.deepEqual(a.maskedFill(a.lt(3), 0).toArray(), [0, 0, 3, 4]);
  assert.deepEqual(torch.cat([a, a.index('0:2')]).toArray(), [1, 2, 3, 4, 1, 2]);
  assert.deepEqual(torch.stack([a, a], 1).shape, [4, 2]);
  assert.deepEqual(a.split(3).map((t) => t.toArray()), [[1, 2, 3], [4]]);
  assert.deepEqual(a.split([1, 3]).map((t) => t.toArray()), [[1], [2, 3, 4]]);
  assert.deepEqual(a.chunk(2).map((t) => t.toArray()), [[1, 2], [3, 4]]);
});

test('gather, scatter, scatterAdd, indexSelect, indexAdd', () => {
  const a = torch.tensor([[1, 2], [3, 4]]);
  assert.deepEqual(a.gather(1, torch.tensor([[1n], [0n]])).toArray(), [[2], [3]]);
  assert.deepEqual(torch.zeros([2, 3]).scatter(1, torch.tensor([[2n], [0n]]), torch.tensor([[5], [6]])).toArray(), [[0, 0, 5], [6, 0, 0]]);
  assert.deepEqual(torch.zeros([3]).scatter(0, torch.tensor([1n]), 9).toArray(), [0, 9, 0]);
  assert.deepEqual(torch.zeros([3]).scatterAdd(0, torch.tensor([0n, 0n, 2n]), torch.tensor([1, 2, 3])).toArray(), [3, 0, 3]);
  assert.deepEqual(a.indexSelect(0, torch.tensor([1n, 1n])).toArray(), [[3, 4], [3, 4]]);
  assert.deepEqual(torch.zeros([3, 2]).indexAdd(0, torch.tensor([0n, 0n]), torch.ones([2, 2])).toArray(), [[2, 2], [0, 0], [0, 0]]);
});

test('topk, sort, argsort, cumsum, oneHot, bincount, nonzero, multinomial', () => {
  const a = torch.tensor([3, 1, 4, 1, 5]);
  const { values, indices } = a.topk(2);
  assert.deepEqual(values.toArray(), [5, 4]);
  assert.deepEqual(indices.toArray(), [4, 2]);
  assert.deepEqual(a.topk(2, -1, false).values.toArray(), [1, 1]);
  assert.deepEqual(a.sort().values.toArray(), [1, 1, 3, 4, 5]);
  assert.deepEqual(a.sort(-1, true).values.toArray(), [5, 4, 3, 1, 1]);
  assert.deepEqual(torch.tensor([3, 1, 2]).argsort().toArray(), [1, 2, 0]);
  assert.deepEqual(a.cumsum(0).toArray(), [3, 4, 8, 9, 14]);
  assert.deepEqual(torch.tensor([0n, 2n]).oneHot(3).toArray(), [[1, 0, 0], [0, 0, 1]]);
  assert.deepEqual(torch.tensor([0n, 2n, 2n]).bincount().toArray(), [1, 0, 2]);
  assert.deepEqual(torch.tensor([0n, 2n]).bincount(torch.tensor([0.5, 2]), 4).toArray(), [0.5, 0, 2, 0]);
  assert.deepEqual(torch.tensor([[0, 1], [1, 0]]).nonzero().toArray(), [[0, 1], [1, 0]]);
  torch.manualSeed(1);
  const s = torch.tensor([0, 0, 1, 0]).multinomial(5, true);
  assert.deepEqual(s.toArray(), [2, 2, 2, 2, 2]);
  torch.manualSeed(7);
  const x = torch.tensor([1, 1, 1, 1]).multinomial(4).toArray();
  torch.manualSeed(7);
  assert.deepEqual(torch.tensor([1, 1, 1, 1]).multinomial(4).toArray(), x);
  assert.deepEqual([...(x as number[])].sort(), [0, 1, 2, 3]);
});

test('in-place ops update the tensor and return it', () => {
  const t = torch.tensor([1, 2]);
  assert.equal(t.add_(1), t);
  t.mul_(2).sub_(torch.tensor([1, 1])).div_(torch.tensor([1, 2]));
  assert.deepEqual(t.toArray(), [3, 2.5]);
  t.addcmul_(torch.tensor([1, 1]), torch.tensor([2, 3]), 2).addcdiv_(torch.tensor([4, 4]), torch.tensor([2, 4]));
  assert.deepEqual(t.toArray(), [9, 9.5]);
  t.lerp_(torch.tensor([10, 10]), 0.5);
  assert.deepEqual(t.toArray(), [9.5, 9.75]);
  t.clamp_(0, 9.6).maskedFill_(t.gt(9.55), 0);
  assert.deepEqual(t.toArray(), [9.5, 0]);
  assert.deepEqual(t.zero_().toArray(), [0, 0]);
});

test('call() reaches any ATen operator by name, with keyword arguments', () => {
  assertClose((torch.call('aten::frac', '', [torch.tensor([1.5, -2.25])]) as torch.Tensor).toArray(), [0.5, -0.25]);
  const s = torch.call('aten::sum', 'dim_IntList', [m(), [1]], { keepdim: true, dtype: 'float64' }) as torch.Tensor;
  assert.equal(s.dtype, 'float64');
  assert.deepEqual(s.toArray(), [[6], [15]]);
  assert.throws(() => torch.call('aten::sum', 'dim_IntList', [m(), [1]], { keep: true }), /has no argument 'keep'.*keepdim: bool/);
  assert.throws(() => torch.call('aten::no_such_op', '', []), /no operator aten::no_such_op/);
});
