// Image decode and preparation with sharp (libvips): any of JPEG/PNG/WebP/GIF/TIFF in, EXIF
// orientation applied, grey/CMYK/alpha made RGB, resized to the model's square by pad or crop,
// normalised to a Float32Array in CHW order. Training augmentations (random resized crop,
// horizontal flip) take a seed, so the same seed gives the same pixels on any thread.
//
// A pixel limit (default 150 MP) keeps a hostile or absurd image from exhausting memory, but a real
// 90 MP product photo is fine: sharp checks the limit from the header, and JPEG shrink-on-load
// decodes at 1/2, 1/4 or 1/8 scale when the target is small, so it never holds the full bitmap.
//
// The decoded source (at most twice the output size) stays in a per-thread cache, so later epochs
// only crop, resize and flip it (decodedImageCache.ts says why and how much).
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import type { BadRowReason } from './badRows.js';
import { DecodedImageCache, imageCacheBytesFromEnv, type DecodedImage } from './decodedImageCache.js';
import { Rng } from './random.js';
import { parseShardMemberRef, readShardMember, statShardMember, type ShardMember } from './shardMember.js';
import { fileReadProblem } from '../torch/inputError.js';

export type ResizeMode = 'pad' | 'crop';
export type Rgb = readonly [number, number, number];

export interface AugmentOptions {
  /** Per-example seed: derive it from (run seed, epoch, example) so results do not depend on thread order. */
  seed: number;
  /** Random resized crop: area fraction and aspect-ratio ranges; false turns it off. */
  crop?: { scale: readonly [number, number]; ratio: readonly [number, number] } | false;
  /** Probability of a horizontal flip. */
  hflip?: number;
}

export interface ImageOptions {
  /** Side of the square output in pixels. */
  size: number;
  /** pad: keep the whole picture, fill the rest with padColour; crop: fill the square, cut the overflow. */
  resize?: ResizeMode;
  padColour?: Rgb;
  mean?: Rgb;
  std?: Rgb;
  /** Refuse images with more pixels than this (width × height, before any shrink). */
  maxPixels?: number;
  augment?: AugmentOptions;
  /** Keep the decoded source in this thread's cache for the next call (default true; decodedImageCache.ts). */
  cache?: boolean;
  /** @internal how many times a failure that could not be classified has been retried */
  retried?: number;
}

export const DEFAULT_MAX_PIXELS = 150_000_000;
/** OFA's normalisation: pixels map to [-1, 1], which the VQ image tokenizer also expects. */
export const DEFAULT_MEAN: Rgb = [0.5, 0.5, 0.5];
export const DEFAULT_STD: Rgb = [0.5, 0.5, 0.5];
/** Product photos are mostly shot on white; padding with white looks like more background. */
export const DEFAULT_PAD: Rgb = [255, 255, 255];
export const DEFAULT_CROP = { scale: [0.35, 1] as const, ratio: [3 / 4, 4 / 3] as const };

export interface PreparedImage {
  /** 3 × size × size, channel-major (CHW), normalised. */
  data: Float32Array;
  shape: [3, number, number];
  /** Size of the source after EXIF orientation, before any resize. */
  sourceWidth: number;
  sourceHeight: number;
  format: string;
}

/** Why an image could not be used; `reason` is the bad-row reason reported to the user. */
export class ImageDecodeError extends Error {
  constructor(readonly reason: BadRowReason, readonly file: string, readonly detail: string) {
    super(`${file}: ${reason}: ${detail}`);
    this.name = 'ImageDecodeError';
  }
}

