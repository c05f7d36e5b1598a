// `loadPipeline(run)`: a trained run, loaded once — config, weights, tokenizer and, where the run
// has one, the VQ image tokenizer — with one method per task it was trained on. This is the one way
// to use a trained model: the CLI verbs, `m6 eval`, the demo and the server all come through here.
//
//   using m6 = await loadPipeline('runs/demo/run');
//   const [d] = await m6.describe(['photo.jpg']);          // { ok: true, text: 'red polka-dot dress…', … }
//   const [v] = await m6.embed({ texts: ['red dress'] });  // { ok: true, vector: Float32Array(…) }
//
// Every method takes a batch and returns one result per input, in order; an input that cannot be
// used (an unreadable image, an empty prompt) comes back as { ok: false, error } and the others go
// on. The pipeline owns its tensors: `close()` (or `using`) frees them, and a closed pipeline throws.
import * as torch from '../torch/index.js';
import { InputError } from '../torch/inputError.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { M6Config, M6Model } from '../model/index.js';
import { loadVqTokenizer, type VqTokenizer } from '../model/vq.js';
import { pickSampling, validateSampling, type SamplingOptions } from '../model/sampling.js';
import { TASKS } from '../tasks/instructions.js';
import { designOnePerPrompt, encodePng, generateDesigns, type DesignImage, type DesignResult } from './design.js';
import { embedImages, embedTexts, type EmbedResult } from './embed.js';
import type { ImageInput } from './inputs.js';
import { loadRun } from './runFolder.js';
import { allItemVectors, recommendFor, scoreHistories, similarityTo, topItems, type RecommendOptions, type RecommendResult } from './recommend.js';
import type { ItemVocabulary } from '../data/itemVocabulary.js';
import { ContinuousTexts, generateTexts, streamText, type ComputeContext, type ReadyTextPrompt, type TextDelta, type TextPrompt, type TextResult } from './text.js';

/** The tasks a pipeline can run (what a run may have been trained on, less training-only tasks such as denoise). */
export type PipelineTask = 'describe' | 'answer' | 'design' | 'embed' | 'recommend';
export const PIPELINE_TASKS: readonly PipelineTask[] = Object.freeze(['describe', 'answer', 'design', 'embed', 'recommend']);

export interface PipelineOptions {
  /** Where the model runs (default 'cpu'; 'cuda' or 'cuda:N' with a CUDA libtorch). */
  device?: torch.Device;
  /** 'float32' (default), or 'bfloat16' autocast: faster where the CPU or GPU has bf16 matmul, weights stay fp32. */
  dtype?: 'float32' | 'bfloat16';
}

/** A task the run cannot serve, or a closed pipeline. */
export class PipelineError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineError';
  }
}

export interface TextOptions {
  /** Most tokens to write (default: the task's, 64 for describe and 16 for answer). */
  maxNewTokens?: number;
  /** Beam search width (1 = greedy, the default). */
  numBeams?: number;
  /** Inputs run at once (default 16). */
  batchSize?: number;
  /** Stops the generation at its next decode step (the caller went away): the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface AnswerOptions extends TextOptions {
  /** The photo every question is about, unless the question names its own. */
  image?: ImageInput;
}

/** A question, alone or with the photo it is about. */
export type AnswerInput = string | { question: string; image?: ImageInput };

/** What a streamed text is about. */
export type TextRequest = { task: 'describe'; image: ImageInput } | { task: 'answer'; question: string; image?: ImageInput };
/** A describe or answer request whose image is already prepared pixels (3 × S × S, normalised). */
export type ReadyTextRequest =
  | { task: 'describe'; pixels: Float32Array; maxNewTokens?: number }
  | { task: 'answer'; question: string; pixels?: Float32Array; maxNewTokens?: number };

