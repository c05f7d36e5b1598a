// The op profiler: libtorch's own RecordFunction hooks, summed per op and pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';

function smallStep(): void {
  torch.scope(() => {
    const x = torch.randn([64, 128]);
    const w = torch.randn([128, 256]).requiresGrad_();
    x.matmul(w).gelu().sum().backward();
  });
}

test('profileOps times the forward ops and the backward ones apart, self time within total', () => {
  smallStep();  // warm-up outside the profile
  const t0 = performance.now();
  const { ops } = torch.profileOps(smallStep);
  const wall = performance.now() - t0;
  const find = (pass: string, name: RegExp) => ops.filter((o) => o.pass === pass && name.test(o.name));
  assert.ok(find('forward', /^aten::mm$/).length === 1, JSON.stringify(ops.map((o) => `${o.pass} ${o.name}`)));
  assert.ok(find('forward', /^aten::gelu$/).length === 1);
  assert.ok(find('backward', /^aten::gelu_backward$/).length === 1);
  assert.ok(find('backward', /^MmBackward0$/).length === 1);
  // The backward of x·w needs one mm (x is a constant): the dispatcher's mm under the node.
  assert.ok(find('backward', /^aten::mm$/)[0]!.calls >= 1);
  for (const o of ops) {
    assert.ok(o.calls >= 1 && o.selfMs >= 0 && o.selfMs <= o.totalMs + 1e-6, JSON.stringify(o));
    assert.ok(o.topLevelMs <= o.totalMs + 1e-6);
  }
  const inside = ops.reduce((s, o) => s + o.topLevelMs, 0);
  const selfSum = ops.reduce((s, o) => s + o.selfMs, 0);
  assert.ok(inside <= wall, `${inside} ms inside libtorch of ${wall} ms`);
  assert.ok(Math.abs(selfSum - inside) < 0.05 * inside + 0.05, `self times ${selfSum} add up to the top-level total ${inside}`);
  const fam = torch.byFamily(ops);
  assert.ok(fam.some((f) => f.family === 'matmul' && f.pass === 'forward'));
  assert.ok(fam.some((f) => f.family === 'matmul' && f.pass === 'backward'));
});

test('with shapes, an op is keyed by its inputs\' sizes and dtypes', () => {
  const { ops } = torch.profileOps(smallStep, { shapes: true });
  assert.ok(ops.some((o) => o.pass === 'forward' && o.name === 'aten::mm [[64, 128] Float, [128, 256] Float]'), ops.map((o) => o.name).join('\n'));
});

test('one recording at a time; the profile stops when the profiled code throws', () => {
  assert.throws(() => torch.stopOpProfile(), /no profile is recording/);
  assert.throws(() => torch.profileOps(() => { throw new Error('boom'); }), /boom/);
  torch.startOpProfile();
  assert.throws(() => torch.startOpProfile(), /already recording/);
  const ops = torch.stopOpProfile();
  assert.ok(Array.isArray(ops));
  // Not recording: ops leave no trace.
  smallStep();
  const { ops: again } = torch.profileOps(() => 0);
  assert.equal(again.length, 0);
});

test('opFamily sorts ops by what their time buys', () => {
  const cases: [string, string][] = [
    ['aten::addmm', 'matmul'], ['aten::bmm', 'matmul'], ['aten::mm [[2, 3] Float, [3, 4] Float]', 'matmul'],
    ['aten::mkldnn_convolution', 'conv'], ['aten::convolution_backward', 'conv'],
    ['aten::native_layer_norm_backward', 'norms'], ['aten::native_group_norm', 'norms'],
    ['aten::_softmax', 'softmax and masks'], ['aten::masked_fill', 'softmax and masks'],
    ['aten::embedding_dense_backward', 'embedding and indexing'], ['aten::index_select', 'embedding and indexing'],
    ['aten::nll_loss_forward', 'loss'], ['aten::_foreach_mul_', 'optimizer'],
    ['aten::copy_', 'copies and layout'], ['aten::cat', 'copies and layout'],
    ['aten::sum', 'reductions'], ['aten::gelu', 'elementwise'], ['aten::add', 'elementwise'],
    ['MmBackward0', 'autograd nodes'], ['torch::autograd::AccumulateGrad', 'autograd nodes'],
    ['autograd::engine::evaluate_function: AddBackward0', 'autograd nodes'],
  ];
  for (const [op, family] of cases) assert.equal(torch.opFamily(op), family, op);
});