/** Map sharp/libvips and file-system failures onto the bad-row reasons. */
export function classifyImageError(file: string, err: unknown): ImageDecodeError {
  if (err instanceof ImageDecodeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  let reason: BadRowReason = 'unreadable image';
  if (code === 'ENOENT') reason = 'missing file';
  else if (code === 'EISDIR') reason = 'not an image';
  else if (code === 'EACCES' || code === 'EPERM') return new ImageDecodeError('unreadable file', file, fileReadProblem(err));
  else if (/exceeds pixel limit/i.test(message)) reason = 'too many pixels';
  else if (/unsupported image format|not a known file format|bad seek|improper image header/i.test(message)) reason = 'not an image';
  else if (/premature end|truncated|end of (input )?file|unexpected end|read error|short read|out of data|corrupt/i.test(message)) reason = 'truncated image';
  return new ImageDecodeError(reason, file, message.split('\n')[0]!.trim());
}

async function checkFile(file: string): Promise<{ size: number; mtimeMs: number }> {
  const member = parseShardMemberRef(file);
  if (member !== undefined) return checkShardMember(file, member);
  let found: { size: number; mtimeMs: number };
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new ImageDecodeError('not an image', file, 'not a regular file');
    found = { size: s.size, mtimeMs: s.mtimeMs };
  } catch (err) {
    throw classifyImageError(file, err);
  }
  if (found.size === 0) throw new ImageDecodeError('empty file', file, 'zero bytes');
  return found;
}

/** checkFile for an image inside a shard: the shard is there and long enough; the image is not empty. */
async function checkShardMember(ref: string, member: ShardMember): Promise<{ size: number; mtimeMs: number }> {
  let found: { size: number; mtimeMs: number };
  try {
    found = await statShardMember(member);
  } catch (err) {
    throw classifyImageError(ref, err);
  }
  if (member.size === 0) throw new ImageDecodeError('empty file', ref, 'zero bytes');
  return found;
}

/** What sharp opens: the file itself, or a shard member's bytes read in place. */
async function imageInput(file: string): Promise<string | Buffer> {
  const member = parseShardMemberRef(file);
  if (member === undefined) return file;
  try {
    return await readShardMember(member);
  } catch (err) {
    throw classifyImageError(file, err);
  }
}

function open(file: string | Buffer, maxPixels: number | false): sharp.Sharp {
  // failOn 'truncated': a cut-off JPEG is an error, not a grey bottom half in the training set.
  return sharp(file, { limitInputPixels: maxPixels, failOn: 'truncated', sequentialRead: true });
}

/** Width and height after EXIF orientation (orientations 5–8 swap them). */
function orientedSize(meta: sharp.Metadata): [number, number] {
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  return (meta.orientation ?? 1) >= 5 ? [h, w] : [w, h];
}

/** torchvision's RandomResizedCrop rectangle, drawn from rng; falls back to the centre square. */
export function randomResizedCropRect(
  width: number, height: number, rng: Rng,
  scale: readonly [number, number], ratio: readonly [number, number],
): { left: number; top: number; width: number; height: number } {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      return { left: rng.int(width - w + 1), top: rng.int(height - h + 1), width: w, height: h };
    }
  }
  const side = Math.min(width, height);
  return { left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), width: side, height: side };
}

/** HWC bytes → normalised CHW floats. */
export function toNormalisedChw(rgb: Uint8Array, width: number, height: number, mean: Rgb, std: Rgb): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * std[c]!);
    const shift = mean[c]! / std[c]!;
    const base = c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = rgb[i * 3 + c]! * scale - shift;
  }
  return out;
}

/** This thread's decoded sources (see decodedImageCache.ts). */
export const decodedImages = new DecodedImageCache(imageCacheBytesFromEnv());

/**
 * The source decoded once: oriented, flattened onto the pad colour, sRGB without alpha, its shorter
 * side shrunk to at most `cap` (never enlarged). Crops are then cut from these bytes; `cap` = twice
 * the output size leaves a crop of a quarter of the area at the output's own resolution.
 */