export interface DesignCallOptions extends SamplingOptions {
  /** Images per prompt (default 1). */
  n?: number;
  /** The same seed, prompt and n give the same images (default 0). */
  seed?: number;
  /** Rows sampled at once (default 16). */
  batchSize?: number;
  /** Classifier-free guidance scale (1 = none; default DESIGN_GUIDANCE, 3, for a model trained with design prompts dropped). */
  guidance?: number;
  /** Stops the designs at their next decode step: the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A designed image: its VQ codes, its RGB bytes (size × size × 3, row-major) and the same as a PNG file's bytes. */
export interface DesignedImage extends DesignImage {
  png: Buffer;
}

export type DesignOutput = { ok: true; images: DesignedImage[] } | { ok: false; error: string };

/** What to embed: images or texts, in one batch. */
export type EmbedInput = { images: readonly ImageInput[]; texts?: never } | { texts: readonly string[]; images?: never };

export type { EmbedResult, TextResult, TextDelta, ImageInput };

export class Pipeline implements Disposable {
  /** The checkpoint folder the weights came from. */
  readonly checkpoint: string;
  /** The optimizer step the weights are from. */
  readonly step: number;
  readonly config: M6Config;
  readonly tokenizer: Tokenizer;
  /** The tasks this run can serve: those it was trained on (design only where it has a VQ tokenizer). */
  readonly tasks: ReadonlySet<PipelineTask>;
  /** Every task the run was trained on, as trainer.json names them (denoise included). */
  readonly trainedOn: readonly string[];
  /** The run's VQ image tokenizer file, where it has one. */
  readonly vqFile: string | undefined;
  /** The items the run recommends among (RUN/items.json), where it was trained to recommend. */
  readonly items: ItemVocabulary | undefined;
  private _itemVectors: Float32Array | undefined;
  private _model: M6Model | undefined;
  private _vq: VqTokenizer | undefined;
  private readonly bf16: boolean;

  /** Use `loadPipeline`. */
  constructor(run: { checkpoint: string; step: number; config: M6Config; tokenizer: Tokenizer; model: M6Model; trainedOn: readonly string[]; vqFile: string | undefined; vq: VqTokenizer | undefined; items: ItemVocabulary | undefined }, o: PipelineOptions) {
    this.checkpoint = run.checkpoint;
    this.step = run.step;
    this.config = run.config;
    this.tokenizer = run.tokenizer;
    this._model = run.model;
    this._vq = run.vq;
    this.vqFile = run.vqFile;
    this.items = run.items;
    this.trainedOn = Object.freeze([...run.trainedOn]);
    this.tasks = new Set(PIPELINE_TASKS.filter((t) => run.trainedOn.includes(t) && (t !== 'design' || run.vq !== undefined) && (t !== 'recommend' || run.items !== undefined)));
    this.bf16 = o.dtype === 'bfloat16';
  }

  /** The model (eval mode). Evaluation code reads it; callers must not dispose it. */
  get model(): M6Model {
    this.ensureOpen();
    return this._model!;
  }

  /** The VQ image tokenizer, where the run has one. */
  get vq(): VqTokenizer | undefined {
    this.ensureOpen();
    return this._vq;
  }

  private ensureOpen(): void {
    if (this._model === undefined) throw new PipelineError(`the pipeline of ${this.checkpoint} is closed`);
  }

  supports(task: PipelineTask): boolean {
    return this.tasks.has(task);
  }

  /** Why the run cannot serve `task`, or undefined when it can. */
  whyNot(task: PipelineTask): string | undefined {
    if (this.tasks.has(task)) return undefined;
    if (task === 'design' && (this.trainedOn.includes('design') || this.vqFile === undefined)) {
      return `${this.checkpoint}: the run has no VQ image tokenizer (vq.safetensors): train it with design (m6 train --tasks design … or --tasks vq)`;
    }
    if (task === 'recommend' && this.trainedOn.includes('recommend')) return `${this.checkpoint}: the run has no item vocabulary (items.json beside its tokenizer.json)`;
    return `${this.checkpoint}: the run was not trained on ${task} (it was trained on ${this.trainedOn.join(', ') || 'nothing'}): train with --tasks ${[...this.trainedOn, task].join(',')}`;
  }

  /** Throws the reason unless the run serves `task` (or when the pipeline is closed). */
  require(task: PipelineTask): void {
    this.ensureOpen();
    const reason = this.whyNot(task);
    if (reason !== undefined) throw new PipelineError(reason);
  }

  /** The design call running now: sampling draws from libtorch's one global generator, seeded when
   * a call starts, so calls that overlap (each awaits between its steps) run one after another. */
  private designing: Promise<unknown> = Promise.resolve();

  private oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.designing.then(fn, fn);
    this.designing = run.catch(() => undefined);
    return run;
  }

  /** Runs a batch's compute at the pipeline's dtype. */
  private readonly context: ComputeContext = (fn) => (this.bf16 ? torch.autocast(fn, { device: this.model.device.startsWith('cuda') ? 'cuda' : 'cpu', dtype: 'bfloat16' }) : fn());

