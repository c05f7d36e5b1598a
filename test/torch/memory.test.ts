import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';

test('scope frees temporaries and lets the returned tensors out', () => {
  const before = torch.liveTensors();
  const kept = torch.scope(() => {
    const a = torch.ones([4]);
    const b = a.mul(2);
    a.add(b);
    return { out: b.sum(), list: [b.mul(3)] };
  });
  assert.equal(torch.liveTensors(), before + 2);
  assert.equal(kept.out.item(), 8);
  assert.deepEqual(kept.list[0].toArray(), [6, 6, 6, 6]);
  kept.out.dispose();
  kept.list[0].dispose();
  assert.equal(torch.liveTensors(), before);
});

test('nested scopes move results one level up; keep() outlives them all', () => {
  const before = torch.liveTensors();
  let inner!: torch.Tensor, kept!: torch.Tensor;
  torch.scope(() => {
    inner = torch.scope(() => torch.ones([2]).mul(2));
    assert.equal(inner.isDisposed, false, 'returned from the inner scope');
    kept = torch.ones([2]).keep();
  });
  assert.equal(inner.isDisposed, true, 'freed by the outer scope');
  assert.equal(kept.isDisposed, false);
  kept.dispose();
  assert.equal(torch.liveTensors(), before);
});

test('a 10,000-iteration op loop inside scopes leaves the live count unchanged and RSS flat', () => {
  const x = torch.randn([64, 64]);
  const w = torch.randn([64, 64], { requiresGrad: true });
  const step = () => torch.scope(() => {
    const y = x.matmul(w).relu().sum();
    y.backward();
    w.grad = undefined;
  });
  for (let i = 0; i < 500; i++) step();  // warm the allocator
  const live = torch.liveTensors();
  const rss0 = process.memoryUsage().rss;
  for (let i = 0; i < 10_000; i++) step();
  const rss1 = process.memoryUsage().rss;
  assert.equal(torch.liveTensors(), live);
  assert.ok(rss1 - rss0 < 32 * 1024 * 1024, `RSS grew by ${((rss1 - rss0) / 1048576).toFixed(1)} MiB`);
});

test('using / dispose free at once; a disposed tensor throws on use', () => {
  const before = torch.liveTensors();
  {
    using t = torch.ones([3]);
    assert.equal(torch.liveTensors(), before + 1);
    assert.equal(t.sum().item(), 3);
  }
  // t.sum() above escaped to no scope (finalizer-managed); t itself is gone.
  const u = torch.ones([2]);
  u.dispose();
  u.dispose();  // twice is harmless
  assert.throws(() => u.add(1), /disposed/);
  assert.throws(() => u.shape, /disposed/);
});

test('scope rejects async functions; scopeAsync follows the async context', async () => {
  assert.throws(() => torch.scope(async () => 1), /scopeAsync/);
  const before = torch.liveTensors();
  const [a, b] = await Promise.all([1, 2].map((k) => torch.scopeAsync(async () => {
    const t = torch.full([2], k);
    await new Promise((r) => setTimeout(r, 5));
    const u = t.mul(10);
    await new Promise((r) => setTimeout(r, 5));
    return u.sum();
  })));
  assert.equal(a.item(), 20);
  assert.equal(b.item(), 40);
  a.dispose(); b.dispose();
  assert.equal(torch.liveTensors(), before);
});

test('native bytes are counted for CPU tensors', () => {
  const before = torch.liveTensorBytes();
  const t = torch.zeros([1024, 1024]);
  assert.equal(torch.liveTensorBytes() - before, 4 * 1024 * 1024);
  const v = t.view(-1);  // a view owns no new storage
  assert.equal(torch.liveTensorBytes() - before, 4 * 1024 * 1024);
  v.dispose();
  t.dispose();
  assert.equal(torch.liveTensorBytes(), before);
});

test('the finalizer frees unreachable tensors made outside any scope', async (t) => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) { t.skip('needs node --expose-gc'); return; }
  const settle = async () => {
    let last = -1;
    for (let i = 0; i < 20 && torch.liveTensors() !== last; i++) {
      last = torch.liveTensors();
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await settle();  // earlier tests leave unreachable tensors for the finalizer too
  const before = torch.liveTensors();
  (() => { for (let i = 0; i < 100; i++) torch.ones([8]); })();
  assert.equal(torch.liveTensors(), before + 100);
  for (let i = 0; i < 10 && torch.liveTensors() > before; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(torch.liveTensors(), before);
});
