// The design evaluation's judge learns what it is shown: on images whose two attributes are plain to
// see (the colour of the image, and whether a bright square is in the top or bottom half: the
// training mirrors images left–right, so up/down it must learn) it must reach near-perfect
// held-out accuracy in a few dozen steps; an untrained one is at chance. Saved and loaded by key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { ImageBank } from '../../src/data/imageBank.js';
import { Rng } from '../../src/data/random.js';
import {
  AttributeClassifier, accuracies, classifyImages, loadAttributeClassifier, saveAttributeClassifier, trainAttributeClassifier, type ClassifierConfig,
} from '../../src/eval/attributeClassifier.js';

const S = 16;
const COLOURS: Array<[number, number, number]> = [[200, 40, 40], [40, 60, 200], [40, 170, 60]];

/** n images: a tinted background (attribute 0: colour) with a white square at the top or bottom (attribute 1: side), plus noise. */
function makeSet(n: number, seed: number): { bank: ImageBank; labels: number[][] } {
  const rng = new Rng(seed);
  const images: Uint8Array[] = [], labels: number[][] = [];
  for (let i = 0; i < n; i++) {
    const colour = rng.int(COLOURS.length), side = rng.int(2);
    const rgb = new Uint8Array(S * S * 3);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
      const inSquare = x >= 4 && x < 12 && (side === 0 ? y >= 1 && y < 7 : y >= 9 && y < 15);
      for (let c = 0; c < 3; c++) rgb[(y * S + x) * 3 + c] = Math.max(0, Math.min(255, (inSquare ? 250 : COLOURS[colour]![c]!) + Math.round(rng.uniform(-30, 30))));
    }
    images.push(rgb);
    labels.push([colour, side]);
  }
  return { bank: new ImageBank(images, S), labels };
}

const config: ClassifierConfig = {
  imageSize: S, channels: 8, features: 16,
  attributes: [{ name: 'colour', classes: ['red', 'blue', 'green'] }, { name: 'side', classes: ['top', 'bottom'] }],
};

test('the attribute classifier learns a separable set: held-out accuracy ≥ 95% on both attributes; untrained is not', () => {
  const train = makeSet(96, 1), heldOut = makeSet(48, 2);
  torch.manualSeed(0);
  const untrained = new AttributeClassifier(config);
  const before = classifyImages(untrained, heldOut.bank);
  before.features.dispose();
  const chance = accuracies(before.predicted, heldOut.labels);
  untrained.dispose();
  const { model, report } = trainAttributeClassifier({ config, train, heldOut, steps: 60, batchSize: 16, lr: 3e-3, seed: 0 });
  try {
    assert.equal(report.trainImages, 96);
    assert.equal(report.heldOutImages, 48);
    assert.ok(report.accuracy.colour! >= 0.95, `colour accuracy ${report.accuracy.colour} (untrained ${chance[0]})`);
    assert.ok(report.accuracy.side! >= 0.95, `side accuracy ${report.accuracy.side} (untrained ${chance[1]})`);
    assert.ok(chance[0]! < 0.8 || chance[1]! < 0.8, `an untrained classifier should not already know both: ${chance}`);
    const { features } = classifyImages(model, heldOut.bank);
    assert.deepEqual(features.shape, [48, 16]);
    features.dispose();

    const dir = mkdtempSync(join(tmpdir(), 'm6-clf-'));
    try {
      const file = join(dir, 'clf.safetensors');
      saveAttributeClassifier(file, model, report, 'key-a');
      assert.equal(loadAttributeClassifier(file, 'key-b'), undefined, 'a classifier trained on other data is not reused');
      const loaded = loadAttributeClassifier(file, 'key-a')!;
      assert.deepEqual(loaded.report, report);
      const a = classifyImages(model, heldOut.bank), b = classifyImages(loaded.model, heldOut.bank);
      assert.deepEqual(b.predicted, a.predicted);
      for (const t of [a.features, b.features]) t.dispose();
      loaded.model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    model.dispose();
  }
});

test('bad configs and inputs are refused with the reason', () => {
  assert.throws(() => new AttributeClassifier({ ...config, imageSize: 20 }), /imageSize must be a power of 2/);
  assert.throws(() => new AttributeClassifier({ ...config, attributes: [{ name: 'x', classes: ['only'] }] }), /'x' has 1 class/);
  const m = new AttributeClassifier(config);
  assert.throws(() => torch.scope(() => m.forward(torch.zeros([1, 3, 32, 32]))), /expected images \(B, 3, 16, 16\), got \[1,3,32,32\]/);
  m.dispose();
});
