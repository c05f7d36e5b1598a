import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { contrastiveLoss, M6Model, preset, prefixLmMask, type M6Config } from '../../src/model/index.js';
import { saveSafetensors, loadSafetensors } from '../../src/io/index.js';
import { assertClose } from '../helpers.js';

const tiny = (o: Partial<M6Config> = {}) => preset('m6-nano', {
  layers: 2, dim: 32, heads: 4, ffnDim: 64, vocabSize: 300, imageCodeStart: 200, imageCodes: 100, maxTextLen: 80,
  imageSize: 32, patchSize: 8, stemChannels: 8, ...o,
});
const ids = (B: number, T: number, hi = 200) => torch.randint(0, hi, [B, T]);

test('output shapes for every task layout', () => {
  torch.manualSeed(0);
  const m = new M6Model(tiny()).eval();
  const B = 3, images = torch.randn([B, 3, 32, 32]);
  const layouts: [string, Parameters<M6Model['forward']>[0]][] = [
    ['describe: image + instruction → text', { images, source: ids(B, 5), target: ids(B, 7) }],
    ['design: text → image codes', { source: ids(B, 9), target: ids(B, 17, 100).add(200), targetKind: 'image' }],
    ['answer: image + question → answer', { images, source: ids(B, 6), target: ids(B, 4) }],
    ['text only: source → target', { source: ids(B, 8), target: ids(B, 8) }],
    ['image only prefix', { images, target: ids(B, 3) }],
    ['no prefix (plain LM)', { target: ids(B, 5) }],
  ];
  for (const [name, input] of layouts) {
    const out = m.forward({ ...input, labels: input.target });
    assert.deepEqual(out.logits.shape, [B, input.target.shape[1], 300], name);
    assert.ok(Number.isFinite(out.loss!.item()), name);
  }
  assert.throws(() => m.forward({ images: torch.randn([1, 3, 64, 64]), target: ids(1, 2) }), /64×64; m6-nano expects 32×32/);
});

test('prefix-LM mask: no target position sees a later one; the prefix is bidirectional; padding is invisible', () => {
  torch.manualSeed(1);
  const m = new M6Model(tiny()).eval();
  const images = torch.randn([1, 3, 32, 32]);
  const source = ids(1, 6), target = ids(1, 8);
  const base = m.forward({ images, source, target }).logits;
  // Perturb target positions ≥ 5: logits at positions < 5 must not move.
  const t2 = target.clone().indexPut_([0, '5:'], 7);
  const pert = m.forward({ images, source, target: t2 }).logits;
  assertClose(pert.index(0, ':5').toArray(), base.index(0, ':5').toArray(), 1e-6);
  assert.ok(pert.index(0, 5).sub(base.index(0, 5)).abs().max().item() > 1e-4, 'position 5 itself does change');
  // Perturb the LAST source token: every target position moves (it sees the whole prefix).
  const s2 = source.clone().indexPut_([0, 5], 3);
  const ps = m.forward({ images, source: s2, target }).logits;
  assert.ok(ps.index(0, 0).sub(base.index(0, 0)).abs().max().item() > 1e-4);
  // A padded source token changes nothing.
  const mask = torch.tensor([[true, true, true, true, true, false]]);
  const a = m.forward({ images, source, sourceMask: mask, target }).logits;
  const b = m.forward({ images, source: s2, sourceMask: mask, target }).logits;
  assertClose(a.toArray(), b.toArray(), 1e-6);
  // The mask itself, on a small case: P = 2 prefix positions, then 3 targets, key 1 padded.
  const M = prefixLmMask(torch.tensor([[true, false, true, true, true]]), 2).index(0, 0).toArray();
  assert.deepEqual(M, [
    [true, false, false, false, false],
    [true, true, false, false, false],
    [true, false, true, false, false],
    [true, false, true, true, false],
    [true, false, true, true, true],
  ]);
});

test('a gradient reaches every parameter (dense and MoE)', () => {
  for (const cfg of [tiny(), tiny({ experts: 4, moeEvery: 1, capacityFactor: 2 })]) {
    torch.manualSeed(2);
    const m = new M6Model(cfg);
    const images = torch.randn([4, 3, 32, 32]), source = ids(4, 16);
    const out = m.forward({ images, source, target: ids(4, 16), labels: ids(4, 16) });
    // The embed objective's own parameters (projection, temperature) learn from the contrastive loss.
    const embedLoss = contrastiveLoss(m.embed({ images }).vectors, m.embed({ source }).vectors, m.logitScale).loss;
    out.loss!.add(embedLoss).backward();
    const missing = m.namedParameters().filter(([, p]) => !p.grad || p.grad.abs().sum().item() === 0).map(([k]) => k);
    assert.deepEqual(missing, [], `no gradient: ${missing.join(', ')}`);
  }
});

