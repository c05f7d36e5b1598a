// Images out of a trained M6 (design): a prompt → n sampled grids of image codes → the VQ decoder →
// pixels → PNG. Sampling is seeded per prompt (from the seed and the prompt's text), so a prompt gets
// the same images with the same seed whatever other prompts share the call. A bad prompt (empty, too
// long) fails alone.
import sharp from 'sharp';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { deriveSeed } from '../data/random.js';
import { InputError } from '../torch/inputError.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { gridSize, type M6Model } from '../model/index.js';
import { generateAsync } from '../model/generate.js';
import type { VqTokenizer } from '../model/vq.js';
import type { SamplingOptions } from '../model/sampling.js';
import { DESIGN_GUIDANCE, DESIGN_SAMPLING } from '../tasks/instructions.js';
import { encodeDesignPrompt, encodeUnconditionalDesign } from '../tasks/designPrompt.js';
import { keptTensors, sourceTensors } from './inputs.js';
import type { ComputeContext } from './text.js';

export interface DesignOptions extends SamplingOptions {
  /** Images per prompt. */
  n: number;
  seed: number;
  /** Classifier-free guidance scale (1 = none; default DESIGN_GUIDANCE for a model trained with
   * prompts dropped, 1 otherwise): each row is also sampled without its prompt, at twice the compute. */
  guidance?: number;
  /** Rows generated at once. */
  batchSize?: number;
  /** Runs each step's compute (e.g. under autocast); default: as is. */
  context?: ComputeContext;
  /** Stops the designs at the next decode step (the caller went away): throws the signal's reason. */
  signal?: AbortSignal;
}

export interface DesignImage {
  /** VQ codes, row-major over the code grid (grid² of them). */
  codes: Int32Array;
  /** size × size × 3 RGB bytes (row-major, HWC). */
  rgb: Uint8Array;
  size: number;
}

export type DesignResult = { ok: true; images: DesignImage[] } | { ok: false; error: string };

/** Decoded images (B, 3, S, S) in [-1, 1] → HWC bytes per image. */
export function toRgbBytes(images: Tensor): Uint8Array[] {
  return torch.noGrad(() => torch.scope(() => {
    const [B, , S] = images.shape as [number, number, number, number];
    const hwc = images.clamp(-1, 1).add(1).mul(127.5).round().permute(0, 2, 3, 1).contiguous().to('uint8');
    const flat = hwc.reshape(-1).toArray() as number[];
    const plane = S * S * 3;
    return Array.from({ length: B }, (_v, b) => Uint8Array.from(flat.slice(b * plane, (b + 1) * plane)));
  }));
}

/** PNG bytes of an RGB image. */
export async function encodePng(image: { rgb: Uint8Array; size: number }): Promise<Buffer> {
  return sharp(Buffer.from(image.rgb.buffer, image.rgb.byteOffset, image.rgb.byteLength), { raw: { width: image.size, height: image.size, channels: 3 } }).png().toBuffer();
}

/** Checks that the VQ draws the model's code grid; returns the grid side. */
function checkGrid(model: M6Model, vq: VqTokenizer): number {
  const cfg = model.cfg;
  const grid = gridSize(cfg);
  const [vqH, vqW] = vq.gridSize(cfg.imageSize);
  if (vqH !== grid || vqW !== grid) throw new RangeError(`the VQ tokenizer makes a ${vqH}×${vqW} code grid from ${cfg.imageSize}px images but ${cfg.name} writes ${grid}×${grid} codes`);
  return grid;
}

/** The options given, the defaults for the rest. */
function samplingOf(o: SamplingOptions): Required<SamplingOptions> {
  return { temperature: o.temperature ?? DESIGN_SAMPLING.temperature, topK: o.topK ?? DESIGN_SAMPLING.topK, topP: o.topP ?? DESIGN_SAMPLING.topP };
}

/**
 * The guidance scale a design call samples with: the one asked for, else DESIGN_GUIDANCE where the
 * model learnt unprompted images too (M6Config.designPromptDropout) and none where it did not.
 */
export function designGuidance(model: M6Model, asked: number | undefined): number {
  if (asked !== undefined && !(Number.isFinite(asked) && asked >= 0)) throw new InputError(`guidance must be a number ≥ 0 (1 = none), got ${asked}`);
  const trained = model.cfg.designPromptDropout > 0;
  if (asked !== undefined && asked !== 1 && !trained) {
    throw new InputError(`guidance ${asked}: this model was trained without dropping design prompts (designPromptDropout 0), so it has no unprompted image model to guide against; use guidance 1`);
  }
  return asked ?? (trained ? DESIGN_GUIDANCE : 1);
}

/** What one sampling call needs besides its rows: the seed, the sampling, the guidance and how steps run. */
interface SampleCall { seed: number; sampling: Required<SamplingOptions>; guidance: number; context: ComputeContext; signal?: AbortSignal }

/**
 * One sampled image per encoded source (rows right-padded to one length), decoded by the VQ. The
 * codes are drawn a step at a time: the event loop runs between decode steps.
 */
