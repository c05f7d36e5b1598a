import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { assertClose } from '../helpers.js';

const F = torch.nn;

test('linear and embedding', () => {
  const x = torch.tensor([[1, 2]]);
  const w = torch.tensor([[1, 0], [0, 1], [1, 1]]);
  assert.deepEqual(F.linear(x, w).toArray(), [[1, 2, 3]]);
  assert.deepEqual(F.linear(x, w, torch.tensor([1, 1, 1])).toArray(), [[2, 3, 4]]);
  const table = torch.tensor([[0, 0], [1, 1], [2, 2]]);
  assert.deepEqual(F.embedding(torch.tensor([[2n, 0n]]), table).toArray(), [[[2, 2], [0, 0]]]);
});

test('layerNorm and rmsNorm', () => {
  const x = torch.tensor([[1, 2, 3], [2, 4, 6]]);
  const s = Math.sqrt(2 / 3 + 1e-5);
  assertClose(F.layerNorm(x, [3]).index(0).toArray(), [-1 / s, 0, 1 / s], 1e-4);
  assertClose(F.layerNorm(x, [3], torch.tensor([2, 2, 2]), torch.tensor([1, 1, 1])).index(0).toArray(), [1 - 2 / s, 1, 1 + 2 / s], 1e-4);
  const rms = Math.sqrt((1 + 4 + 9) / 3 + 1e-6);
  assertClose(F.rmsNorm(x, [3]).index(0).toArray(), [1 / rms, 2 / rms, 3 / rms], 1e-5);
  assertClose(F.rmsNorm(x, [3], torch.tensor([1, 0, 2])).index(0).toArray(), [1 / rms, 0, 6 / rms], 1e-5);
});

test('softmax and logSoftmax', () => {
  const x = torch.tensor([1, 2, 3]);
  const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
  assertClose(F.softmax(x, 0).toArray(), [Math.exp(1) / z, Math.exp(2) / z, Math.exp(3) / z]);
  assertClose(F.logSoftmax(x, 0).toArray(), [1 - Math.log(z), 2 - Math.log(z), 3 - Math.log(z)]);
  assert.equal(F.softmax(x.bfloat16(), 0, 'float32').dtype, 'float32');
});

test('dropout zeroes with probability p and rescales; identity when not training', () => {
  torch.manualSeed(0);
  const x = torch.ones([10000]);
  const y = F.dropout(x, 0.25);
  const kept = y.ne(0).sum().item();
  assert.ok(Math.abs(kept / 10000 - 0.75) < 0.03, `kept ${kept}`);
  assertClose(y.max().item(), 1 / 0.75);
  assert.deepEqual(F.dropout(x, 0.5, false).sum().item(), 10000);
  assert.throws(() => F.dropout(x, 1.5), /\[0, 1\]/);
});

test('conv2d and convTranspose2d', () => {
  const img = torch.arange(16, undefined, 1, { dtype: 'float32' }).reshape(1, 1, 4, 4);
  const k = torch.ones([1, 1, 2, 2]);
  assert.deepEqual(F.conv2d(img, k, undefined, { stride: 2 }).toArray(), [[[[10, 18], [42, 50]]]]);
  assert.deepEqual(F.conv2d(img, k, torch.tensor([1]), { padding: 1 }).shape, [1, 1, 5, 5]);
  const up = F.convTranspose2d(torch.tensor([[[[1, 2], [3, 4]]]]), k, undefined, { stride: 2 });
  assert.deepEqual(up.toArray(), [[[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]]]);
});

test('interpolate, pooling, pad', () => {
  const x = torch.tensor([[[[1, 2], [3, 4]]]]);
  assert.deepEqual(F.interpolate(x, { scaleFactor: 2 }).toArray(), [[[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]]]);
  assertClose(F.interpolate(x, { size: [3, 3], mode: 'bilinear', alignCorners: true }).toArray(), [[[[1, 1.5, 2], [2, 2.5, 3], [3, 3.5, 4]]]]);
  assert.deepEqual(F.avgPool2d(x, 2).toArray(), [[[[2.5]]]]);
  assert.deepEqual(F.maxPool2d(x, 2).toArray(), [[[[4]]]]);
  assert.deepEqual(F.adaptiveAvgPool2d(x, 1).toArray(), [[[[2.5]]]]);
  assert.deepEqual(F.pad(torch.tensor([[1, 2]]), [1, 0, 0, 1]).toArray(), [[0, 1, 2], [0, 0, 0]]);
});

