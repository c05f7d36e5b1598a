// The FLOPs accounting behind `npm run bench -- train`'s MFU: the closed form from the config must
// agree with a count taken from the model's own layers (built on the meta device), so a change to
// the architecture that the formula does not follow fails here rather than skewing the bench.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { M6Model, MoeLayer, activeExperts, gridSize, imagePositions, preset, type M6Config } from '../../src/model/index.js';
import { batchFlops, stemFlopsPerImage, type BatchShape } from '../../src/model/flops.js';
import { Conv2d, Linear } from '../../src/nn/index.js';

/** Forward FLOPs counted from the modules' weight shapes: what each layer multiplies, times where it runs. */
function walkedForwardFlops(cfg: M6Config, b: BatchShape): number {
  const model = new M6Model(cfg, { device: 'meta' });
  try {
    const G = gridSize(cfg);
    const L = (b.images ? G * G + (cfg.layoutChannels > 0 ? 1 : 0) : 0) + b.source + b.target;
    let perRow = 0;
    for (const [name, m] of model.namedModules()) {
      const stage = /^stem\.stages\.(\d+)$/.exec(name);
      if (m instanceof Conv2d && stage && b.images) {
        const side = cfg.imageSize / 2 ** (Number(stage[1]) + 1);  // stride 2 per stage
        perRow += 2 * m.weight.numel * side * side;
      } else if (m instanceof Linear && (name === 'stem.proj' || name === 'stem.layoutIn') && b.images) {
        perRow += 2 * m.weight.numel * G * G;                  // at every patch
      } else if (m instanceof Linear && name === 'stem.layoutProj' && b.images) {
        perRow += 2 * m.weight.numel;                          // once: the whole grid into one token
      } else if (m instanceof Linear && name.startsWith('blocks.')) {
        perRow += 2 * m.weight.numel * L;
      } else if (m instanceof MoeLayer) {
        perRow += L * (2 * m.router.numel + (activeExperts(cfg) * 2 * (m.w1.numel + m.w2.numel)) / cfg.experts);
      }
    }
    perRow += cfg.layers * 2 * 2 * L * L * cfg.dim;           // QKᵀ and AV over every (query, key) pair
    perRow += 2 * model.tok.weight.numel * b.target;          // the tied head, target positions only
    return b.rows * perRow;
  } finally {
    model.dispose();
  }
}

test('batch FLOPs match a count from the layers themselves: dense and MoE, with and without images', () => {
  const shapes: BatchShape[] = [
    { rows: 3, images: true, source: 7, target: 12 },
    { rows: 2, images: false, source: 5, target: 9 },
  ];
  const configs = [
    preset('m6-nano'),
    preset('m6-small'),
    preset('m6-nano', { experts: 4, moeEvery: 2, expertGroups: 2, topK: 1 }),
  ];
  for (const cfg of configs) {
    for (const b of shapes) {
      const f = batchFlops(cfg, b);
      assert.equal(f.forward, walkedForwardFlops(cfg, b), `${cfg.name} experts=${cfg.experts} ${JSON.stringify(b)}`);
      assert.equal(f.forward, f.stem + f.blockMatmuls + f.attention + f.head);
      assert.equal(f.training, 3 * f.forward);
      assert.equal(f.positions, (b.images ? imagePositions(cfg) : 0) + b.source + b.target);
    }
  }
});

test('the stem by hand for m6-nano (64 px, 8 px patches: three stride-2 stages, the projection, the layout token)', () => {
  const expected = 2 * 9 * 3 * 32 * 32 * 32     // 3 → 32 channels at 32²
    + 2 * 9 * 32 * 64 * 16 * 16                 // 32 → 64 at 16²
    + 2 * 9 * 64 * 128 * 8 * 8                  // 64 → 128 at 8²
    + 2 * 128 * 128 * 8 * 8                     // 128 → dim 128 for each of the 64 patches
    + 2 * 128 * 8 * 8 * 8                       // layout: 128 → 8 channels at each patch
    + 2 * 512 * 128;                            // the 64 × 8 values → one 128-wide token
  assert.equal(stemFlopsPerImage(preset('m6-nano')), expected);
  assert.equal(imagePositions(preset('m6-nano')), 65);
  assert.equal(stemFlopsPerImage(preset('m6-nano', { layoutChannels: 0 })), expected - 2 * 128 * 8 * 8 * 8 - 2 * 512 * 128);
  assert.equal(imagePositions(preset('m6-nano', { layoutChannels: 0 })), 64);
  assert.equal(batchFlops(preset('m6-nano'), { rows: 2, images: false, source: 3, target: 4 }).stem, 0);
});

test('padding and the head: more target positions cost the head; bad shapes are refused', () => {
  const cfg = preset('m6-nano');
  const a = batchFlops(cfg, { rows: 1, images: false, source: 0, target: 1 });
  // One position through 4 layers of 128-wide blocks (8·D² + 4·D·F each), attention over itself, and the head.
  assert.equal(a.forward, 4 * (8 * 128 * 128 + 4 * 128 * 512) + 4 * 4 * 128 + 2 * 128 * cfg.vocabSize);
  const b = batchFlops(cfg, { rows: 1, images: false, source: 1, target: 0 });
  assert.equal(b.head, 0);
  assert.equal(b.blockMatmuls, a.blockMatmuls);
  assert.throws(() => batchFlops(cfg, { rows: 1.5, images: false, source: 1, target: 1 }), /rows must be a non-negative integer, got 1.5/);
});
