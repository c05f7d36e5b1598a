import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { assertClose } from '../helpers.js';

const F = torch.nn;

test('backward on a scalar fills .grad of leaves', () => {
  const x = torch.tensor([1, 2, 3], { requiresGrad: true });
  x.mul(x).sum().backward();
  assert.deepEqual(x.grad?.toArray(), [2, 4, 6]);
  assert.equal(x.isLeaf, true);
});

test('backward with a gradient argument (vector-Jacobian product)', () => {
  const x = torch.tensor([1, 2], { requiresGrad: true });
  x.mul(3).backward(torch.tensor([1, 10]));
  assert.deepEqual(x.grad?.toArray(), [3, 30]);
  assert.throws(() => x.mul(3).backward(), /gradient argument is needed for a non-scalar/);
});

test('gradients accumulate across backward calls until reset', () => {
  const x = torch.tensor([1], { requiresGrad: true });
  x.mul(2).sum().backward();
  x.mul(5).sum().backward();
  assert.deepEqual(x.grad?.toArray(), [7]);
  x.grad = undefined;
  assert.equal(x.grad, undefined);
  x.mul(2).sum().backward();
  assert.deepEqual((x.grad as torch.Tensor | undefined)?.toArray(), [2]);
});

test('retainGraph allows a second backward through the same graph', () => {
  const x = torch.tensor([2], { requiresGrad: true });
  const y = x.pow(3).sum();
  y.backward(undefined, { retainGraph: true });
  y.backward();
  assert.deepEqual(x.grad?.toArray(), [24]);
});

test('noGrad, enableGrad, detach', () => {
  const x = torch.tensor([1], { requiresGrad: true });
  const y = torch.noGrad(() => x.mul(2));
  assert.equal(y.requiresGrad, false);
  assert.equal(torch.isGradEnabled(), true);
  const z = torch.noGrad(() => torch.enableGrad(() => x.mul(2)));
  assert.equal(z.requiresGrad, true);
  assert.equal(x.mul(2).detach().requiresGrad, false);
  assert.throws(() => torch.noGrad(() => { throw new Error('boom'); }), /boom/);
  assert.equal(torch.isGradEnabled(), true, 'grad mode restored after a throw');
  assert.throws(() => x.expand(2).mul(2).backward(), /gradient argument/);
  assert.throws(() => y.sum().backward(), /does not require grad/);
});

test('requiresGrad only on floating-point leaves', () => {
  assert.throws(() => torch.tensor([1n]).requiresGrad_(), /floating-point/);
  const x = torch.tensor([1], { requiresGrad: true });
  assert.throws(() => x.mul(2).requiresGrad_(), /leaf/);
});

test('retainGrad keeps the gradient of an intermediate tensor', () => {
  const x = torch.tensor([1, 2], { requiresGrad: true });
  const h = x.mul(2).retainGrad();
  h.sum().backward();
  assert.deepEqual(h.grad?.toArray(), [1, 1]);
});

// Finite-difference checks in float64 of every differentiable op family the model uses.
const d = (shape: number[], scale = 1) => torch.randn(shape, { dtype: 'float64' }).mul(scale).requiresGrad_();
const cases: [string, () => [(...xs: torch.Tensor[]) => torch.Tensor, torch.Tensor[]]][] = [
  ['add/sub/mul/div broadcasting', () => [(a, b) => a.add(b).mul(a).sub(b.mul(2)).div(b.abs().add(1)), [d([3, 4]), d([4])]]],
  ['pow/exp/log/sqrt', () => [(a) => a.abs().add(0.5).pow(1.5).add(a.exp()).add(a.abs().add(1).log()).add(a.abs().add(1).sqrt()), [d([5])]]],
  ['tanh/sigmoid/gelu/silu/relu', () => [(a) => a.tanh().add(a.sigmoid()).add(a.gelu()).add(a.silu()).add(a.add(0.01).relu()), [d([6])]]],
  ['sum/mean/var/logsumexp/max', () => [(a) => a.sum(1).add(a.mean(0).sum()).add(a.var(1)).add(a.logsumexp(1)).add(a.amax(1)), [d([3, 4])]]],
  ['matmul/bmm/baddbmm/einsum', () => [(a, b) => a.matmul(b).sum(0).add(torch.baddbmm(a.bmm(b), a, b).sum(0)).add(torch.einsum('bij,bjk->ik', a, b)), [d([2, 3, 3]), d([2, 3, 3])]]],
  ['views and indexing', () => [(a) => a.transpose(0, 1).reshape(2, 6).index(':', '1:5').mul(a.index(0).sum()).add(a.permute(1, 0).flatten().index('0:4').unsqueeze(0)), [d([3, 4])]]],
  ['cat/stack/split/where/maskedFill', () => [(a, b) => {
    const [p, q] = torch.cat([a, b]).split(3);
    return torch.where(p.gt(0), p, q.mul(2)).add(torch.stack([p, q]).sum(0)).maskedFill(p.lt(-1.5), 0);
  }, [d([3, 2]), d([3, 2])]]],
  ['gather/indexSelect/scatterAdd/indexAdd', () => [(a) => {
    const idx = torch.tensor([[0n, 2n], [1n, 1n]]);
    return a.gather(1, idx).add(a.indexSelect(1, torch.tensor([2n, 0n]))).sum().add(torch.zeros([2, 3], { dtype: 'float64' }).scatterAdd(1, idx, a.index(':', '0:2')).sum())
      .add(a.indexAdd(0, torch.tensor([1n, 0n]), a).sum());
  }, [d([2, 3])]]],
  ['linear/layerNorm/rmsNorm', () => [(x, w, b) => F.rmsNorm(F.layerNorm(F.linear(x, w, b), [3], w.index(0), b), [3], w.index(1)), [d([2, 3]), d([3, 3]), d([3])]]],
  ['softmax/logSoftmax/crossEntropy (smoothing, ignore)', () => [(x) => F.softmax(x, -1).sum(0).add(F.logSoftmax(x, -1).sum(0)).sum()
    .add(F.crossEntropy(x, torch.tensor([1n, -100n, 2n]), { labelSmoothing: 0.1 })), [d([3, 4])]]],
  ['mse/embedding', () => [(w, y) => F.mseLoss(F.embedding(torch.tensor([[1n, 0n]]), w), y), [d([3, 2]), d([1, 2, 2])]]],
  ['conv2d/convTranspose2d/pools/interpolate', () => [(x, k) => {
    const c = F.conv2d(x, k, undefined, { padding: 1 });
    const t = F.convTranspose2d(c, k, undefined, { stride: 2 });
    return F.avgPool2d(t, 2).sum().add(F.maxPool2d(c, 2).sum()).add(F.interpolate(c, { scaleFactor: 2, mode: 'bilinear' }).sum());
  }, [d([1, 2, 4, 4]), d([2, 2, 3, 3], 0.5)]]],
  ['scaledDotProductAttention (mask)', () => [(q, k, v) => F.scaledDotProductAttention(q, k, v, { mask: torch.tensor([[true, false, true], [true, true, false]]) }), [d([2, 2, 4]), d([2, 3, 4]), d([2, 3, 4])]]],
  ['scaledDotProductAttention (causal)', () => [(q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true }), [d([1, 3, 4]), d([1, 3, 4]), d([1, 3, 4])]]],
  ['cumsum/topk/sort/norm', () => [(a) => a.cumsum(1).sum(0).add(a.topk(2).values.sum()).add(a.sort(1).values.index(':', 0).sum()).add(a.norm()), [d([3, 4])]]],
];
for (const [name, make] of cases) {
  test(`gradcheck: ${name}`, () => {
    torch.manualSeed(3);
    const [fn, inputs] = make();
    const r = torch.gradcheck(fn, inputs);
    assert.ok(r.ok, `${name}: max error ${r.maxError} at ${r.where}`);
  });
}

