// Decoded source images kept in memory between epochs: oriented, flattened RGB bytes, already
// shrunk to at most twice the size they are wanted at. Why: a training step's images are the same
// files every epoch, and decoding one (open, header, decode, orient, flatten) is most of what libvips
// spends on it. On the demo's 64-px catalog the whole pipeline from the file cost ~3.6 ms of CPU per
// image, the crop/resize/flip from cached bytes ~1 ms; at ~27 images a step on 2 cores, that CPU was
// taken from the training step itself (image threads and the OpenMP threads compete for the cores).
//
// Least recently used entries go first once the byte budget is reached. With a dataset larger than
// the budget an epoch-ordered pass evicts every entry before its next use: each image is then decoded
// every time, as without the cache. The budget is per thread (each image worker has its own cache;
// the pool sends a file always to the same worker), from M6_IMAGE_CACHE_MB (default 256, 0 = off).

export interface DecodedImage {
  /** HWC RGB bytes, width × height × 3. */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** The source's size after EXIF orientation, before any shrink (crop rectangles are drawn in it). */
  sourceWidth: number;
  sourceHeight: number;
  format: string;
}

export const DEFAULT_IMAGE_CACHE_MB = 256;

/** The budget from M6_IMAGE_CACHE_MB, in bytes; a bad value is an error that names the variable. */
export function imageCacheBytesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.M6_IMAGE_CACHE_MB;
  if (raw === undefined || raw.trim() === '') return DEFAULT_IMAGE_CACHE_MB * 2 ** 20;
  const mb = Number(raw);
  if (!Number.isFinite(mb) || mb < 0) throw new RangeError(`M6_IMAGE_CACHE_MB must be a number of MiB ≥ 0 (0 turns the decoded-image cache off), got '${raw}'`);
  return Math.floor(mb * 2 ** 20);
}

export class DecodedImageCache {
  // A Map iterates in insertion order: re-inserting on a hit makes the first key the least recent.
  private readonly entries = new Map<string, DecodedImage>();
  private used = 0;

  constructor(private budget: number) {}

  get bytes(): number { return this.used; }
  get size(): number { return this.entries.size; }

  setBudget(bytes: number): void {
    this.budget = bytes;
    this.evict();
  }

  get(key: string): DecodedImage | undefined {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  /** Keeps `image` unless it alone is over the budget; evicts the least recently used to make room. */
  set(key: string, image: DecodedImage): void {
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.entries.delete(key);
      this.used -= old.rgb.byteLength;
    }
    if (image.rgb.byteLength > this.budget) return;
    this.entries.set(key, image);
    this.used += image.rgb.byteLength;
    this.evict();
  }

  clear(): void {
    this.entries.clear();
    this.used = 0;
  }

  private evict(): void {
    for (const [key, image] of this.entries) {
      if (this.used <= this.budget) break;
      this.entries.delete(key);
      this.used -= image.rgb.byteLength;
    }
  }
}