async function sampleImages(model: M6Model, tokenizer: Tokenizer, vq: VqTokenizer, sources: readonly number[][], c: SampleCall): Promise<DesignImage[]> {
  const grid = checkGrid(model, vq);
  const prompt = keptTensors(() => sourceTensors(sources, tokenizer.padId, model.device));
  // The unprompted twin only where it is used (guidance 1 samples the prompts alone).
  const unconditional = c.guidance !== 1 ? keptTensors(() => sourceTensors([encodeUnconditionalDesign(tokenizer)], tokenizer.padId, model.device)) : undefined;
  const { sequences } = await generateAsync(model, prompt.tensors, {
    kind: 'image', sample: true, ...c.sampling, seed: c.seed, bosId: tokenizer.bosId, padId: tokenizer.padId,
    ...(unconditional !== undefined ? { guidance: { scale: c.guidance, unconditional: unconditional.tensors } } : {}),
    stepContext: c.context, ...(c.signal !== undefined ? { signal: c.signal } : {}),
  }).finally(() => { prompt.dispose(); unconditional?.dispose(); });
  return c.context(() => torch.noGrad(() => torch.scope(() => {
    const codes = sequences.map((seq) => Int32Array.from(seq, (id) => id - tokenizer.imageCodeStart));
    const flat = new Int32Array(sources.length * grid * grid);
    codes.forEach((c, b) => flat.set(c, b * grid * grid));
    const pixels = vq.decode(torch.tensor(flat, { shape: [sources.length, grid, grid], dtype: 'int64', device: model.device }));
    return toRgbBytes(pixels).map((rgb, b) => ({ codes: codes[b]!, rgb, size: model.cfg.imageSize }));
  })));
}

const asIs: ComputeContext = (fn) => fn();

/** The sampling call of `o` for one seed. */
function sampleCall(model: M6Model, o: Omit<DesignOptions, 'n'>, seed: number): SampleCall {
  return { seed, sampling: samplingOf(o), guidance: designGuidance(model, o.guidance), context: o.context ?? asIs, ...(o.signal !== undefined ? { signal: o.signal } : {}) };
}

/**
 * n images per prompt; per-prompt failures come back as errors. Each prompt's images are drawn
 * together, seeded by (seed, prompt): the same seed, prompt and n give the same images.
 */
export async function generateDesigns(model: M6Model, tokenizer: Tokenizer, vq: VqTokenizer, prompts: readonly string[], o: DesignOptions): Promise<DesignResult[]> {
  if (!Number.isInteger(o.n) || o.n < 1) throw new RangeError(`n (images per prompt) must be a positive integer, got ${o.n}`);
  checkGrid(model, vq);
  designGuidance(model, o.guidance);   // a bad scale fails before any prompt is drawn
  const batchSize = o.batchSize ?? 16;
  vq.eval();
  const results: DesignResult[] = [];
  for (const prompt of prompts) {
    const encoded = encodeDesignPrompt(tokenizer, prompt, model.cfg.maxTextLen);
    if ('error' in encoded) { results.push({ ok: false, error: encoded.error }); continue; }
    const images: DesignImage[] = [];
    for (let at = 0, chunk = 0; at < o.n; at += batchSize, chunk++) {
      const rows = Math.min(batchSize, o.n - at);
      images.push(...await sampleImages(model, tokenizer, vq, Array.from({ length: rows }, () => encoded.ids), sampleCall(model, o, deriveSeed(o.seed, 'design', prompt, chunk))));
    }
    results.push({ ok: true, images });
  }
  return results;
}

/**
 * One image per prompt, prompts batched together (evaluation: many prompts, one sample each).
 * Batch k is seeded by (seed, k), so the images depend on the seed, the prompts and their order.
 */
export async function designOnePerPrompt(model: M6Model, tokenizer: Tokenizer, vq: VqTokenizer, prompts: readonly string[], o: Omit<DesignOptions, 'n'>): Promise<DesignResult[]> {
  checkGrid(model, vq);
  designGuidance(model, o.guidance);
  const batchSize = o.batchSize ?? 16;
  vq.eval();
  const results: DesignResult[] = new Array(prompts.length);
  const ok: Array<{ i: number; ids: number[] }> = [];
  prompts.forEach((prompt, i) => {
    const encoded = encodeDesignPrompt(tokenizer, prompt, model.cfg.maxTextLen);
    if ('error' in encoded) results[i] = { ok: false, error: encoded.error };
    else ok.push({ i, ids: encoded.ids });
  });
  for (let at = 0, k = 0; at < ok.length; at += batchSize, k++) {
    const rows = ok.slice(at, at + batchSize);
    const images = await sampleImages(model, tokenizer, vq, rows.map((r) => r.ids), sampleCall(model, o, deriveSeed(o.seed, 'design-batch', k)));
    rows.forEach((r, b) => { results[r.i] = { ok: true, images: [images[b]!] }; });
  }
  return results;
}