test('gradcheck catches a wrong gradient', () => {
  // detach() hides part of the function from autograd: the check must fail.
  const r = torch.gradcheck((a) => a.mul(a.detach()), [d([3])]);
  assert.equal(r.ok, false);
});

test('autocast runs matmul in bf16 and restores the previous state', () => {
  const a = torch.randn([8, 8]);
  const y = torch.autocast(() => a.matmul(a));
  assert.equal(y.dtype, 'bfloat16');
  assert.equal(a.matmul(a).dtype, 'float32');
  assertClose(y.float().sum().item(), a.matmul(a).sum().item(), 0.1);
  const nested = torch.autocast(() => torch.autocast(() => a.matmul(a), { enabled: false }));
  assert.equal(nested.dtype, 'float32');
  // Gradients flow through autocast back to the fp32 leaf.
  const w = torch.randn([8, 8], { requiresGrad: true });
  torch.autocast(() => a.matmul(w).float().sum()).backward();
  assert.equal(w.grad?.dtype, 'float32');
});

test('callAsync runs off the main thread and carries grad mode with it', async () => {
  const w = torch.randn([16, 16], { requiresGrad: true });
  const withGrad = await torch.callAsync('aten::matmul', '', [w, w]) as torch.Tensor;
  assert.equal(withGrad.requiresGrad, true);
  torch.setGradEnabled(false);
  let pending: Promise<torch.CallResult>;
  try {
    pending = torch.callAsync('aten::matmul', '', [w, w]);
  } finally {
    torch.setGradEnabled(true);
  }
  const noGradResult = await pending as torch.Tensor;
  assert.equal(noGradResult.requiresGrad, false, 'grad mode at the call, not on the worker thread, decides');
  assertClose(noGradResult.sum().item(), withGrad.sum().item(), 1e-3);
  await assert.rejects(torch.callAsync('aten::mm', '', [torch.ones([2, 3]), torch.ones([2, 3])]), /aten::mm/);
});

test('GELU gradients are right whatever the layout of the incoming gradient (libtorch 1.13 kernel bug worked around)', () => {
  torch.manualSeed(11);
  const w = torch.randn([16, 8]);
  const x = torch.randn([4, 16, 32], { requiresGrad: true });
  x.gelu().transpose(1, 2).matmul(w).sum().backward();
  const xd = x.detach().double().requiresGrad_();
  xd.gelu().transpose(1, 2).matmul(w.double()).sum().backward();
  assertClose(x.grad!.double().sub(xd.grad!).abs().max().item(), 0, 1e-5);
  // A non-contiguous input too.
  const y = torch.randn([32, 16], { requiresGrad: true });
  y.T.gelu().matmul(torch.randn([32, 3])).sum().backward();
  const yd = y.detach().double().requiresGrad_();
  yd.T.gelu().matmul(torch.randn([32, 3], { dtype: 'float64' }).mul(0)).sum().backward();
  assert.ok(y.grad!.isfinite().all().item());
});