test('the image stem\'s conv gradients on plain NCHW images match a float64 reference', () => {
  // Guards libtorch 1.13's GELU backward bug: the stem's last gelu receives its gradient through the
  // patch projection's transpose, and once made the conv stages' gradients garbage (Inf/NaN or noise).
  const stageGrads = (dtype: torch.DType) => torch.scope(() => {
    torch.manualSeed(4);
    const m = new M6Model(tiny()).to({ dtype });
    torch.manualSeed(5);
    const images = torch.randn([3, 3, 32, 32]).to(dtype);
    m.stem.forward(images).square().mean().backward();
    return m.stem.stages.items.map((c) => Array.from(c.weight.grad!.to('float64').toTypedArray(), Number));
  });
  const ref = stageGrads('float64'), got = stageGrads('float32');
  ref.forEach((r, i) => {
    const scale = Math.max(...r.map(Math.abs));
    assert.ok(scale > 0, `stage ${i}: zero reference gradient`);
    assertClose(got[i]!.map((v) => v / scale), r.map((v) => v / scale), 1e-5, `stage ${i}`);
  });
});

test('Pseudo-to-Real: after delink() the real model computes exactly what the shared one does', () => {
  torch.manualSeed(3);
  const pseudo = new M6Model(tiny({ layers: 4, shareLayers: true })).eval();
  const real = pseudo.delink().eval();
  assert.equal(real.layerBlocks.length, 4);
  assert.equal(new Set(real.layerBlocks).size, 4, 'real blocks are distinct');
  assert.equal(new Set(pseudo.layerBlocks).size, 1);
  const perBlock = pseudo.blocks.items[0].numParameters();
  assert.equal(real.numParameters() - pseudo.numParameters(), 3 * perBlock);
  const input = { images: torch.randn([2, 3, 32, 32]), source: ids(2, 5), target: ids(2, 6) };
  assert.deepEqual(real.forward(input).logits.toBytes(), pseudo.forward(input).logits.toBytes());
  // The real blocks are independent afterwards.
  torch.noGrad(() => real.blocks.items[1].ln1.weight!.fill_(2));
  assert.notDeepEqual(real.blocks.items[0].ln1.weight!.toArray(), real.blocks.items[1].ln1.weight!.toArray());
});

test('stateDict save → load through safetensors gives bit-identical outputs', () => {
  torch.manualSeed(4);
  const a = new M6Model(tiny({ experts: 4 })).eval();
  const file = join(mkdtempSync(join(tmpdir(), 'm6-model-')), 'm.safetensors');
  saveSafetensors(file, a.stateDict(), { config: JSON.stringify(a.cfg) });
  torch.manualSeed(99);
  const b = new M6Model(JSON.parse(loadSafetensors(file).metadata.config) as M6Config).eval();
  b.loadStateDict(loadSafetensors(file).tensors);
  const input = { images: torch.randn([2, 3, 32, 32]), source: ids(2, 5), target: ids(2, 6) };
  assert.deepEqual(b.forward(input).logits.toBytes(), a.forward(input).logits.toBytes());
});

test('a training step runs in bf16 autocast and frees everything it made', () => {
  torch.manualSeed(5);
  const m = new M6Model(tiny({ experts: 4 }));
  const input = { images: torch.randn([2, 3, 32, 32]), source: ids(2, 5), target: ids(2, 6), labels: ids(2, 6) };
  const step = () => torch.scope(() => {
    const loss = torch.scope(() => torch.autocast(() => m.forward(input).loss!));
    loss.backward();
    for (const p of m.parameters()) p.grad = undefined;
    return loss.item();
  });
  step();
  const live = torch.liveTensors();
  for (let i = 0; i < 3; i++) assert.ok(Number.isFinite(step()));
  assert.equal(torch.liveTensors(), live);
});

test('invalid configurations are refused with every problem named', () => {
  assert.throws(() => preset('m6-nano', { dim: 100, heads: 3, imageCodeStart: 5000 }), /dim \(100\) must be divisible by heads \(3\).*image codes \[5000, 6024\) must lie inside/);
  assert.throws(() => preset('m6-huge'), /unknown preset 'm6-huge'/);
});

