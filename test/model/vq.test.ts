// The VQ image tokenizer: shapes, the EMA codebook against a hand computation, dead-code restart,
// the straight-through gradient, checkpoints, memory, and overfitting real product photos.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as torch from '../../src/torch/index.js';
import { AdamW } from '../../src/optim/index.js';
import { saveSafetensors } from '../../src/io/index.js';
import { VqTokenizer, vqConfig, vqTrainStep, psnr, saveVqTokenizer, loadVqTokenizer, VQ_PRESETS, type VqConfig,
  PatchDiscriminator, discriminatorHingeLoss, generatorLoss } from '../../src/model/vq.js';
import { EmaCodebook, type CodebookOptions } from '../../src/model/vqCodebook.js';
import { assertClose, hasSharedData, sharedData } from '../helpers.js';

/** A tokenizer small enough for unit tests: 16 px, widths of 8, 16 codes. */
const TINY: Partial<VqConfig> = { imageSize: 16, channels: [8, 8, 8, 8], normGroups: 4, codeDim: 4, codebookSize: 16 };

function images(b: number, h: number, w = h): torch.Tensor {
  return torch.rand([b, 3, h, w]).mul(2).sub(1);  // [-1, 1]
}

test('config: presets validate, factor 8, bad values are refused with the reason', () => {
  for (const [name, c] of Object.entries(VQ_PRESETS)) {
    assert.deepEqual(vqConfig(name as keyof typeof VQ_PRESETS), c);
    assert.equal(2 ** (c.channels.length - 1), 8, `${name} downsamples by 8`);
    assert.equal(c.codebookSize, 8192, `${name} matches the text tokenizer's image-code block`);
  }
  assert.throws(() => vqConfig('vq-huge' as 'vq-nano'), /unknown VQ preset 'vq-huge'.*vq-nano/);
  assert.throws(() => vqConfig({ channels: [12, 16] }), /width 12 .* not divisible by normGroups 8/);
  assert.throws(() => vqConfig({ imageSize: 60 }), /imageSize 60 is not a multiple of the downsampling factor 8/);
  assert.throws(() => vqConfig({ decay: 1 }), /decay must be in \[0, 1\)/);
  assert.equal(vqConfig('vq-base', { codebookSize: 1024 }).codebookSize, 1024);
});

test('shapes: codes are an (H/8 × W/8) int64 grid in [0, K); decode(encode(x)) has the shape of x', () => {
  torch.manualSeed(0);
  const m = new VqTokenizer(TINY);
  torch.scope(() => {
    for (const [h, w] of [[16, 16], [32, 24]]) {
      const x = images(2, h, w);
      const codes = m.encode(x);
      assert.deepEqual(codes.shape, [2, h / 8, w / 8]);
      assert.equal(codes.dtype, 'int64');
      assert.ok(codes.min().item() >= 0 && codes.max().item() < 16);
      const y = m.decode(codes);
      assert.deepEqual(y.shape, x.shape);
      assert.ok(y.min().item() >= -1 && y.max().item() <= 1, 'decoded pixels are clamped to [-1, 1]');
      const out = m.forward(x);
      assert.deepEqual(out.recon.shape, x.shape);
      assert.deepEqual(out.codes.shape, [2, h / 8, w / 8]);
      for (const k of ['loss', 'recLoss', 'commitLoss', 'perplexity', 'usedCodes'] as const) assert.deepEqual(out[k].shape, [], k);
    }
    assert.deepEqual(m.gridSize(), [2, 2]);
    assert.throws(() => m.encode(images(1, 20)), /20×20 is not a multiple of the downsampling factor 8/);
    assert.throws(() => m.encode(torch.rand([1, 1, 16, 16])), /expected images of shape \(B, 3, H, W\)/);
    assert.throws(() => m.decode(torch.full([1, 2, 2], 16, { dtype: 'int64' })), /codes must lie in \[0, 16\), got values in \[16, 16\]/);
  });
});

