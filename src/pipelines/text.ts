// Text out of a trained M6: describe (image + instruction) and answer (question, with or without an
// image) both come down to "encode the prompt like the training loader did, generate greedily,
// decode". Inputs are batched (image prompts and text-only prompts apart, because a batch has one
// image tensor or none), and a bad image fails only its own input.
import { encodeSource } from '../data/loader.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { M6Model } from '../model/index.js';
import { generateAsync, generateStream, type FinishReason, type GenerateOptions, type GenerationPrompt } from '../model/generate.js';
import { ContinuousBatch } from '../model/continuousBatch.js';
import { chunks, imageTensor, keptTensors, preparePixels, sourceTensors, type ImageInput } from './inputs.js';

export interface TextPrompt {
  /** An image file to read, or already prepared pixels (3 × S × S, normalised). */
  image?: ImageInput;
  /** The source text: an instruction or a question. */
  source: string;
  /** The image does not attend the source (an answer prompt of a `packAnswers` model). */
  isolateImage?: boolean;
}

/** Prompts that can share one batch: all with an image or none, and the image attending its text or not. */
function promptGroups(n: number, hasImage: (i: number) => boolean, isolated: (i: number) => boolean): number[][] {
  const groups = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const key = hasImage(i) ? (isolated(i) ? 'image, isolated' : 'image') : 'text';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(i);
  }
  return [...groups.values()];
}

/** One generated text: the words, the token ids they decode from, and the model's log-probability of them. */
export type TextResult =
  | { ok: true; text: string; tokenIds: number[]; logProb: number; finishReason: FinishReason }
  | { ok: false; error: string };

export interface GenerateTextOptions {
  maxNewTokens: number;
  batchSize?: number;
  /** Beam search width (1 = greedy). */
  numBeams?: number;
  /** Runs each step's compute (e.g. under autocast); default: as is. */
  context?: ComputeContext;
  /** Stops the generation at its next step (the caller went away): throws the signal's reason. */
  signal?: AbortSignal;
}

/** A wrapper the compute of each step runs inside: autocast, a device guard. Synchronous, like the compute. */
export type ComputeContext = <T>(fn: () => T) => T;

/** How text is decoded: never padding or BOS, stop at <eos>, at most the model's text length. */
function textDecoding(model: M6Model, tokenizer: Tokenizer, o: GenerateTextOptions): GenerateOptions {
  return {
    kind: 'text', maxNewTokens: Math.min(o.maxNewTokens, model.cfg.maxTextLen), numBeams: o.numBeams ?? 1,
    bosId: tokenizer.bosId, padId: tokenizer.padId, stopTokens: [tokenizer.eosId], suppressTokens: [tokenizer.padId, tokenizer.bosId],
  };
}

/** The tensors of prompts whose pixels are ready (all with an image, or none), kept until `dispose`. */
function promptTensors(model: M6Model, tokenizer: Tokenizer, sources: readonly string[], pixels: readonly Float32Array[] | null, isolateImage = false): { tensors: GenerationPrompt; dispose: () => void } {
  const cfg = model.cfg, device = model.device;
  return keptTensors(() => {
    const prompt: GenerationPrompt = sourceTensors(sources.map((s) => encodeSource(tokenizer, s, cfg.maxTextLen)), tokenizer.padId, device);
    if (pixels !== null) prompt.images = imageTensor(pixels, cfg.imageSize, device);
    if (pixels !== null && isolateImage) prompt.isolateImage = true;
    return prompt;
  });
}

/** Options every stepwise generation of `o` takes: its step context and its signal. */
function stepOptions(o: GenerateTextOptions): Pick<GenerateOptions, 'stepContext' | 'signal'> {
  return { ...(o.context !== undefined ? { stepContext: o.context } : {}), ...(o.signal !== undefined ? { signal: o.signal } : {}) };
}

function decoded(tokenizer: Tokenizer, tokenIds: number[], logProb: number, finishReason: FinishReason): TextResult {
  return { ok: true, text: tokenizer.decode(tokenIds, { skipSpecialTokens: true }).trim(), tokenIds, logProb, finishReason };
}

/** Generates one text per prompt; per-prompt failures (unreadable image) come back as errors. */
export async function generateTexts(model: M6Model, tokenizer: Tokenizer, prompts: readonly TextPrompt[], o: GenerateTextOptions): Promise<TextResult[]> {
  const results: TextResult[] = new Array(prompts.length);
  const pixels = await preparePixels(prompts.map((p) => p.image), model.cfg.imageSize);
  pixels.forEach((p, i) => { if (p !== undefined && !p.ok) results[i] = p; });
  const decoding = textDecoding(model, tokenizer, o);
  const todo = prompts.map((_, i) => i).filter((i) => results[i] === undefined);
  for (const group of promptGroups(todo.length, (k) => pixels[todo[k]!] !== undefined, (k) => prompts[todo[k]!]!.isolateImage === true)) {
    const withImage = pixels[todo[group[0]!]!] !== undefined;
    for (const rows of chunks(group.map((k) => todo[k]!), o.batchSize ?? 16)) {
      // Stepwise: the event loop runs between decode steps (a server stays responsive).
      const images = withImage ? rows.map((i) => (pixels[i] as { pixels: Float32Array }).pixels) : null;
      const prompt = promptTensors(model, tokenizer, rows.map((i) => prompts[i]!.source), images, prompts[rows[0]!]!.isolateImage);
      const r = await generateAsync(model, prompt.tensors, { ...decoding, ...stepOptions(o) }).finally(prompt.dispose);
      rows.forEach((i, b) => { results[i] = decoded(tokenizer, r.sequences[b]!, r.logProbs[b]!, r.finishReasons[b]!); });
    }
  }
  return results;
}