  /** A text for each product photo. */
  async describe(images: readonly ImageInput[], o: TextOptions = {}): Promise<TextResult[]> {
    this.require('describe');
    return this.generate(images.map((image) => ({ image, source: TASKS.describe.instruction })), { maxNewTokens: TASKS.describe.maxNewTokens, ...o });
  }

  /** An answer to each question, about its photo (or `o.image`), or from text alone. */
  async answer(questions: readonly AnswerInput[], o: AnswerOptions = {}): Promise<TextResult[]> {
    this.require('answer');
    const prompts = questions.map((q): TextPrompt => {
      const { question, image } = typeof q === 'string' ? { question: q, image: o.image } : { question: q.question, image: q.image ?? o.image };
      return image !== undefined ? { source: question, image, ...this.answerImage } : { source: question };
    });
    return this.generate(prompts, { maxNewTokens: TASKS.answer.maxNewTokens, ...o });
  }

  /** How an answer prompt reads its image: apart from the question for a model trained so (M6Config.packAnswers). */
  private get answerImage(): { isolateImage?: true } {
    return this.model.cfg.packAnswers ? { isolateImage: true } : {};
  }

  private generate(prompts: TextPrompt[], o: TextOptions & { maxNewTokens: number }): Promise<TextResult[]> {
    return generateTexts(this.model, this.tokenizer, prompts, {
      maxNewTokens: o.maxNewTokens, ...(o.numBeams !== undefined ? { numBeams: o.numBeams } : {}), ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
      context: this.context, ...(o.signal !== undefined ? { signal: o.signal } : {}),
    });
  }

  /**
   * A running text batch that describe and answer requests join between decode steps and leave as
   * each finishes (continuous batching, greedy; `readyPrompt` makes their prompts). A server's
   * batcher drives it a step at a time; `dispose` it when done.
   */
  continuousText(): ContinuousTexts {
    this.ensureOpen();
    return new ContinuousTexts(this.model, this.tokenizer, this.context);
  }

  /** The prompt a describe or answer request with prepared pixels reads, and its length (the task's default unless given). */
  readyPrompt(request: ReadyTextRequest): ReadyTextPrompt {
    this.require(request.task);
    const maxNewTokens = request.maxNewTokens ?? TASKS[request.task].maxNewTokens;
    if (request.task === 'describe') return { source: TASKS.describe.instruction, pixels: request.pixels, maxNewTokens };
    return { source: request.question, ...(request.pixels !== undefined ? { pixels: request.pixels, ...this.answerImage } : {}), maxNewTokens };
  }

  /**
   * One text as it is written, token by token (a server streams it; the event loop runs between
   * tokens). The iterator's return value is the whole result.
   *
   *   for await (const { text } of m6.generateStream({ task: 'describe', image: 'photo.jpg' })) process.stdout.write(text);
   */
  generateStream(request: TextRequest, o: Omit<TextOptions, 'batchSize'> = {}): AsyncGenerator<TextDelta, TextResult, void> {
    this.require(request.task);
    const prompt: TextPrompt = request.task === 'describe'
      ? { image: request.image, source: TASKS.describe.instruction }
      : { source: request.question, ...(request.image !== undefined ? { image: request.image, ...this.answerImage } : {}) };
    return streamText(this.model, this.tokenizer, prompt, { maxNewTokens: o.maxNewTokens ?? TASKS[request.task].maxNewTokens, ...(o.numBeams !== undefined ? { numBeams: o.numBeams } : {}), context: this.context });
  }

  /** n images per prompt, seeded by (seed, prompt): the same seed, prompt and n give the same images. */
  async design(prompts: readonly string[], o: DesignCallOptions = {}): Promise<DesignOutput[]> {
    const { vq, sampling } = this.designSetup(o);
    const n = o.n ?? 1;   // generateDesigns checks it before drawing anything
    return withPng(await this.oneAtATime(() => generateDesigns(this.model, this.tokenizer, vq, prompts, { n, ...this.designRun(o), ...sampling })));
  }

  /**
   * One image per prompt, many prompts sampled together (evaluation, bulk generation): batch k is
   * seeded by (seed, k), so the images depend on the seed, the prompts and their order.
   */
  async designEach(prompts: readonly string[], o: Omit<DesignCallOptions, 'n'> = {}): Promise<DesignOutput[]> {
    const { vq, sampling } = this.designSetup(o);
    return withPng(await this.oneAtATime(() => designOnePerPrompt(this.model, this.tokenizer, vq, prompts, { ...this.designRun(o), ...sampling })));
  }

