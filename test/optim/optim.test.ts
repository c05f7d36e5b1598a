import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { AdamW, SGD, clipGradNorm, warmupCosine, inverseSqrt, constant, applySchedule } from '../../src/optim/index.js';
import { assertClose } from '../helpers.js';

function adamwReference(p: number, grads: number[], o: { lr: number; b1: number; b2: number; eps: number; wd: number }): number {
  let m = 0, v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p *= 1 - o.lr * o.wd;
    m = o.b1 * m + (1 - o.b1) * g;
    v = o.b2 * v + (1 - o.b2) * g * g;
    const mhat = m / (1 - o.b1 ** t);
    const denom = Math.sqrt(v) / Math.sqrt(1 - o.b2 ** t) + o.eps;
    p -= o.lr * mhat / denom;
  });
  return p;
}

test('AdamW matches the reference update (decoupled weight decay, bias correction)', () => {
  const p = torch.tensor([1.0, -2.0], { dtype: 'float64', requiresGrad: true });
  const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.5 });
  const gradsFor = (x: number) => [2 * x, 0.3, -1];
  const expected = [1.0, -2.0].map((x0) => {
    let x = x0;
    const hist: number[] = [];
    for (let s = 0; s < 3; s++) { hist.push(x * 2); x = adamwReference(x0, hist, { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.5 }); }
    return x;
  });
  for (let s = 0; s < 3; s++) {
    opt.zeroGrad();
    p.square().sum().backward();  // grad = 2p
    opt.step();
  }
  assertClose(p.toArray(), expected, 1e-10);
  assert.equal(gradsFor(1).length, 3);
  assert.equal(opt.stepCount, 3);
});

test('AdamW updates large parameters block by block exactly as small ones', () => {
  torch.manualSeed(4);
  const big = torch.randn([5, 70000], { dtype: 'float64', requiresGrad: true });  // > 4 blocks: the blocked path
  const pieces = big.detach().split(1).map((t) => t.clone().requiresGrad_());   // 70k each: the multi-tensor path
  const a = new AdamW([big], { lr: 0.01, weightDecay: 0.1 });
  const b = new AdamW(pieces, { lr: 0.01, weightDecay: 0.1 });
  for (let s = 0; s < 3; s++) {
    a.zeroGrad(); b.zeroGrad();
    big.pow(3).sum().backward();
    for (const q of pieces) q.pow(3).sum().backward();
    a.step(); b.step();
  }
  assertClose(torch.cat(pieces).flatten().index('0:2000').toArray(), big.flatten().index('0:2000').toArray(), 1e-12);
  assertClose(torch.cat(pieces).sub(big).abs().max().item(), 0, 1e-12);
});

test('AdamW parameter groups keep their own hyper-parameters; state dict round trip', () => {
  const a = torch.ones([2], { requiresGrad: true });
  const b = torch.ones([2], { requiresGrad: true });
  const opt = new AdamW([{ params: [a], weightDecay: 0 }, { params: [b], lr: 0 }], { lr: 0.1 });
  a.sum().add(b.sum()).backward();
  opt.step();
  assert.ok(a.index(0).item() < 1);
  assert.deepEqual(b.toArray(), [1, 1]);
  const state = opt.stateDict();
  assert.deepEqual(Object.keys(state.tensors).sort(), ['0.expAvg', '0.expAvgSq', '1.expAvg', '1.expAvgSq']);
  const opt2 = new AdamW([{ params: [a], weightDecay: 0 }, { params: [b], lr: 0 }], { lr: 0.1 });
  opt2.loadStateDict(state);
  assert.equal(opt2.stepCount, 1);
  assert.deepEqual(opt2.stateDict().tensors['0.expAvg'].toArray(), state.tensors['0.expAvg'].toArray());
  assert.throws(() => new AdamW([a, a]), /more than one group/);
  assert.throws(() => new AdamW([torch.ones([1])]), /does not require grad/);
});

test('SGD with momentum and Nesterov', () => {
  const p = torch.tensor([1.0], { dtype: 'float64', requiresGrad: true });
  const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
  // grad = 1 each step: b1 = 1, b2 = 1.9; p = 1 - 0.1 - 0.19
  for (let i = 0; i < 2; i++) { opt.zeroGrad(); p.sum().backward(); opt.step(); }
  assertClose(p.item(), 1 - 0.1 - 0.19, 1e-12);
  const q = torch.tensor([1.0], { dtype: 'float64', requiresGrad: true });
  const nes = new SGD([q], { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0 });
  for (let i = 0; i < 2; i++) { nes.zeroGrad(); q.sum().backward(); nes.step(); }
  // step1: b=1, g+μb = 1.9 → 0.81; step2: b=1.9, g+μb = 2.71 → 0.539
  assertClose(q.item(), 1 - 0.19 - 0.271, 1e-12);
});

test('clipGradNorm scales gradients to the max norm and returns the norm before', () => {
  const a = torch.tensor([3, 0], { requiresGrad: true });
  const b = torch.tensor([0, 4], { requiresGrad: true });
  a.mul(torch.tensor([1, 1])).sum().backward();  // grad a = [1, 1]
  a.grad = torch.tensor([3, 0]);
  b.grad = torch.tensor([0, 4]);
  const n = clipGradNorm([a, b], 1);
  assertClose(n, 5);
  assertClose(a.grad?.toArray() ?? [], [0.6, 0], 1e-5);
  assertClose(b.grad?.toArray() ?? [], [0, 0.8], 1e-5);
  assertClose(clipGradNorm([a, b], 10), 1, 1e-5);
  assertClose(a.grad?.toArray() ?? [], [0.6, 0], 1e-5);
  // A 0-d parameter (a learnt temperature) is clipped too.
  const s = torch.tensor(2, { requiresGrad: true });
  s.grad = torch.tensor(6);
  b.grad = torch.tensor([0, 8]);
  assertClose(clipGradNorm([s, b], 5), 10, 1e-5);
  assertClose(s.grad?.item() ?? 0, 3, 1e-5);
});

test('learning-rate schedules', () => {
  const s = warmupCosine({ warmup: 10, total: 110, minRatio: 0.1 });
  assertClose(s(0), 0.1);
  assertClose(s(9), 1);
  assertClose(s(60), 0.55);
  assertClose(s(110), 0.1);
  assertClose(s(1000), 0.1);
  const inv = inverseSqrt({ warmup: 4 });
  assertClose(inv(3), 1);
  assertClose(inv(15), 0.5);
  assert.equal(constant()(123), 1);
  const p = torch.ones([1], { requiresGrad: true });
  const opt = new AdamW([p], { lr: 0.5 });
  applySchedule(opt, s, 60);
  assertClose(opt.groups[0].hyper.lr, 0.275);
  applySchedule(opt, s, 9);
  assertClose(opt.groups[0].hyper.lr, 0.5);
  assert.throws(() => warmupCosine({ warmup: 10, total: 5 }), /must exceed/);
});

test('manualSeed makes a small training run identical run to run', () => {
  const run = () => torch.scope(() => {
    torch.manualSeed(123);
    const w = torch.randn([8, 4], { requiresGrad: true }).keep();
    const opt = new AdamW([w], { lr: 0.01 });
    for (let i = 0; i < 5; i++) {
      torch.scope(() => {
        const x = torch.randn([16, 8]);
        const y = torch.nn.dropout(x.matmul(w), 0.1).square().mean();
        opt.zeroGrad();
        y.backward();
        opt.step();
      });
    }
    return w.toArray();
  });
  assert.deepEqual(run(), run());
});
