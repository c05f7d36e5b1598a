// Text out of a trained M6: describe (image + instruction) and answer (question, with or without an
// image) both come down to "encode the prompt like the training loader did, generate greedily,
// decode". Inputs are batched (image prompts and text-only prompts apart, because a batch has one
// image tensor or none), and a bad image fails only its own input.
import * as torch from '../torch/index.js';
import { padBatch } from '../data/loader.js';
import { ImageDecodeError, loadImage } from '../data/image.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { M6Model } from '../model/index.js';
import { generate } from '../model/generate.js';

export interface TextPrompt {
  /** An image file to read, or already prepared pixels (3 × S × S, normalised). */
  image?: string | Float32Array;
  /** The source text: an instruction or a question. */
  source: string;
}

export type TextResult = { ok: true; text: string } | { ok: false; error: string };

export interface GenerateTextOptions {
  maxNewTokens: number;
  batchSize?: number;
  /** Beam search width (1 = greedy). */
  numBeams?: number;
}

/** The encoded source of a prompt: the tokenizer's tokens then <eos>, cut to the model's text length (as the loader does). */
function encodeSource(tokenizer: Tokenizer, text: string, max: number): number[] {
  const ids = tokenizer.encode(text);
  return [...ids.slice(0, Math.max(0, max - 1)), tokenizer.eosId];
}

/** Generates one text per prompt; per-prompt failures (unreadable image) come back as errors. */
export async function generateTexts(model: M6Model, tokenizer: Tokenizer, prompts: readonly TextPrompt[], o: GenerateTextOptions): Promise<TextResult[]> {
  const cfg = model.cfg;
  const results: TextResult[] = new Array(prompts.length);
  // Each file is decoded once however many prompts use it (several questions about one photo).
  const decoded = new Map<string, ReturnType<typeof loadImage>>();
  const pixels: Array<Float32Array | null> = await Promise.all(prompts.map(async (p, i) => {
    if (p.image === undefined) return null;
    if (typeof p.image !== 'string') return p.image;
    let image = decoded.get(p.image);
    if (image === undefined) decoded.set(p.image, (image = loadImage(p.image, { size: cfg.imageSize })));
    try {
      return (await image).data;
    } catch (err) {
      if (!(err instanceof ImageDecodeError)) throw err;
      results[i] = { ok: false, error: `${err.reason}: ${err.detail}` };
      return null;
    }
  }));
  const batchSize = o.batchSize ?? 16;
  const plane = 3 * cfg.imageSize * cfg.imageSize;
  for (const withImage of [true, false]) {
    const todo = prompts.map((_, i) => i).filter((i) => results[i] === undefined && (pixels[i] !== null) === withImage);
    for (let at = 0; at < todo.length; at += batchSize) {
      const rows = todo.slice(at, at + batchSize);
      const sequences = torch.noGrad(() => torch.scope(() => {
        const src = padBatch(rows.map((i) => encodeSource(tokenizer, prompts[i]!.source, cfg.maxTextLen)), tokenizer.padId);
        const source = torch.tensor(src.ids.data, { shape: src.ids.shape, dtype: 'int64' });
        const sourceMask = torch.tensor(Uint8Array.from(src.mask.data, (v) => (v ? 1 : 0)), { shape: src.mask.shape, dtype: 'bool' });
        let images: torch.Tensor | undefined;
        if (withImage) {
          const data = new Float32Array(rows.length * plane);
          rows.forEach((i, b) => {
            const px = pixels[i]!;
            if (px.length !== plane) throw new RangeError(`prepared image has ${px.length} values; the model takes 3×${cfg.imageSize}×${cfg.imageSize} = ${plane}`);
            data.set(px, b * plane);
          });
          images = torch.tensor(data, { shape: [rows.length, 3, cfg.imageSize, cfg.imageSize] });
        }
        return generate(model, { images, source, sourceMask }, {
          kind: 'text', maxNewTokens: Math.min(o.maxNewTokens, cfg.maxTextLen), numBeams: o.numBeams ?? 1,
          bosId: tokenizer.bosId, padId: tokenizer.padId, stopTokens: [tokenizer.eosId], suppressTokens: [tokenizer.padId, tokenizer.bosId],
        }).sequences;
      }));
      rows.forEach((i, b) => {
        results[i] = { ok: true, text: tokenizer.decode(sequences[b]!, { skipSpecialTokens: true }).trim() };
      });
    }
  }
  return results;
}
