import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageDecodeError, loadImage, loadImageRgb, probeImage, randomResizedCropRect, toNormalisedChw } from '../../src/data/image.js';
import { Rng } from '../../src/data/random.js';
import { tempDir, writeSolidImage, writeTwoToneImage } from './fixtures.js';

/** Mean RGB of a region of an HWC byte image. */
function meanRgb(rgb: Uint8Array, size: number, x0: number, y0: number, x1: number, y1: number): [number, number, number] {
  const sum = [0, 0, 0];
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      for (let c = 0; c < 3; c++) sum[c]! += rgb[(y * size + x) * 3 + c]!;
      n++;
    }
  }
  return sum.map((s) => Math.round(s / n)) as [number, number, number];
}

function assertNear(actual: number[], expected: number[], tol: number, what: string): void {
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tol, `${what}: got ${actual}, expected ${expected} ±${tol}`));
}

async function rejectsWith(p: Promise<unknown>, reason: string): Promise<ImageDecodeError> {
  let caught: unknown;
  await p.catch((err: unknown) => (caught = err));
  assert.ok(caught instanceof ImageDecodeError, `expected ImageDecodeError '${reason}', got ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  return caught;
}

test('JPEG, PNG, WebP, GIF and TIFF all decode to 3×S×S floats', async (t) => {
  const dir = tempDir(t);
  for (const format of ['jpeg', 'png', 'webp', 'gif', 'tiff'] as const) {
    const file = join(dir, `img.${format}`);
    await writeSolidImage(file, { width: 40, height: 30, rgb: [255, 0, 0], format });
    const img = await loadImage(file, { size: 16 });
    assert.deepEqual(img.shape, [3, 16, 16], format);
    assert.equal(img.data.length, 3 * 16 * 16);
    assert.equal(img.sourceWidth, 40);
    assert.equal(img.format, format === 'jpeg' ? 'jpeg' : format);
    // Centre pixel is red: R plane ≈ 1, G and B planes ≈ -1 (mean = std = 0.5).
    const centre = 8 * 16 + 8;
    assertNear([img.data[centre]!, img.data[256 + centre]!, img.data[512 + centre]!], [1, -1, -1], 0.1, format);
  }
});

test('EXIF orientation is applied (a portrait phone photo stays portrait)', async (t) => {
  const dir = tempDir(t);
  const png = await writeTwoToneImage(join(dir, 'tmp.png'), 40, 20, [255, 0, 0], [0, 0, 255]);
  const file = join(dir, 'rotated.jpg');
  // Orientation 6: "rotate 90° clockwise to display". The left (red) half ends up on top.
  await sharp(png).jpeg().withMetadata({ orientation: 6 }).toFile(file);
  const info = await probeImage(file);
  assert.deepEqual([info.width, info.height], [20, 40]);
  const img = await loadImageRgb(file, { size: 20, resize: 'crop' });
  const top = meanRgb(img.rgb, 20, 0, 0, 20, 8);
  const bottom = meanRgb(img.rgb, 20, 0, 12, 20, 20);
  assert.ok(top[0] > 200 && top[2] < 60, `top should be red, got ${top}`);
  assert.ok(bottom[2] > 200 && bottom[0] < 60, `bottom should be blue, got ${bottom}`);
});

test('greyscale, CMYK and alpha images become RGB', async (t) => {
  const dir = tempDir(t);
  const grey = join(dir, 'grey.png');
  await sharp(Buffer.alloc(16 * 16, 128), { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('b-w').png().toFile(grey);
  assert.equal((await sharp(grey).metadata()).channels, 1);
  const cmyk = join(dir, 'cmyk.jpg');
  await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 255, g: 0, b: 0 } } }).toColourspace('cmyk').jpeg().toFile(cmyk);
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  const alpha = join(dir, 'alpha.png');
  await sharp({ create: { width: 16, height: 16, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0 } } }).png().toFile(alpha);

  const g = await loadImageRgb(grey, { size: 8 });
  assertNear(meanRgb(g.rgb, 8, 0, 0, 8, 8), [128, 128, 128], 2, 'grey');
  const c = await loadImageRgb(cmyk, { size: 8 });
  const cm = meanRgb(c.rgb, 8, 0, 0, 8, 8);
  assert.ok(cm[0] > 180 && cm[1] < 80 && cm[2] < 80, `CMYK red should stay red-ish, got ${cm}`);
  // A fully transparent image shows the pad colour (white by default), not black.
  const a = await loadImageRgb(alpha, { size: 8 });
  assertNear(meanRgb(a.rgb, 8, 0, 0, 8, 8), [255, 255, 255], 2, 'transparent');
});

test('pad keeps the whole picture with pad colour bars; crop fills the square', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'wide.png');
  await writeSolidImage(file, { width: 80, height: 40, rgb: [0, 160, 0], format: 'png' });
  const padded = await loadImageRgb(file, { size: 20, resize: 'pad', padColour: [10, 20, 30] });
  assertNear(meanRgb(padded.rgb, 20, 0, 0, 20, 4), [10, 20, 30], 2, 'pad band');
  assertNear(meanRgb(padded.rgb, 20, 0, 8, 20, 12), [0, 160, 0], 2, 'pad middle');
  const cropped = await loadImageRgb(file, { size: 20, resize: 'crop' });
  assertNear(meanRgb(cropped.rgb, 20, 0, 0, 20, 4), [0, 160, 0], 2, 'crop top');
});

test('normalisation: mean/std per channel, CHW order', () => {
  const rgb = Uint8Array.from([255, 0, 51, 0, 255, 102]);
  const out = toNormalisedChw(rgb, 2, 1, [0.5, 0, 0], [0.5, 1, 0.2]);
  assertNear(Array.from(out), [1, -1, 0, 1, 1, 2], 1e-5, 'chw');
});

test('augmentation is seeded: same seed same pixels, other seed different, flip mirrors', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'two.png');
  await writeTwoToneImage(file, 64, 64, [255, 0, 0], [0, 0, 255]);
  const a = await loadImage(file, { size: 32, augment: { seed: 1 } });
  const b = await loadImage(file, { size: 32, augment: { seed: 1 } });
  assert.deepEqual(a.data, b.data);
  let differs = 0;
  for (let s = 2; s < 8; s++) {
    const c = await loadImage(file, { size: 32, augment: { seed: s } });
    if (Buffer.compare(Buffer.from(c.data.buffer), Buffer.from(a.data.buffer)) !== 0) differs++;
  }
  assert.ok(differs >= 5, `only ${differs} of 6 seeds changed the crop`);
  const plain = await loadImageRgb(file, { size: 32, augment: { seed: 3, crop: false, hflip: 0 } });
  const flipped = await loadImageRgb(file, { size: 32, augment: { seed: 3, crop: false, hflip: 1 } });
  assert.ok(meanRgb(plain.rgb, 32, 0, 0, 8, 32)[0] > 200, 'left is red before flipping');
  assert.ok(meanRgb(flipped.rgb, 32, 0, 0, 8, 32)[2] > 200, 'left is blue after flipping');
});

test('random resized crop stays inside the image, within scale and ratio', () => {
  const rng = new Rng(5);
  for (let i = 0; i < 500; i++) {
    const r = randomResizedCropRect(300, 200, rng, [0.3, 1], [0.75, 4 / 3]);
    assert.ok(r.left >= 0 && r.top >= 0 && r.left + r.width <= 300 && r.top + r.height <= 200, JSON.stringify(r));
    const area = (r.width * r.height) / 60000;
    assert.ok(area <= 1.0001 && (area >= 0.29 || r.width === r.height), `area ${area}`);
  }
});

test('bad input: missing file', async (t) => {
  const dir = tempDir(t);
  await rejectsWith(loadImage(join(dir, 'nope.jpg'), { size: 8 }), 'missing file');
});

test('bad input: zero-byte file', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'empty.jpg'), '');
  await rejectsWith(loadImage(join(dir, 'empty.jpg'), { size: 8 }), 'empty file');
});

test('bad input: truncated JPEG', async (t) => {
  const dir = tempDir(t);
  const raw = Buffer.alloc(120 * 90 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
  const whole = join(dir, 'whole.jpg');
  await sharp(raw, { raw: { width: 120, height: 90, channels: 3 } }).jpeg().toFile(whole);
  const bytes = readFileSync(whole);
  writeFileSync(join(dir, 'cut.jpg'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  await loadImage(whole, { size: 8 });
  await rejectsWith(loadImage(join(dir, 'cut.jpg'), { size: 8 }), 'truncated image');
  await rejectsWith(probeImage(join(dir, 'cut.jpg')), 'truncated image');
});

test('bad input: a text file named .jpg', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'notes.jpg'), 'this is not a picture\n');
  await rejectsWith(loadImage(join(dir, 'notes.jpg'), { size: 8 }), 'not an image');
});

test('bad input: a 90-megapixel JPEG decodes with shrink-on-load; a lower limit refuses it', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'huge.jpg');
  // 10,950 × 8,220 ≈ 90 MP, generated here (never committed).
  await sharp({ create: { width: 10950, height: 8220, channels: 3, background: { r: 30, g: 90, b: 200 } } }).jpeg({ quality: 80 }).toFile(file);
  const rssBefore = process.memoryUsage().rss;
  const img = await loadImageRgb(file, { size: 64 });
  assert.deepEqual([img.sourceWidth, img.sourceHeight], [10950, 8220]);
  assertNear(meanRgb(img.rgb, 64, 0, 16, 64, 48), [30, 90, 200], 6, 'huge colour');
  const grew = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  // The full bitmap would be 270 MB; shrink-on-load never holds it.
  assert.ok(grew < 200, `RSS grew ${grew.toFixed(0)} MB while decoding`);
  const augmented = await loadImage(file, { size: 64, augment: { seed: 2 } });
  assert.deepEqual(augmented.shape, [3, 64, 64]);
  const refused = await rejectsWith(loadImage(file, { size: 64, maxPixels: 50_000_000 }), 'too many pixels');
  assert.match(refused.message, /90\.0 MP, limit 50\.0 MP/);
});