async function decodeSource(file: string | Buffer, maxPixels: number, background: { r: number; g: number; b: number }, cap: number, label = String(file)): Promise<DecodedImage> {
  // The header alone (no pixels), without sharp's limit, so a refusal can say how big the image is.
  const meta = await open(file, false).metadata();
  const [sourceWidth, sourceHeight] = orientedSize(meta);
  if (sourceWidth * sourceHeight > maxPixels) {
    throw new ImageDecodeError('too many pixels', label, `${sourceWidth}×${sourceHeight} = ${(sourceWidth * sourceHeight / 1e6).toFixed(1)} MP, limit ${(maxPixels / 1e6).toFixed(1)} MP (raise --max-pixels to accept it)`);
  }
  const { data, info } = await open(file, maxPixels).rotate()
    .flatten({ background })
    .resize(cap, cap, { fit: 'outside', withoutEnlargement: true, fastShrinkOnLoad: true })
    .toColourspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new ImageDecodeError('unreadable image', label, `decoded to ${info.channels} channels, expected 3`);
  return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, sourceWidth, sourceHeight, format: meta.format ?? 'unknown' };
}

/** A rectangle of the oriented source in the decoded (possibly shrunk) bytes' coordinates. */
function toDecoded(rect: { left: number; top: number; width: number; height: number }, src: DecodedImage): { left: number; top: number; width: number; height: number } {
  const sx = src.width / src.sourceWidth, sy = src.height / src.sourceHeight;
  const left = Math.min(src.width - 1, Math.floor(rect.left * sx)), top = Math.min(src.height - 1, Math.floor(rect.top * sy));
  return { left, top, width: Math.max(1, Math.min(src.width - left, Math.round(rect.width * sx))), height: Math.max(1, Math.min(src.height - top, Math.round(rect.height * sy))) };
}

/** Decode, orient, RGB, (augment,) resize to a square: the raw HWC bytes. */
export async function loadImageRgb(file: string, opts: ImageOptions): Promise<{ rgb: Uint8Array; size: number; sourceWidth: number; sourceHeight: number; format: string }> {
  const size = opts.size;
  if (!Number.isInteger(size) || size <= 0) throw new RangeError(`image size must be a positive integer, got ${size}`);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const pad = opts.padColour ?? DEFAULT_PAD;
  const background = { r: pad[0], g: pad[1], b: pad[2] };
  const fileStat = await checkFile(file);
  try {
    const cap = 2 * size;
    // The file's size and modification time are in the key: a replaced file is decoded again.
    const key = [file, fileStat.mtimeMs, fileStat.size, cap, pad.join(','), maxPixels].join('\u0000');
    const useCache = opts.cache !== false;
    let src = useCache ? decodedImages.get(key) : undefined;
    if (src === undefined) {
      src = await decodeSource(await imageInput(file), maxPixels, background, cap, file);
      if (useCache) decodedImages.set(key, src);
    }
    const raw = { width: src.width, height: src.height, channels: 3 } as const;
    let pipeline = sharp(src.rgb, { raw });
    const aug = opts.augment;
    if (aug !== undefined) {
      const rng = new Rng(aug.seed);
      const crop = aug.crop === undefined ? DEFAULT_CROP : aug.crop;
      // Drawn in the source's own size, so the same seed cuts the same part of the picture whatever the cache's shrink.
      const rect = crop === false ? undefined : toDecoded(randomResizedCropRect(src.sourceWidth, src.sourceHeight, rng, crop.scale, crop.ratio), src);
      // Mirrored first, then cut: the order of the file-to-square pipeline before the cache (sharp
      // mirrors an auto-oriented input before it extracts), so a seed gives the same pixels as then.
      // Within one pipeline sharp would extract first: the mirror is a pass of its own.
      if (rng.bool(aug.hflip ?? 0.5)) pipeline = sharp(await pipeline.flop().raw().toBuffer(), { raw });
      if (rect !== undefined) pipeline = pipeline.extract(rect);
    }
    pipeline = pipeline.resize(size, size, { fit: opts.resize === 'crop' ? 'cover' : 'contain', background });
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== size || info.height !== size) {
      throw new ImageDecodeError('unreadable image', file, `decoded to ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×3`);
    }
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), size, sourceWidth: src.sourceWidth, sourceHeight: src.sourceHeight, format: src.format };
  } catch (err) {
    const classified = classifyImageError(file, err);
    if (classified.reason !== 'unreadable image' || (opts.retried ?? 0) >= 2) throw classified;
    // libvips keeps one process-wide error buffer: when several images fail at once, a failure can
    // be reported with another's message and land in the wrong bin. Decode it again, alone.
    // Twice: `alone` orders the retries, not the first attempts still running beside them.
    return alone(() => loadImageRgb(file, { ...opts, retried: (opts.retried ?? 0) + 1 }));
  }
}