  /** How a design call runs: its seed, batch size, signal, and the pipeline's step context. */
  private designRun(o: Omit<DesignCallOptions, 'n'>): { seed: number; batchSize?: number; guidance?: number; signal?: AbortSignal; context: ComputeContext } {
    return { seed: o.seed ?? 0, ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}), ...(o.guidance !== undefined ? { guidance: o.guidance } : {}), ...(o.signal !== undefined ? { signal: o.signal } : {}), context: this.context };
  }

  private designSetup(o: SamplingOptions): { vq: VqTokenizer; sampling: SamplingOptions } {
    this.require('design');
    const sampling = pickSampling(o);
    validateSampling(sampling);
    return { vq: this._vq!, sampling };
  }

  /** One unit vector per image or text in the shared space (search = dot product). */
  async embed(input: EmbedInput, o: { batchSize?: number } = {}): Promise<EmbedResult[]> {
    this.require('embed');
    const options = { ...o, context: this.context };
    return input.texts !== undefined ? embedTexts(this.model, this.tokenizer, input.texts, options) : embedImages(this.model, input.images, options);
  }

  /**
   * Recommendations for each shopper's history (item ids, oldest first): the k items the run scores
   * highest, the history's own items left out unless told otherwise.
   *
   *   const [r] = await m6.recommend([['p000012', 'p000481']], { k: 5 });  // { ok: true, items: [{ id, score }, …] }
   */
  async recommend(histories: readonly (readonly string[])[], o: Omit<RecommendOptions, 'context'> = {}): Promise<RecommendResult[]> {
    this.require('recommend');
    return recommendFor(this.model, this.tokenizer, this.items!, histories, { ...o, context: this.context });
  }

  /** A score for every item (items.ids order) per history of item indices: what evaluation ranks. */
  scoreHistories(histories: readonly (readonly number[])[], o: { batchSize?: number } = {}): Float32Array[] {
    this.require('recommend');
    return scoreHistories(this.model, this.tokenizer, histories, { ...o, context: this.context });
  }

  /** Items whose recommend vectors are closest to item `id`'s (cosine), the item itself left out. */
  similarItems(id: string, o: { k?: number; keep?: (id: string) => boolean } = {}): RecommendResult {
    this.require('recommend');
    const index = this.items!.index(id);
    if (index === undefined) return { ok: false, error: `unknown item '${id}': the run's ${this.items!.size} items (items.json) do not include it` };
    return { ok: true, items: topItems(this.itemSimilarities(index), this.items!, o.k ?? 10, new Set([index]), o.keep), unknown: [] };
  }

  /** Cosine of every item's recommend vector with item `index`'s (items.ids order). */
  itemSimilarities(index: number): Float32Array {
    this.require('recommend');
    this._itemVectors ??= allItemVectors(this.model);
    return similarityTo(this._itemVectors, this.config.dim, index);
  }

  /** Frees the model and the VQ tokenizer. Idempotent; the pipeline throws once closed. */
  close(): void {
    this._model?.dispose();
    this._vq?.dispose();
    this._model = undefined;
    this._vq = undefined;
    this._itemVectors = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

async function withPng(results: DesignResult[]): Promise<DesignOutput[]> {
  return Promise.all(results.map(async (r): Promise<DesignOutput> => (r.ok ? { ok: true, images: await Promise.all(r.images.map(async (image) => ({ ...image, png: await encodePng(image) }))) } : r)));
}

/**
 * Loads a run folder (its newest checkpoint) or one checkpoint folder. A missing or broken run is
 * an InputError naming the file and what was wrong.
 */
export async function loadPipeline(runDir: string, o: PipelineOptions = {}): Promise<Pipeline> {
  const run = await loadRun(runDir);
  let vq: VqTokenizer | undefined;
  try {
    if (o.device !== undefined && o.device !== 'cpu') run.model.to({ device: o.device });
    vq = run.vqFile !== undefined && run.trainer.tasks.some((t) => t.name === 'design') ? loadVqTokenizer(run.vqFile, o.device !== undefined ? { device: o.device } : {}) : undefined;
    vq?.eval();
  } catch (err) {
    run.model.dispose();
    throw err;
  }
  return new Pipeline({
    checkpoint: run.checkpoint, step: run.trainer.step, config: run.config, tokenizer: run.tokenizer, model: run.model,
    trainedOn: run.trainer.tasks.map((t) => t.name), vqFile: run.vqFile, vq, items: run.items,
  }, o);
}
