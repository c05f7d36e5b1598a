// The decoded-image cache: an LRU within a byte budget, and loadImage's use of it (the same pixels
// from the cache as from the file, a replaced file decoded again, large sources kept shrunk).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { DecodedImageCache, imageCacheBytesFromEnv, type DecodedImage } from '../../src/data/decodedImageCache.js';
import sharp from 'sharp';
import { decodedImages, loadImage, loadImageRgb, randomResizedCropRect } from '../../src/data/image.js';
import { Rng } from '../../src/data/random.js';
import { tempDir, writeSolidImage, writeTwoToneImage } from './fixtures.js';

const image = (bytes: number): DecodedImage => ({ rgb: new Uint8Array(bytes), width: 1, height: bytes / 3, sourceWidth: 1, sourceHeight: bytes / 3, format: 'raw' });

test('the cache keeps the most recently used entries within its byte budget', () => {
  const c = new DecodedImageCache(30);
  c.set('a', image(12));
  c.set('b', image(12));
  assert.ok(c.get('a'));                 // a is now the most recent
  c.set('c', image(12));                 // 36 > 30: b, the least recent, goes
  assert.equal(c.get('b'), undefined);
  assert.ok(c.get('a') && c.get('c'));
  assert.equal(c.bytes, 24);
  c.set('huge', image(33));              // alone over the budget: not kept, nothing evicted for it
  assert.equal(c.get('huge'), undefined);
  assert.equal(c.size, 2);
  c.set('a', image(3));                  // replacing an entry counts its new size only
  assert.equal(c.bytes, 15);
  c.setBudget(10);                       // a smaller budget evicts at once
  assert.ok(c.bytes <= 10);
  c.clear();
  assert.equal(c.bytes, 0);
});

test('M6_IMAGE_CACHE_MB sets the budget; 0 turns it off; a bad value names the variable', () => {
  assert.equal(imageCacheBytesFromEnv({}), 256 * 2 ** 20);
  assert.equal(imageCacheBytesFromEnv({ M6_IMAGE_CACHE_MB: '0' }), 0);
  assert.equal(imageCacheBytesFromEnv({ M6_IMAGE_CACHE_MB: '1.5' }), 1.5 * 2 ** 20);
  assert.throws(() => imageCacheBytesFromEnv({ M6_IMAGE_CACHE_MB: 'lots' }), /M6_IMAGE_CACHE_MB must be a number of MiB ≥ 0.*'lots'/);
  assert.throws(() => imageCacheBytesFromEnv({ M6_IMAGE_CACHE_MB: '-1' }), /M6_IMAGE_CACHE_MB/);
});

test('loadImage: a cached source gives the same pixels as a fresh decode, augmented or not', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'two-tone.png');
  await writeTwoToneImage(file, 90, 60, [200, 30, 30], [20, 40, 220]);
  decodedImages.clear();
  for (const augment of [undefined, { seed: 7, crop: { scale: [0.35, 1] as const, ratio: [0.75, 1.33] as const }, hflip: 0.5 }, { seed: 8 }]) {
    const fresh = await loadImage(file, { size: 24, augment, cache: false });
    const first = await loadImage(file, { size: 24, augment });
    const again = await loadImage(file, { size: 24, augment });
    assert.deepEqual(first.data, fresh.data);
    assert.deepEqual(again.data, fresh.data);
    assert.deepEqual([again.sourceWidth, again.sourceHeight, again.format], [90, 60, 'png']);
  }
  assert.equal(decodedImages.size, 1, 'one source decoded once for every call at this size');
});

test('loadImage: a replaced file is decoded again, not served from the cache', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'item.png');
  await writeSolidImage(file, { width: 20, height: 20, rgb: [255, 0, 0], format: 'png' });
  const red = await loadImage(file, { size: 8 });
  await writeSolidImage(file, { width: 20, height: 20, rgb: [0, 0, 255], format: 'png' });
  utimesSync(file, new Date(), new Date(Date.now() + 5000));  // a later mtime even on a coarse clock
  const blue = await loadImage(file, { size: 8 });
  assert.ok(red.data[0]! > 0.9 && blue.data[0]! < -0.9, `red channel ${red.data[0]} then ${blue.data[0]}`);
});

test('loadImage: a large source is kept shrunk to at most twice the output size', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'big.png');
  await writeTwoToneImage(file, 800, 400, [250, 250, 0], [0, 120, 0]);
  decodedImages.clear();
  const img = await loadImage(file, { size: 16 });
  assert.equal(decodedImages.size, 1);
  assert.ok(decodedImages.bytes <= 64 * 32 * 3, `${decodedImages.bytes} bytes kept for a 16-px output`);
  assert.deepEqual([img.sourceWidth, img.sourceHeight], [800, 400]);
  const fresh = await loadImage(file, { size: 16, cache: false });
  assert.deepEqual(img.data, fresh.data);
});

test('loadImage: a seeded crop and flip give the pixels of the file-to-square pipeline (mirror, then cut)', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'two-tone.png');
  await writeTwoToneImage(file, 60, 40, [230, 20, 20], [20, 20, 230]);
  const crop = { scale: [0.3, 0.5] as const, ratio: [0.75, 1.33] as const };
  const rng = new Rng(11);
  const rect = randomResizedCropRect(60, 40, rng, crop.scale, crop.ratio);
  const white = { r: 255, g: 255, b: 255 };
  // sharp mirrors an auto-oriented input before a pre-resize extract: what training saw before the cache.
  const expected = await sharp(file).rotate().extract(rect).flatten({ background: white })
    .resize(20, 20, { fit: 'contain', background: white }).toColourspace('srgb').removeAlpha().flop().raw().toBuffer();
  const got = await loadImageRgb(file, { size: 20, augment: { seed: 11, crop, hflip: 1 } });
  assert.deepEqual(Buffer.from(got.rgb), expected);
});
