// What every task of a pipeline does first: turn its inputs into the model's tensors. Images are
// decoded and resized as in training (each file once, however many inputs name it), and one that
// cannot be read fails only its own input; token rows are right-padded into (B, L) ids and a mask.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { ImageDecodeError, loadImage } from '../data/image.js';
import { padBatch } from '../data/loader.js';

/** An image as a task takes it: a file to read, or pixels already prepared (3 × S × S, normalised as in training). */
export type ImageInput = string | Float32Array;

/** Prepared pixels, or why an input has none. */
export type PreparedPixels = { ok: true; pixels: Float32Array } | { ok: false; error: string };

/**
 * The pixels of each image at the model's size; `undefined` inputs (a question without a photo)
 * stay undefined. A file that is missing or not an image, or prepared pixels of the wrong size,
 * come back as that input's error; any other failure is a bug and throws.
 */
export async function preparePixels(images: ReadonlyArray<ImageInput | undefined>, size: number): Promise<Array<PreparedPixels | undefined>> {
  const plane = 3 * size * size;
  const decoded = new Map<string, Promise<Float32Array>>();
  return Promise.all(images.map(async (image): Promise<PreparedPixels | undefined> => {
    if (image === undefined) return undefined;
    if (typeof image !== 'string') {
      return image.length === plane ? { ok: true, pixels: image } : { ok: false, error: `prepared image has ${image.length} values; the model takes 3×${size}×${size} = ${plane}` };
    }
    let pixels = decoded.get(image);
    if (pixels === undefined) decoded.set(image, (pixels = loadImage(image, { size }).then((p) => p.data)));
    try {
      return { ok: true, pixels: await pixels };
    } catch (err) {
      if (!(err instanceof ImageDecodeError)) throw err;
      return { ok: false, error: `${err.reason}: ${err.detail}` };
    }
  }));
}

/** Token rows → (B, L) int64 ids right-padded with `padId`, and the (B, L) bool mask of real tokens. */
export function sourceTensors(rows: readonly number[][], padId: number, device: torch.Device = 'cpu'): { source: Tensor; sourceMask: Tensor } {
  const p = padBatch(rows, padId);
  return {
    source: torch.tensor(p.ids.data, { shape: p.ids.shape, dtype: 'int64', device }),
    sourceMask: torch.tensor(Uint8Array.from(p.mask.data, (v) => (v ? 1 : 0)), { shape: p.mask.shape, dtype: 'bool', device }),
  };
}

/** Prepared pixels of B images → one (B, 3, S, S) float tensor. */
export function imageTensor(pixels: readonly Float32Array[], size: number, device: torch.Device = 'cpu'): Tensor {
  const plane = 3 * size * size;
  const data = new Float32Array(pixels.length * plane);
  pixels.forEach((p, b) => data.set(p, b * plane));
  return torch.tensor(data, { shape: [pixels.length, 3, size, size], device });
}

/**
 * A record of tensors made by `make` that must outlive awaits (a stepwise generation's prompt): made
 * in a scope, then kept out of every scope, and freed by the returned `dispose`.
 */
export function keptTensors<T extends object>(make: () => T): { tensors: T; dispose: () => void } {
  const kept: Tensor[] = [];
  const tensors = torch.noGrad(() => torch.scope(() => {
    const t = make();
    for (const v of Object.values(t)) if (v instanceof torch.Tensor) kept.push(v.keep());
    return t;
  }));
  return { tensors, dispose: () => { for (const t of kept) t.dispose(); } };
}

/** The batches of `items`, `size` at a time (the last one shorter). */
export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let at = 0; at < items.length; at += size) yield items.slice(at, at + size);
}
