// A set of images decoded once and held in memory as RGB bytes (a quarter of float32's size: 12 KiB
// per 64 px image), turned into [-1, 1] tensors batch by batch. For the small models trained beside
// M6 that read the same images many times (the VQ tokenizer, the design evaluation's attribute
// classifier), where decoding every batch again would cost more than the step.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { ImageDecodeError, loadImageRgb } from './image.js';
import { mapConcurrent } from './inspect.js';

export class ImageBank {
  /** HWC RGB bytes of each image, size × size. */
  constructor(readonly images: readonly Uint8Array[], readonly size: number) {
    for (const [i, rgb] of images.entries()) {
      if (rgb.length !== size * size * 3) throw new RangeError(`ImageBank: image ${i} has ${rgb.length} bytes, expected ${size}×${size}×3 = ${size * size * 3}`);
    }
  }

  get length(): number { return this.images.length; }

  /** (B, 3, S, S) float32 in [-1, 1] of the images at `index` (pixels / 127.5 − 1, the loader's normalisation). */
  batch(index: readonly number[]): Tensor {
    const S = this.size, plane = S * S;
    const out = new Float32Array(index.length * 3 * plane);
    index.forEach((i, b) => {
      const rgb = this.images[i];
      if (rgb === undefined) throw new RangeError(`ImageBank: no image ${i} (there are ${this.images.length})`);
      const base = b * 3 * plane;
      for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[base + c * plane + p] = rgb[p * 3 + c]! / 127.5 - 1;
    });
    return torch.tensor(out, { shape: [index.length, 3, S, S] });
  }

  /** The bank's images in order, in batches: (first index, tensor) pairs, each tensor made in the caller's scope. */
  *chunks(batchSize: number): Generator<{ at: number; count: number; index: number[] }> {
    for (let at = 0; at < this.length; at += batchSize) {
      const count = Math.min(batchSize, this.length - at);
      yield { at, count, index: Array.from({ length: count }, (_v, k) => at + k) };
    }
  }

  /**
   * Decodes image files at `size` (4 at a time). A file that cannot be read is left out and reported
   * in `failed` (path → reason), never fatal; `kept[i]` is the index in `paths` of bank image i.
   */
  static async load(paths: readonly string[], size: number): Promise<{ bank: ImageBank; kept: number[]; failed: Map<string, string> }> {
    const failed = new Map<string, string>();
    const decoded = await mapConcurrent(paths, 4, async (path) => {
      try {
        // The bank is itself the in-memory copy: a second one in the decoded-image cache would be waste.
        return (await loadImageRgb(path, { size, cache: false })).rgb;
      } catch (err) {
        if (!(err instanceof ImageDecodeError)) throw err;
        failed.set(path, `${err.reason}: ${err.detail}`);
        return null;
      }
    });
    const kept = decoded.flatMap((x, i) => (x !== null ? [i] : []));
    return { bank: new ImageBank(kept.map((i) => decoded[i]!), size), kept, failed };
  }
}