/** A token of a streamed text, with the text it adds (a multi-byte character may wait for its last byte). */
export interface TextDelta { tokenId: number; text: string }

/**
 * One prompt's text as it is written: an async iterator of tokens that yields to the event loop
 * between steps, returning the whole result at the end. An unreadable image yields no token and
 * comes back as the result's error. Breaking out of the loop frees the generation.
 */
export async function* streamText(model: M6Model, tokenizer: Tokenizer, prompt: TextPrompt, o: GenerateTextOptions): AsyncGenerator<TextDelta, TextResult, void> {
  const [pixels] = await preparePixels([prompt.image], model.cfg.imageSize);
  if (pixels !== undefined && !pixels.ok) return pixels;
  const tensors = promptTensors(model, tokenizer, [prompt.source], pixels !== undefined ? [pixels.pixels] : null, prompt.isolateImage);
  try {
    const tokens: number[] = [];
    let shown = '';
    const stream = generateStream(model, tensors.tensors, { ...textDecoding(model, tokenizer, o), ...stepOptions(o) });
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        // What was held back (bytes that never made a whole character) goes out with the end.
        const rest = tokenizer.decode(tokens, { skipSpecialTokens: true }).slice(shown.length);
        if (rest.length > 0) yield { tokenId: tokens[tokens.length - 1]!, text: rest };
        return decoded(tokenizer, next.value.sequences[0]!, next.value.logProbs[0]!, next.value.finishReasons[0]!);
      }
      tokens.push(next.value.token);
      const text = tokenizer.decode(tokens, { skipSpecialTokens: true });
      // Hold back a partial UTF-8 character (decoded as U+FFFD) until its last byte arrives.
      if (text.endsWith('\uFFFD')) continue;
      yield { tokenId: next.value.token, text: text.slice(shown.length) };
      shown = text;
    }
  } finally {
    tensors.dispose();
  }
}

/** A text prompt whose pixels are already prepared (a server decodes uploads before they queue). */
export interface ReadyTextPrompt {
  source: string;
  pixels?: Float32Array;
  maxNewTokens: number;
  /** As TextPrompt.isolateImage. */
  isolateImage?: boolean;
}

/**
 * Text rows that join one running greedy generation between its decode steps and leave as each
 * finishes (continuous batching, `ContinuousBatch`): a server's describe and answer requests share
 * it, so its batch stays full while requests come and go. Each row writes what `generateTexts`
 * writes for it alone.
 */
export class ContinuousTexts {
  private readonly batch: ContinuousBatch;

  constructor(private readonly model: M6Model, private readonly tokenizer: Tokenizer, context?: ComputeContext) {
    this.batch = new ContinuousBatch(model, {
      bosId: tokenizer.bosId, padId: tokenizer.padId, stopTokens: [tokenizer.eosId], suppressTokens: [tokenizer.padId, tokenizer.bosId],
      ...(context !== undefined ? { stepContext: context } : {}),
    });
  }

  /** Rows running, or finished and not yet handed back by step(). */
  get size(): number {
    return this.batch.size;
  }

  /** Reads the prompts (one prefill per group that can share a batch: promptGroups); returns their row ids. */
  join(prompts: readonly ReadyTextPrompt[]): number[] {
    const ids: number[] = new Array(prompts.length);
    try {
      this.joinGroups(prompts, ids);
    } catch (err) {
      // The image prompts may have joined before the text-only ones failed: none of them is kept.
      for (const id of ids) if (id !== undefined) this.batch.drop(id);
      throw err;
    }
    return ids;
  }

  private joinGroups(prompts: readonly ReadyTextPrompt[], ids: number[]): void {
    for (const rows of promptGroups(prompts.length, (i) => prompts[i]!.pixels !== undefined, (i) => prompts[i]!.isolateImage === true)) {
      const images = prompts[rows[0]!]!.pixels !== undefined ? rows.map((i) => prompts[i]!.pixels!) : null;
      const prompt = promptTensors(this.model, this.tokenizer, rows.map((i) => prompts[i]!.source), images, prompts[rows[0]!]!.isolateImage);
      try {
        const maxNew = rows.map((i) => Math.min(prompts[i]!.maxNewTokens, this.model.cfg.maxTextLen));
        this.batch.join(prompt.tensors, maxNew).forEach((id, k) => { ids[rows[k]!] = id; });
      } finally {
        prompt.dispose();
      }
    }
  }

  /** Stops row `id` (its caller went away). */
  drop(id: number): void {
    this.batch.drop(id);
  }

  /** One token for every running row; the rows that have finished, decoded. */
  step(): Array<{ id: number; result: TextResult }> {
    return this.batch.step().map((r) => ({ id: r.id, result: decoded(this.tokenizer, r.tokens, r.logProb, r.finishReason) }));
  }

  dispose(): void {
    this.batch.dispose();
  }
}