const HAND: CodebookOptions = { size: 3, dim: 2, decay: 0.5, eps: 0.5, commitment: 0.25, deadCodeSteps: 0, initFromData: false };

/** Sets every codebook buffer so that embedding = embedSum / clusterSize. */
function setCodebook(cb: EmaCodebook, embedding: number[][]): void {
  torch.noGrad(() => torch.scope(() => {
    cb.embedding.copy_(torch.tensor(embedding));
    cb.embedSum.copy_(torch.tensor(embedding));
    cb.clusterSize.fill_(1);
    cb.unusedSteps.zero_();
  }));
}

/** Rows z (N, D) as the encoder-output layout (1, D, 1, N). */
function asEncoderOutput(z: number[][]): torch.Tensor {
  return torch.tensor(z).T.reshape(1, z[0].length, 1, z.length);
}

test('EMA update moves each code toward the mean of its encoder outputs, as computed by hand', () => {
  const cb = new EmaCodebook(HAND);
  setCodebook(cb, [[0, 0], [10, 0], [0, 10]]);
  torch.scope(() => {
    // z = (1,1), (2,0) → code 0; (9,1) → code 1; code 2 gets nothing.
    const out = cb.forward(asEncoderOutput([[1, 1], [2, 0], [9, 1]]));
    assert.deepEqual(out.codes.toArray(), [[[0, 0, 1]]]);
    // counts n = (2, 1, 0), sums = ((3,1), (9,1), (0,0)), γ = 0.5:
    //   clusterSize = 0.5·1 + 0.5·n = (1.5, 1, 0.5);  embedSum = 0.5·E + 0.5·sums = ((1.5,.5), (9.5,.5), (0,5))
    //   Laplace (ε = 0.5, K = 3, Σ = 3): ñ = (c + .5)/(3 + 1.5)·3 = (4/3, 1, 2/3)
    //   embedding = embedSum / ñ = ((1.125, .375), (9.5, .5), (0, 7.5))
    assertClose(cb.clusterSize.toArray(), [1.5, 1, 0.5]);
    assertClose(cb.embedSum.toArray(), [[1.5, 0.5], [9.5, 0.5], [0, 5]]);
    assertClose(cb.embedding.toArray(), [[1.125, 0.375], [9.5, 0.5], [0, 7.5]]);
    assert.deepEqual(cb.unusedSteps.toArray(), [0, 0, 1]);
    // Batch statistics: p = (2/3, 1/3, 0) → perplexity = exp(H(p)); two codes used.
    const h = -(2 / 3) * Math.log(2 / 3) - (1 / 3) * Math.log(1 / 3);
    assertClose(out.perplexity.item(), Math.exp(h), 1e-5);
    assert.equal(out.usedCodes.item(), 2);
    // commitment = β · mean((z − e_code)²) over the 6 elements: (1,1,2,0,1,1) squared → 8/6.
    assertClose(out.commitLoss.item(), 0.25 * 8 / 6, 1e-6);
  });
  // Code 0 moved toward its members' mean (1.5, 0.5): distance 1.58 → 0.40.
  assert.ok(Math.hypot(1.125 - 1.5, 0.375 - 0.5) < Math.hypot(1.5, 0.5));
});

test('bf16 autocast: a training step runs, the codebook and its statistics stay float32', () => {
  torch.manualSeed(7);
  const m = new VqTokenizer(TINY);
  const opt = new AdamW(m.parameters(), { lr: 1e-3 });
  const x = images(2, 16).keep();
  const stats = torch.autocast(() => vqTrainStep(m, opt, x));
  assert.ok(Number.isFinite(stats.loss) && stats.usedCodes >= 1, JSON.stringify(stats));
  for (const [name, b] of m.codebook.namedBuffers()) assert.equal(b.dtype, 'float32', name);
  torch.scope(() => {
    const codes = torch.autocast(() => m.encode(x));  // the encoder runs in bf16, distances in float32
    assert.equal(codes.dtype, 'int64');
    assert.ok(codes.min().item() >= 0 && codes.max().item() < 16);
  });
  x.dispose();
});

