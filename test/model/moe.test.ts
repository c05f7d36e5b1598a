import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { MoeLayer, Ffn } from '../../src/model/index.js';
import { assertClose } from '../helpers.js';

test('routing never exceeds capacity; overflow is dropped and counted', () => {
  torch.manualSeed(0);
  const moe = new MoeLayer(16, 32, { experts: 4, capacityFactor: 1.0 });
  // Push every token to expert 2: its queue overflows at capacity C = ⌈1.0 · N / 4⌉.
  torch.noGrad(() => moe.router.zero_().index(2).fill_(1));
  const x = torch.rand([40, 16]).add(0.1);
  const r = moe.route(x);
  const C = moe.capacity(40);
  assert.equal(C, 10);
  const { position } = (moe as unknown as { positions(e: torch.Tensor): { position: torch.Tensor } }).positions(r.expert);
  const kept = position.lt(C);
  const perExpert = torch.zeros([4]).indexAdd(0, r.expert.index(kept), torch.ones([kept.sum().item()])).toArray() as number[];
  assert.ok(perExpert.every((n) => n <= C), `per-expert ${perExpert}`);
  const out = moe.forward(x);
  assertClose(out.dropped.item(), 30 / 40);
  assertClose(out.load.toArray(), [0, 0, 1, 0]);
  // Dropped tokens get exactly zero from the MoE (the residual carries them).
  const zeroRows = out.out.abs().sum(1).eq(0).sum().item();
  assert.equal(zeroRows, 30);
});

test('the load-balancing loss equals its analytic value (1) on a uniform router', () => {
  for (const [groups, topK] of [[1, 1], [1, 2], [4, 1]]) {
    const moe = new MoeLayer(8, 16, { experts: 8, groups, topK });
    torch.noGrad(() => moe.router.zero_());  // all logits 0: every expert equally likely
    const r = moe.route(torch.randn([64, 8]));
    assertClose(r.auxLoss.item(), 1, 1e-6);
    assertClose(r.zLoss.item(), Math.log(8) ** 2, 1e-5);
  }
});

test('an MoE layer with one expert equals a dense FFN with the same weights (capacity and dropless)', () => {
  torch.manualSeed(1);
  const dense = new Ffn(16, 32);
  for (const capacityFactor of [1.0, 0]) {
    const moe = new MoeLayer(16, 32, { experts: 1, capacityFactor });
    torch.noGrad(() => {
      moe.w1.select(0, 0).copy_(dense.fc.weight.T);  // experts store (in, out)
      moe.b1.select(0, 0).copy_(dense.fc.bias!);
      moe.w2.select(0, 0).copy_(dense.proj.weight.T);
      moe.b2.select(0, 0).copy_(dense.proj.bias!);
    });
    const x = torch.randn([10, 16]);
    // With one expert the router's softmax is exactly 1.
    assertClose(moe.forward(x).out.toArray(), dense.forward(x).toArray(), 1e-5);
  }
});

test('dropless and capacity dispatch agree when nothing is dropped; expert prototyping picks one expert per group', () => {
  torch.manualSeed(2);
  const a = new MoeLayer(16, 32, { experts: 8, groups: 2, capacityFactor: 8 });
  const b = new MoeLayer(16, 32, { experts: 8, groups: 2, capacityFactor: 0 });
  b.loadStateDict(a.stateDict());
  const x = torch.randn([32, 16]);
  const ra = a.forward(x), rb = b.forward(x);
  assert.equal(ra.dropped.item(), 0);
  assertClose(ra.out.toArray(), rb.out.toArray(), 1e-5);
  const r = a.route(x);
  assert.equal(r.expert.shape[0], 64);
  const first = r.expert.narrow(0, 0, 32), second = r.expert.narrow(0, 32, 32);
  assert.ok(first.lt(4).all().item() && second.ge(4).all().item(), 'group 0 routes to experts 0-3, group 1 to 4-7');
});

test('gradients reach the router and every expert that receives tokens', () => {
  torch.manualSeed(3);
  const moe = new MoeLayer(8, 16, { experts: 4, capacityFactor: 2 });
  const r = moe.forward(torch.randn([256, 8]));
  r.out.sum().add(r.auxLoss).backward();
  for (const [k, p] of moe.namedParameters()) assert.ok(p.grad && p.grad.abs().sum().item() > 0, `${k} got no gradient`);
});

test('in eval mode nothing is dropped: a token\'s output does not depend on its batch-mates', () => {
  torch.manualSeed(5);
  const moe = new MoeLayer(16, 32, { experts: 4, capacityFactor: 0.5 });
  torch.noGrad(() => moe.router.zero_().index(1).fill_(1));  // everyone wants expert 1
  const x = torch.rand([12, 16]).add(0.1);
  assert.ok(moe.forward(x).dropped.item() > 0, 'training drops over capacity');
  moe.eval();
  const all = moe.forward(x).out;
  assertClose(moe.forward(x.narrow(0, 0, 1)).out.toArray(), all.narrow(0, 0, 1).toArray(), 1e-6);
  assert.equal(moe.forward(x).dropped.item(), 0);
});
