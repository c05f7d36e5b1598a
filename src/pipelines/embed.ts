// Vectors out of a trained M6 (the embed task): one L2-normalised vector per image and per text in
// the shared space the contrastive objective trained, so text→image search and "more like this"
// are dot products. Inputs are batched; an unreadable image fails only its own input.
import * as torch from '../torch/index.js';
import { padBatch } from '../data/loader.js';
import { ImageDecodeError, loadImage } from '../data/image.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { M6Model } from '../model/index.js';

export type EmbedResult = { ok: true; vector: Float32Array } | { ok: false; error: string };

function rows(t: torch.Tensor, n: number, dim: number): Float32Array[] {
  const flat = t.toTypedArray() as Float32Array;
  return Array.from({ length: n }, (_, i) => flat.slice(i * dim, (i + 1) * dim));
}

/** One vector per text, encoded as the embed task's training texts were (tokens then <eos>, cut to the model's length). */
export function embedTexts(model: M6Model, tokenizer: Tokenizer, texts: readonly string[], o: { batchSize?: number } = {}): EmbedResult[] {
  const cfg = model.cfg, batchSize = o.batchSize ?? 64;
  const out: EmbedResult[] = [];
  for (let at = 0; at < texts.length; at += batchSize) {
    const chunk = texts.slice(at, at + batchSize);
    const encoded = chunk.map((t) => [...tokenizer.encode(t).slice(0, cfg.maxTextLen - 1), tokenizer.eosId]);
    const vectors = torch.noGrad(() => torch.scope(() => {
      const p = padBatch(encoded, tokenizer.padId);
      const source = torch.tensor(p.ids.data, { shape: p.ids.shape, dtype: 'int64' });
      const sourceMask = torch.tensor(Uint8Array.from(p.mask.data, (v) => (v ? 1 : 0)), { shape: p.mask.shape, dtype: 'bool' });
      return rows(model.embed({ source, sourceMask }).vectors, chunk.length, cfg.dim);
    }));
    chunk.forEach((text, i) => out.push(text.trim() === '' ? { ok: false, error: 'empty text' } : { ok: true, vector: vectors[i]! }));
  }
  return out;
}

/** One vector per image (a file path, or prepared pixels 3×S×S), decoded and resized as in training. */
export async function embedImages(model: M6Model, images: ReadonlyArray<string | Float32Array>, o: { batchSize?: number } = {}): Promise<EmbedResult[]> {
  const cfg = model.cfg, batchSize = o.batchSize ?? 64;
  const plane = 3 * cfg.imageSize * cfg.imageSize;
  const results: EmbedResult[] = new Array(images.length);
  const pixels = await Promise.all(images.map(async (img, i) => {
    if (typeof img !== 'string') {
      if (img.length !== plane) { results[i] = { ok: false, error: `prepared image has ${img.length} values; the model takes 3×${cfg.imageSize}×${cfg.imageSize}` }; return null; }
      return img;
    }
    try {
      return (await loadImage(img, { size: cfg.imageSize })).data;
    } catch (err) {
      if (!(err instanceof ImageDecodeError)) throw err;
      results[i] = { ok: false, error: `${err.reason}: ${err.detail}` };
      return null;
    }
  }));
  const todo = images.map((_, i) => i).filter((i) => pixels[i] !== null);
  for (let at = 0; at < todo.length; at += batchSize) {
    const chunk = todo.slice(at, at + batchSize);
    const data = new Float32Array(chunk.length * plane);
    chunk.forEach((i, b) => data.set(pixels[i]!, b * plane));
    const vectors = torch.noGrad(() => torch.scope(() => {
      const batch = torch.tensor(data, { shape: [chunk.length, 3, cfg.imageSize, cfg.imageSize] });
      return rows(model.embed({ images: batch }).vectors, chunk.length, cfg.dim);
    }));
    chunk.forEach((i, b) => (results[i] = { ok: true, vector: vectors[b]! }));
  }
  return results;
}