let exclusive: Promise<unknown> = Promise.resolve();
/** Runs fn when no other `alone` call is running. */
function alone<T>(fn: () => Promise<T>): Promise<T> {
  const run = exclusive.then(fn, fn);
  exclusive = run.catch(() => undefined);
  return run;
}

/** The model's input for one image: normalised CHW floats. Throws ImageDecodeError. */
export async function loadImage(file: string, opts: ImageOptions): Promise<PreparedImage> {
  const img = await loadImageRgb(file, opts);
  return {
    data: toNormalisedChw(img.rgb, img.size, img.size, opts.mean ?? DEFAULT_MEAN, opts.std ?? DEFAULT_STD),
    shape: [3, img.size, img.size],
    sourceWidth: img.sourceWidth,
    sourceHeight: img.sourceHeight,
    format: img.format,
  };
}

/**
 * Check that an image decodes completely (a truncated file fails only when its pixels are read)
 * and report its oriented size. Decodes to a small thumbnail so shrink-on-load keeps it cheap.
 */
export async function probeImage(file: string, opts: { maxPixels?: number } = {}): Promise<{ width: number; height: number; format: string }> {
  const img = await loadImageRgb(file, { size: 32, maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS, cache: false });
  return { width: img.sourceWidth, height: img.sourceHeight, format: img.format };
}

/**
 * The model's input for an image's bytes (an upload: the server never reads a client-named file):
 * the same decode, pixel limit, pad-resize and normalisation as `loadImage`, without augmentation
 * or the cache. `label` names the image in errors. Throws ImageDecodeError.
 */
export async function loadImageBytes(bytes: Buffer, opts: Omit<ImageOptions, 'augment' | 'cache' | 'retried'>, label = 'upload'): Promise<PreparedImage> {
  const size = opts.size;
  if (!Number.isInteger(size) || size <= 0) throw new RangeError(`image size must be a positive integer, got ${size}`);
  if (bytes.length === 0) throw new ImageDecodeError('empty file', label, 'zero bytes');
  const pad = opts.padColour ?? DEFAULT_PAD;
  const background = { r: pad[0], g: pad[1], b: pad[2] };
  try {
    const src = await decodeSource(bytes, opts.maxPixels ?? DEFAULT_MAX_PIXELS, background, 2 * size, label);
    const { data, info } = await sharp(src.rgb, { raw: { width: src.width, height: src.height, channels: 3 } })
      .resize(size, size, { fit: opts.resize === 'crop' ? 'cover' : 'contain', background })
      .raw().toBuffer({ resolveWithObject: true });
    const rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (info.channels !== 3 || info.width !== size || info.height !== size) throw new ImageDecodeError('unreadable image', label, `decoded to ${info.width}×${info.height}×${info.channels}`);
    return { data: toNormalisedChw(rgb, size, size, opts.mean ?? DEFAULT_MEAN, opts.std ?? DEFAULT_STD), shape: [3, size, size], sourceWidth: src.sourceWidth, sourceHeight: src.sourceHeight, format: src.format };
  } catch (err) {
    throw classifyImageError(label, err);
  }
}
