// The engine on a CUDA device, where the libtorch m6 was built against has one. CI has no GPU:
// these tests skip with a message there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { AdamW } from '../../src/optim/index.js';
import { assertClose } from '../helpers.js';

const cuda = torch.cudaAvailable();
const why = 'no CUDA device (this libtorch is a CPU build, or the machine has no GPU)';

test('values and dtypes on cuda', { skip: !cuda && why }, () => {
  const a = torch.tensor([[1, 2], [3, 4]], { device: 'cuda' });
  assert.equal(a.device, 'cuda:0');
  assert.deepEqual(a.matmul(a).toArray(), [[7, 10], [15, 22]]);
  assert.deepEqual(a.to('bfloat16').sum().float().item(), 10);
  assert.equal(a.cpu().device, 'cpu');
});

test('autograd and AdamW on cuda', { skip: !cuda && why }, () => {
  const w = torch.randn([8, 8], { device: 'cuda', requiresGrad: true });
  const opt = new AdamW([w], { lr: 0.1 });
  const before = w.cpu().toArray();
  w.square().sum().backward();
  assert.equal(w.grad?.device, 'cuda:0');
  opt.step();
  assert.notDeepEqual(w.cpu().toArray(), before);
});

test('errors on cuda are JS errors naming the operator', { skip: !cuda && why }, () => {
  assert.throws(() => torch.ones([2, 3], { device: 'cuda' }).matmul(torch.ones([4, 5], { device: 'cuda' })), /aten::matmul/);
  assert.throws(() => torch.ones([2], { device: 'cuda' }).add(torch.ones([2])), /aten::add/);
});

test('autocast fp16 on cuda', { skip: !cuda && why }, () => {
  const a = torch.randn([16, 16], { device: 'cuda' });
  const y = torch.autocast(() => a.matmul(a), { device: 'cuda' });
  assert.equal(y.dtype, 'float16');
  assertClose(y.float().sum().item(), a.matmul(a).sum().item(), 0.5);
});
