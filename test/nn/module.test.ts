import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { Module, ModuleList, Linear, Embedding, LayerNorm, RMSNorm, Conv2d, ConvTranspose2d, Dropout, Sequential, GELU,
  MultiheadAttention, KvCache, StateDictError } from '../../src/nn/index.js';
import { saveSafetensors, loadSafetensors } from '../../src/io/index.js';
import { assertClose } from '../helpers.js';

class Tiny extends Module {
  readonly emb = this.module('emb', new Embedding(10, 4));
  readonly blocks = this.module('blocks', new ModuleList([new Linear(4, 4), new Linear(4, 4, { bias: false })]));
  readonly ln = this.module('ln', new LayerNorm(4));
  readonly stat = this.buffer('stat', torch.zeros([2]));
  forward(idx: torch.Tensor): torch.Tensor {
    return torch.scope(() => this.ln.forward([...this.blocks].reduce((h, l) => l.forward(h), this.emb.forward(idx))));
  }
}

test('named parameters, buffers and state dict keys follow the module tree', () => {
  const m = new Tiny();
  assert.deepEqual(m.namedParameters().map(([k]) => k), ['emb.weight', 'blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight', 'ln.weight', 'ln.bias']);
  assert.deepEqual(m.namedBuffers().map(([k]) => k), ['stat']);
  assert.equal(m.numParameters(), 40 + 16 + 4 + 16 + 4 + 4);
  assert.ok(m.parameters().every((p) => p.requiresGrad));
  assert.deepEqual([...m.stateDict().keys()].length, 7);
});

test('state dict through safetensors gives bit-identical outputs', () => {
  torch.manualSeed(1);
  const a = new Tiny();
  const b = new Tiny();
  const idx = torch.tensor([[1n, 2n, 3n]]);
  assert.notDeepEqual(a.forward(idx).toArray(), b.forward(idx).toArray());
  const file = join(mkdtempSync(join(tmpdir(), 'm6-nn-')), 'tiny.safetensors');
  saveSafetensors(file, a.stateDict());
  b.loadStateDict(loadSafetensors(file).tensors);
  assert.deepEqual(b.forward(idx).toBytes(), a.forward(idx).toBytes());
});

test('loadStateDict names missing, unexpected and mis-shaped keys', () => {
  const m = new Tiny();
  const state = new Map(m.stateDict());
  state.delete('ln.bias');
  state.set('extra.weight', torch.zeros([1]));
  state.set('blocks.0.weight', torch.zeros([3, 3]));
  assert.throws(() => m.loadStateDict(state), (e: Error) => e instanceof StateDictError
    && /missing keys: ln\.bias/.test(e.message) && /unexpected keys: extra\.weight/.test(e.message) && /blocks\.0\.weight \(checkpoint \[3,3\], model \[4,4\]\)/.test(e.message));
  state.set('blocks.0.weight', torch.zeros([4, 4]));
  const r = m.loadStateDict(state, { strict: false });
  assert.deepEqual(r.missing, ['ln.bias']);
  assert.deepEqual(m.blocks.items[0].weight.toArray(), [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]);
});

test('to(dtype) casts in place, keeping tensor identity; train/eval recurse', () => {
  const m = new Tiny();
  const w = m.blocks.items[0].weight;
  m.to({ dtype: 'bfloat16' });
  assert.equal(w.dtype, 'bfloat16');
  assert.equal(m.stat.dtype, 'bfloat16');
  assert.ok(w.requiresGrad);
  m.eval();
  assert.equal(m.blocks.items[1].training, false);
  m.train();
  assert.equal(m.ln.training, true);
});

test('layers compute what their functional forms do', () => {
  const x = torch.randn([2, 3, 8, 8]);
  const conv = new Conv2d(3, 4, 3, { padding: 1 });
  assertClose(conv.forward(x).toArray(), torch.nn.conv2d(x, conv.weight, conv.bias, { padding: 1 }).toArray());
  const up = new ConvTranspose2d(4, 2, 2, { stride: 2 });
  assert.deepEqual(up.forward(conv.forward(x)).shape, [2, 2, 16, 16]);
  const rms = new RMSNorm(8);
  assertClose(rms.forward(x).toArray(), torch.nn.rmsNorm(x, [8], rms.weight).toArray());
  const seq = new Sequential(new Linear(8, 16), new GELU(), new Dropout(0.5), new Linear(16, 2));
  seq.eval();
  assert.deepEqual(seq.forward(x).shape, [2, 3, 8, 2]);
  assert.deepEqual(seq.namedParameters().map(([k]) => k), ['0.weight', '0.bias', '3.weight', '3.bias']);
});

test('attention with a KV cache equals attention over the whole sequence', () => {
  torch.manualSeed(2);
  const attn = new MultiheadAttention(16, 4).eval();
  const x = torch.randn([2, 6, 16]);
  const full = attn.forward(x, { mask: torch.ones([6, 6], { dtype: 'bool' }).tril() });
  const cache = new KvCache(8);
  const steps: torch.Tensor[] = [attn.forward(x.narrow(1, 0, 3), { cache, mask: torch.ones([3, 3], { dtype: 'bool' }).tril() })];
  for (let t = 3; t < 6; t++) steps.push(attn.forward(x.narrow(1, t, 1), { cache }));
  assertClose(torch.cat(steps, 1).toArray(), full.toArray(), 1e-5);
  assert.equal(cache.length, 6);
  assert.throws(() => attn.forward(torch.randn([2, 3, 16]), { cache }), /KV cache full/);
  cache.dispose();
});