test('eval mode and encode() leave the codebook untouched', () => {
  torch.manualSeed(1);
  const m = new VqTokenizer(TINY);
  const before = [...m.codebook.stateDict().values()].map((t) => t.toBytes());
  torch.scope(() => {
    m.train().encode(images(2, 16));  // encode never updates, even in training mode
    m.eval().forward(images(2, 16));
  });
  assert.deepEqual([...m.codebook.stateDict().values()].map((t) => t.toBytes()), before);
});

test('dead codes: a code unused for deadCodeSteps steps is restarted from the batch\'s encoder outputs', () => {
  torch.manualSeed(2);
  const cb = new EmaCodebook({ size: 4, dim: 2, decay: 0.9, eps: 1e-5, commitment: 0.25, deadCodeSteps: 2, initFromData: false });
  setCodebook(cb, [[0, 0], [1, 1], [100, 100], [-100, -100]]);
  const z = [[0.1, 0], [0, 0.1], [1, 0.9], [0.9, 1], [0.2, 0.1], [1.1, 1]];  // all near codes 0 and 1
  torch.scope(() => {
    cb.forward(asEncoderOutput(z));
    assert.deepEqual(cb.unusedSteps.toArray(), [0, 0, 1, 1]);
    const e1 = cb.embedding.toArray() as number[][];
    assert.ok(Math.abs(e1[2][0] - 100) < 1 && Math.abs(e1[3][0] + 100) < 1, 'one unused step is not yet dead');
    cb.forward(asEncoderOutput(z));
    const e2 = cb.embedding.toArray() as number[][];
    const zf = z.map((r) => r.map((v) => Math.fround(v)));
    for (const k of [2, 3]) assert.ok(zf.some((r) => r[0] === e2[k][0] && r[1] === e2[k][1]), `code ${k} = a batch row, got ${e2[k]}`);
    for (const k of [0, 1]) assert.ok(!zf.some((r) => r[0] === e2[k][0] && r[1] === e2[k][1]), `live code ${k} is an EMA mean, not a restart`);
    assert.deepEqual(cb.unusedSteps.toArray(), [0, 0, 0, 0]);
    assertClose((cb.clusterSize.toArray() as number[]).slice(2), [1, 1]);
    // Restarted codes now sit in the data and get picked.
    const codes = cb.forward(asEncoderOutput(z)).codes;
    assert.ok((codes.toArray() as number[][][])[0][0].some((c) => c >= 2), 'a restarted code is used');
  });
});

test('straight-through: the reconstruction loss alone reaches every encoder parameter; the codebook gets no gradient', () => {
  torch.manualSeed(3);
  const m = new VqTokenizer(TINY);
  torch.scope(() => {
    const out = m.forward(images(2, 16));
    out.recLoss.backward();
    for (const [name, p] of m.encoder.namedParameters()) {
      const g = p.grad;
      assert.ok(g, `encoder.${name} has a gradient`);
      assert.ok(g.abs().sum().item() > 0, `encoder.${name} gradient is non-zero`);
    }
    for (const [name, b] of m.codebook.namedBuffers()) assert.equal(b.requiresGrad, false, name);
    assert.ok(m.parameters().every((p) => !m.codebook.namedBuffers().some(([, b]) => b === p)), 'the codebook is not an optimizer parameter');
  });
});