test('embed: trunkGradScale leaves the vectors alone, scales the gradient into the stem and blocks, not the projection\'s', () => {
  torch.manualSeed(6);
  const m = new M6Model(tiny());
  const images = torch.randn([3, 3, 32, 32]);
  const grads = (scale: number) => {
    for (const p of m.parameters()) p.grad = undefined;
    const v = m.embed({ images, trunkGradScale: scale }).vectors;
    v.mul(torch.randn(v.shape)).sum().backward();
    return { v: v.detach(), stem: m.stem.proj.weight.grad!.clone(), block: m.blocks.items[0]!.attn.qkv.weight.grad!.clone(), proj: m.embedProj.weight.grad!.clone() };
  };
  torch.manualSeed(7);
  const full = grads(1);
  torch.manualSeed(7);
  const tenth = grads(0.1);
  assert.ok(full.v.sub(tenth.v).abs().max().item() < 1e-6, 'the vectors changed');
  const close = (a: torch.Tensor, b: torch.Tensor, what: string) => assert.ok(a.sub(b).abs().max().item() <= 1e-6 + 1e-4 * b.abs().max().item(), what);
  assert.ok(full.stem.abs().max().item() > 0 && full.block.abs().max().item() > 0, 'no gradient reached the trunk');
  close(tenth.proj, full.proj, 'the projection\'s gradient changed');
  close(tenth.stem, full.stem.mul(0.1), 'the stem\'s gradient is not a tenth');
  close(tenth.block, full.block.mul(0.1), 'a block\'s gradient is not a tenth');
});

test('embed: unit vectors per row, padding does not change a text\'s vector, and the contrastive loss is InfoNCE', () => {
  torch.manualSeed(5);
  const m = new M6Model(tiny()).eval();
  const source = ids(3, 6);
  const v = m.embed({ source }).vectors;
  assert.deepEqual(v.shape, [3, tiny().dim]);
  for (const n of v.norm(2, 1).toArray() as number[]) assert.ok(Math.abs(n - 1) < 1e-5);
  // Row 0 padded with three more (masked) tokens: the same vector.
  const padded = torch.cat([source, torch.zeros([3, 3], { dtype: 'int64' })], 1);
  const mask = torch.cat([torch.ones([3, 6], { dtype: 'bool' }), torch.zeros([3, 3], { dtype: 'bool' })], 1);
  const w = m.embed({ source: padded, sourceMask: mask }).vectors;
  assert.ok(w.sub(v).abs().max().item() < 1e-5, 'padding changed the vector');
  // Images alone embed too.
  assert.deepEqual(m.embed({ images: torch.randn([2, 3, 32, 32]) }).vectors.shape, [2, tiny().dim]);
  // InfoNCE by hand: perfectly matched orthogonal pairs with scale s give log(1 + (B-1)·e^{-s}).
  const eye = torch.eye(3);
  const scale = torch.full([], Math.log(10));
  const r = contrastiveLoss(eye, eye, scale);
  const expected = Math.log(1 + 2 * Math.exp(-10));
  assert.ok(Math.abs(r.loss.item() - expected) < 1e-5, `${r.loss.item()} vs ${expected}`);
  // Swapping two texts makes those rows wrong: their losses rise above the matched row's.
  const swapped = contrastiveLoss(eye, eye.indexSelect(0, torch.tensor([1, 0, 2], { dtype: 'int64' })), scale).rows.toArray() as number[];
  assert.ok(swapped[0]! > 5 && swapped[1]! > 5 && swapped[2]! < 1e-3, String(swapped));
  // Rows 0 and 1 captioned alike are each other's matches: the target is half on each.
  const matches = torch.tensor([[true, true, false], [true, true, false], [false, false, true]], { dtype: 'bool' });
  const soft = contrastiveLoss(eye, eye, scale, matches).rows.toArray() as number[];
  const half = Math.log(Math.exp(10) + 2) - 5;   // -(½ log p(own) + ½ log p(twin)) with logits [10, 0, 0]
  assert.ok(Math.abs(soft[0]! - half) < 1e-4 && Math.abs(soft[1]! - half) < 1e-4, String(soft));
  assert.ok(Math.abs(soft[2]! - (r.rows.toArray() as number[])[2]!) < 1e-6, 'a row with a single match is plain InfoNCE');
});

