// Batches that mix tasks: a design row (text → image codes, no image) beside describe rows (image →
// text). Per-row target kinds and the image mask must make each row's output what it would be alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { M6Model, preset } from '../../src/model/index.js';
import { assertClose } from '../helpers.js';

const tiny = () => preset('m6-nano', {
  layers: 2, dim: 32, heads: 4, ffnDim: 64, vocabSize: 300, imageCodeStart: 200, imageCodes: 100, maxTextLen: 80,
  imageSize: 32, patchSize: 8, stemChannels: 8,
});

test('per-row target kinds: a batch of text and image targets gives each row the logits it gets alone', () => {
  torch.manualSeed(0);
  const m = new M6Model(tiny()).eval();
  torch.noGrad(() => torch.scope(() => {
    const B = 3, source = torch.randint(0, 200, [B, 6]), target = torch.randint(0, 300, [B, 5]);
    const kinds = [true, false, true];
    const mixed = m.forward({ source, target, targetKind: torch.tensor(Uint8Array.from(kinds, Number), { dtype: 'bool' }) }).logits;
    const asText = m.forward({ source, target, targetKind: 'text' }).logits;
    for (let b = 0; b < B; b++) {
      const alone = m.forward({ source: source.narrow(0, b, 1), target: target.narrow(0, b, 1), targetKind: kinds[b] ? 'image' : 'text' }).logits;
      assertClose(mixed.narrow(0, b, 1).toArray(), alone.toArray(), 1e-5);
    }
    // And the kind matters (the segment embedding differs), or the test above would prove nothing.
    assert.ok(mixed.narrow(0, 0, 1).sub(asText.narrow(0, 0, 1)).abs().max().item() > 1e-4);
  }));
});

test('image mask: a row without an image, in a batch with images, reads its text exactly as if there were no image', () => {
  torch.manualSeed(1);
  const m = new M6Model(tiny()).eval();
  torch.noGrad(() => torch.scope(() => {
    const images = torch.randn([2, 3, 32, 32]).mul(torch.tensor([1, 0]).view(2, 1, 1, 1));  // row 1's pixels are the loader's zeros
    const source = torch.randint(0, 200, [2, 7]), target = torch.randint(0, 300, [2, 6]);
    const imageMask = torch.tensor(Uint8Array.from([1, 0]), { dtype: 'bool' });
    const kinds = torch.tensor(Uint8Array.from([0, 1]), { dtype: 'bool' });
    const out = m.forward({ images, imageMask, source, target, targetKind: kinds }).logits;
    const designAlone = m.forward({ source: source.narrow(0, 1, 1), target: target.narrow(0, 1, 1), targetKind: 'image' }).logits;
    assertClose(out.narrow(0, 1, 1).toArray(), designAlone.toArray(), 1e-5);
    const describeAlone = m.forward({ images: images.narrow(0, 0, 1), source: source.narrow(0, 0, 1), target: target.narrow(0, 0, 1) }).logits;
    assertClose(out.narrow(0, 0, 1).toArray(), describeAlone.toArray(), 1e-5);
    // Without the mask the design row attends to blank patches and its logits change.
    const unmasked = m.forward({ images, source, target, targetKind: kinds }).logits;
    assert.ok(unmasked.narrow(0, 1, 1).sub(designAlone).abs().max().item() > 1e-4);
  }));
});