test('state dict through safetensors gives bit-identical codes and reconstructions', () => {
  torch.manualSeed(4);
  const m = new VqTokenizer({ ...TINY, deadCodeSteps: 1 });
  const opt = new AdamW(m.parameters(), { lr: 1e-2, weightDecay: 0 });
  const x = images(4, 16).keep();
  for (let i = 0; i < 3; i++) vqTrainStep(m, opt, x);  // a trained codebook, not the initial one
  m.eval();
  const file = join(mkdtempSync(join(tmpdir(), 'm6-vq-')), 'vq.safetensors');
  saveVqTokenizer(file, m);
  const n = loadVqTokenizer(file);
  assert.deepEqual(n.config, m.config);
  assert.equal(n.training, false);
  torch.scope(() => {
    const codes = m.encode(x);
    assert.deepEqual(n.encode(x).toBytes(), codes.toBytes());
    assert.deepEqual(n.decode(codes).toBytes(), m.decode(codes).toBytes());
    assert.deepEqual(n.forward(x).recon.toBytes(), m.forward(x).recon.toBytes());
    assert.equal(n.codebook.initialized.item(), 1, 'a loaded tokenizer is not re-seeded from data');
  });
  const other = join(mkdtempSync(join(tmpdir(), 'm6-vq-')), 'plain.safetensors');
  saveSafetensors(other, m.stateDict());
  assert.throws(() => loadVqTokenizer(other), /not a VQ tokenizer checkpoint/);
  x.dispose();
});

test('no tensor leak: live tensors stay flat across training steps, encode and decode', () => {
  torch.manualSeed(5);
  const m = new VqTokenizer({ ...TINY, deadCodeSteps: 2 });
  const opt = new AdamW(m.parameters(), { lr: 1e-3 });
  const x = images(2, 16).keep();
  for (let i = 0; i < 2; i++) vqTrainStep(m, opt, x);  // creates AdamW's moments
  const live = torch.liveTensors();
  for (let i = 0; i < 5; i++) {
    vqTrainStep(m, opt, x, { clipNorm: 1 });
    torch.scope(() => { m.decode(m.encode(x)); });
    assert.equal(torch.liveTensors(), live, `step ${i}`);
  }
  x.dispose();
});

// ---- overfitting real product photos ----------------------------------------------------------------

const clothing = join(sharedData, 'clothing/images');
const skipReal = hasSharedData ? false : `../shared/data is absent (expected at ${sharedData}); VQ overfit test skipped`;

/** The first `n` decodable clothing photos (sorted names), 64 × 64 centre crops, (n, 3, 64, 64) in [-1, 1]. */
async function loadPhotos(n: number, size: number): Promise<torch.Tensor> {
  const out = new Float32Array(n * 3 * size * size);
  let k = 0;
  for (const f of readdirSync(clothing).filter((f) => f.endsWith('.jpg')).sort()) {
    if (k === n) break;
    let data: Buffer;
    try {
      data = await sharp(join(clothing, f)).resize(size, size, { fit: 'cover' }).removeAlpha().toColourspace('srgb').raw().toBuffer();
    } catch { continue; }  // a truncated photo is the data set's problem, not this test's
    const plane = size * size;
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[(k * 3 + c) * plane + p] = data[p * 3 + c] / 127.5 - 1;
    k++;
  }
  assert.equal(k, n, `found only ${k} decodable photos in ${clothing}`);
  return torch.tensor(out, { shape: [n, 3, size, size] });
}