test('the layout token: one more image position, first; it tells where things are, which the patches\' mean does not; configs from before it have none', () => {
  torch.manualSeed(0);
  const withLayout = new M6Model(tiny({ imageSize: 64, layoutChannels: 4 })).eval();
  const patchesOnly = new M6Model(tiny({ imageSize: 64, layoutChannels: 0 })).eval();
  const block = (top: number, left: number) => {
    const x = new Float32Array(3 * 64 * 64);
    for (let c = 0; c < 3; c++) for (let y = top; y < top + 8; y++) for (let xx = left; xx < left + 8; xx++) x[c * 4096 + y * 64 + xx] = 1;
    return x;
  };
  // The same 8×8 square one patch apart, far from the borders (zero padding there sees only
  // background in both): the patches' conv features are the same values, moved by one patch.
  const images = torch.tensor(Float32Array.from([...block(24, 24), ...block(24, 32)])).view(2, 3, 64, 64);
  torch.noGrad(() => {
    const out = withLayout.stem.forward(images);
    assert.deepEqual(out.shape, [2, 1 + 64, 32]);
    assert.deepEqual(patchesOnly.stem.forward(images).shape, [2, 64, 32]);
    const rows = torch.arange(8);
    const pos = withLayout.stem.rowPos.forward(rows).unsqueeze(1).add(withLayout.stem.colPos.forward(rows).unsqueeze(0)).view(64, -1);
    const meanFeature = out.narrow(1, 1, 64).sub(pos).mean(1);        // (2, D): blind to where the square is
    assertClose(meanFeature.select(0, 0).toArray() as number[], meanFeature.select(0, 1).toArray() as number[], 1e-5);
    const layout = out.select(1, 0);                                  // (2, D)
    assert.ok(layout.narrow(0, 0, 1).sub(layout.narrow(0, 1, 1)).abs().max().item() > 1e-2, 'the layout token moves with the square');
    // A describe forward reads the 1 + 64 image positions and the source.
    const m = withLayout.forward({ images, source: ids(2, 3), target: ids(2, 4) });
    assert.deepEqual(m.logits.shape, [2, 4, 300]);
  });
  // A config.json written before the field existed loads as it was trained: no layout token.
  const old = tiny() as Partial<M6Config>;
  delete old.layoutChannels;
  const restored = new M6Model(old as M6Config);
  assert.equal(restored.cfg.layoutChannels, 0);
  assert.equal(restored.stem.layoutIn, undefined);
  assert.ok(!restored.namedParameters().some(([n]) => n.includes('layout')));
  assert.throws(() => preset('m6-nano', { layoutChannels: -1 }), /layoutChannels must be a non-negative integer \(got -1\)/);
  for (const m of [withLayout, patchesOnly, restored]) m.dispose();
});

test('a padded batch gives every row what it gives alone (the dense forward squeezes padding out)', () => {
  torch.manualSeed(7);
  const m = new M6Model(tiny()).eval();
  const lengths = [[3, 9], [8, 2], [5, 5]];   // (source, target) per row: long sources beside long targets
  const S = 8, T = 9, B = lengths.length;
  const images = torch.randn([B, 3, 32, 32]);
  const source = ids(B, S), target = ids(B, T);
  const mask = (L: number, n: number[]) => torch.tensor(n.map((k) => Array.from({ length: L }, (_v, i) => (i < k ? 1 : 0))), { dtype: 'bool' });
  const sourceMask = mask(S, lengths.map(([s]) => s!)), targetMask = mask(T, lengths.map(([, t]) => t!));
  const batch = m.forward({ images, source, sourceMask, target, targetMask }).logits;
  lengths.forEach(([s, t], b) => {
    const row = (x: torch.Tensor, n: number) => x.narrow(0, b, 1).narrow(1, 0, n);
    const alone = m.forward({ images: images.narrow(0, b, 1), source: row(source, s!), target: row(target, t!) }).logits;
    assertClose(batch.narrow(0, b, 1).narrow(1, 0, t!).toArray(), alone.toArray(), 1e-5, `row ${b}`);
  });
  // An MoE model is not compacted (capacity counts padding) and still reads padding as invisible.
  const moe = new M6Model(tiny({ experts: 4, capacityFactor: 0 })).eval();
  const withMoe = moe.forward({ images, source, sourceMask, target, targetMask }).logits;
  const alone0 = moe.forward({ images: images.narrow(0, 0, 1), source: source.narrow(0, 0, 1).narrow(1, 0, 3), target: target.narrow(0, 0, 1).narrow(1, 0, 9) }).logits;
  assertClose(withMoe.narrow(0, 0, 1).toArray(), alone0.toArray(), 1e-5, 'moe row 0');
});
