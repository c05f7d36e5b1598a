// Vectors out of a trained M6 (the embed task): one L2-normalised vector per image and per text in
// the shared space the contrastive objective trained, so text→image search and "more like this"
// are dot products. Inputs are batched; an unreadable image or an empty text fails only itself.
import * as torch from '../torch/index.js';
import { encodeSource } from '../data/loader.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { M6Model } from '../model/index.js';
import { chunks, imageTensor, preparePixels, sourceTensors, type ImageInput } from './inputs.js';
import type { ComputeContext } from './text.js';

export interface EmbedOptions {
  /** Inputs run at once (default 64). */
  batchSize?: number;
  /** Runs each batch's compute (e.g. under autocast). */
  context?: ComputeContext;
}
const asIs: ComputeContext = (fn) => fn();

export type EmbedResult = { ok: true; vector: Float32Array } | { ok: false; error: string };

function rows(t: torch.Tensor, n: number, dim: number): Float32Array[] {
  const flat = t.toTypedArray() as Float32Array;
  return Array.from({ length: n }, (_, i) => flat.slice(i * dim, (i + 1) * dim));
}

/** One vector per text, encoded as the embed task's training texts were (tokens then <eos>, cut to the model's length). */
export function embedTexts(model: M6Model, tokenizer: Tokenizer, texts: readonly string[], o: EmbedOptions = {}): EmbedResult[] {
  const cfg = model.cfg;
  const out: EmbedResult[] = [];
  for (const chunk of chunks(texts, o.batchSize ?? 64)) {
    const vectors = (o.context ?? asIs)(() => torch.noGrad(() => torch.scope(() => {
      const prompt = sourceTensors(chunk.map((t) => encodeSource(tokenizer, t, cfg.maxTextLen)), tokenizer.padId, model.device);
      return rows(model.embed(prompt).vectors, chunk.length, cfg.dim);
    })));
    chunk.forEach((text, i) => out.push(text.trim() === '' ? { ok: false, error: 'empty text' } : { ok: true, vector: vectors[i]! }));
  }
  return out;
}

/** One vector per image (a file path, or prepared pixels 3×S×S), decoded and resized as in training. */
export async function embedImages(model: M6Model, images: readonly ImageInput[], o: EmbedOptions = {}): Promise<EmbedResult[]> {
  const cfg = model.cfg;
  const pixels = await preparePixels(images, cfg.imageSize);
  const results: EmbedResult[] = new Array(images.length);
  pixels.forEach((p, i) => { if (!p!.ok) results[i] = p!; });
  const todo = images.map((_, i) => i).filter((i) => results[i] === undefined);
  for (const chunk of chunks(todo, o.batchSize ?? 64)) {
    const vectors = (o.context ?? asIs)(() => torch.noGrad(() => torch.scope(() => {
      const batch = imageTensor(chunk.map((i) => (pixels[i] as { pixels: Float32Array }).pixels), cfg.imageSize, model.device);
      return rows(model.embed({ images: batch }).vectors, chunk.length, cfg.dim);
    })));
    chunk.forEach((i, b) => (results[i] = { ok: true, vector: vectors[b]! }));
  }
  return results;
}