test('vq-nano overfits 8 real clothing photos (64 px): PSNR rises well above the 8×8 block-mean baseline', { skip: skipReal }, async () => {
  const x = (await loadPhotos(8, 64)).keep();
  torch.manualSeed(0);
  // vq-nano as shipped, except dead codes restart after 20 steps instead of 100, to fit the short run.
  const model = new VqTokenizer(vqConfig('vq-nano', { deadCodeSteps: 20 }));
  const opt = new AdamW(model.parameters(), { lr: 2e-3, weightDecay: 0 });
  // Baselines: each image's mean colour, and the mean colour of each 8×8 block — what one code per block could carry
  // with a perfect palette and a decoder that only paints flat squares.
  const [meanPsnr, blockPsnr] = torch.scope(() => [
    psnr(x.mean([2, 3], { keepdim: true }).expand(x.shape), x),
    psnr(torch.nn.interpolate(torch.nn.avgPool2d(x, 8), { scaleFactor: 8 }), x),
  ]);
  model.eval();
  const initial = torch.scope(() => psnr(model.decode(model.encode(x)), x));
  const steps = 200;
  const t0 = performance.now();
  let last = vqTrainStep(model, opt, x);
  for (let i = 1; i < steps; i++) last = vqTrainStep(model, opt, x);
  const seconds = (performance.now() - t0) / 1000;
  model.eval();
  const final = torch.scope(() => psnr(model.decode(model.encode(x)), x));
  console.log(`vq-nano overfit, 8 photos 64×64, ${steps} steps in ${seconds.toFixed(1)} s (${(1000 * seconds / steps).toFixed(0)} ms/step): ` +
    `PSNR decode(encode(x)) ${initial.toFixed(2)} → ${final.toFixed(2)} dB (baselines: image mean ${meanPsnr.toFixed(2)} dB, ` +
    `8×8 block mean ${blockPsnr.toFixed(2)} dB); last step: perplexity ${last.perplexity.toFixed(1)}, ${last.usedCodes} codes used of ${model.config.codebookSize}`);
  assert.ok(final > initial + 6, `PSNR ${final.toFixed(2)} dB should beat the untrained ${initial.toFixed(2)} dB by 6 dB`);
  // Beating the block-mean image means the codes carry detail within each 8×8 patch, not just its colour.
  assert.ok(final > blockPsnr + 1, `PSNR ${final.toFixed(2)} dB should beat the 8×8 block-mean baseline ${blockPsnr.toFixed(2)} dB by 1 dB`);
  x.dispose();
});

test('optional GAN: patch logits, hinge losses by hand, one step trains both the tokenizer and the discriminator', () => {
  torch.manualSeed(6);
  const disc = new PatchDiscriminator({ channels: 8, layers: 2 });
  torch.scope(() => {
    assert.deepEqual(disc.forward(images(2, 32)).shape, [2, 1, 6, 6]);  // 32 → 16 → 8 → 7 → 6
    // hinge: D(real) = (2, 0) → relu(1 − ·) = (0, 1); D(fake) = (−2, 0.5) → relu(1 + ·) = (0, 1.5); (0.5 + 0.75) / 2
    assertClose(discriminatorHingeLoss(torch.tensor([2, 0]), torch.tensor([-2, 0.5])).item(), 0.625);
    assertClose(generatorLoss(torch.tensor([1, 3])).item(), -2);
  });
  const m = new VqTokenizer(TINY);
  const opt = new AdamW(m.parameters(), { lr: 1e-3 });
  const dOpt = new AdamW(disc.parameters(), { lr: 1e-3 });
  const x = images(2, 16).keep();
  const before = disc.parameters().map((p) => p.toBytes());
  const off = vqTrainStep(m, opt, x, { gan: { disc, opt: dOpt, start: 5, step: 0 } });
  assert.deepEqual([off.genLoss, off.discLoss], [0, 0], 'before start, no GAN');
  assert.deepEqual(disc.parameters().map((p) => p.toBytes()), before);
  const live = torch.liveTensors();
  const on = vqTrainStep(m, opt, x, { gan: { disc, opt: dOpt, start: 5, step: 5, weight: 0.5 } });
  assert.ok(Number.isFinite(on.genLoss) && on.discLoss! > 0, JSON.stringify(on));
  assertClose(on.loss, on.recLoss + on.commitLoss + 0.5 * on.genLoss!, 1e-4);
  assert.notDeepEqual(disc.parameters().map((p) => p.toBytes()), before, 'the discriminator stepped');
  vqTrainStep(m, opt, x, { gan: { disc, opt: dOpt, step: 6 } });
  assert.equal(torch.liveTensors(), live + 2 * disc.parameters().length, 'only the discriminator\'s AdamW moments were added');
  x.dispose();
});