test('crossEntropy with ignoreIndex and label smoothing; mse', () => {
  const logits = torch.tensor([[0, 0, Math.log(2)], [1, 1, 1]]);
  const target = torch.tensor([2n, -100n]);
  // Row 0: p = [1/4, 1/4, 1/2] → −log(1/2); row 1 ignored.
  assertClose(F.crossEntropy(logits, target).item(), Math.log(2));
  assertClose(F.crossEntropy(logits, torch.tensor([2n, 0n]), { reduction: 'none' }).toArray(), [Math.log(2), Math.log(3)]);
  assertClose(F.crossEntropy(logits, torch.tensor([2n, 0n]), { reduction: 'sum' }).item(), Math.log(2) + Math.log(3));
  // Label smoothing ε: (1−ε)·nll + ε·mean over classes of −log p.
  const eps = 0.1;
  const smooth = (1 - eps) * Math.log(2) + eps * (Math.log(4) + Math.log(4) + Math.log(2)) / 3;
  assertClose(F.crossEntropy(logits, target, { labelSmoothing: eps }).item(), smooth);
  assertClose(F.mseLoss(torch.tensor([1, 2]), torch.tensor([2, 4])).item(), 2.5);
  assertClose(F.mseLoss(torch.tensor([1, 2]), torch.tensor([2, 4]), 'sum').item(), 5);
});

test('scaledDotProductAttention with boolean, additive and causal masks', () => {
  const q = torch.tensor([[[1, 0], [0, 1]]]);
  const k = torch.tensor([[[1, 0], [0, 1]]]);
  const v = torch.tensor([[[1, 2], [3, 4]]]);
  // Unmasked: row 0 weights softmax([1, 0]/√2).
  const w = 1 / (1 + Math.exp(-1 / Math.SQRT2));
  assertClose(F.scaledDotProductAttention(q, k, v).index(0, 0).toArray(), [w * 1 + (1 - w) * 3, w * 2 + (1 - w) * 4], 1e-5);
  // Causal: row 0 sees only key 0.
  assertClose(F.scaledDotProductAttention(q, k, v, { isCausal: true }).index(0, 0).toArray(), [1, 2]);
  const allowOnly1 = torch.tensor([[false, true], [false, true]]);
  assertClose(F.scaledDotProductAttention(q, k, v, { mask: allowOnly1 }).index(0).toArray(), [[3, 4], [3, 4]]);
  const additive = torch.tensor([[0, -Infinity], [0, -Infinity]]);
  assertClose(F.scaledDotProductAttention(q, k, v, { mask: additive }).index(0).toArray(), [[1, 2], [1, 2]]);
  assertClose(F.scaledDotProductAttention(q, k, v, { scale: 0 }).index(0, 0).toArray(), [2, 3]);
});

test('scaledDotProductAttention: one query (a decode step, the broadcast path) agrees with the same query among others (the matmul path)', () => {
  torch.manualSeed(4);
  const [B, H, L, hd] = [3, 2, 7, 8];
  const q2 = torch.randn([B, H, 2, hd]), k = torch.randn([B, H, L, hd]), v = torch.randn([B, H, L, hd]);
  const mask = torch.randn([B, 1, 1, L]).gt(-0.5);  // some keys hidden, per row
  const both = F.scaledDotProductAttention(q2, k, v, { mask });           // Tq = 2: matmuls
  const last = F.scaledDotProductAttention(q2.narrow(2, 1, 1).contiguous(), k, v, { mask });  // Tq = 1
  assert.deepEqual(last.shape, [B, H, 1, hd]);
  assertClose(last.flatten().toArray(), both.narrow(2, 1, 1).flatten().toArray(), 1e-5);
});
