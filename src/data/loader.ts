// The training loader: a seeded multitask mixture of examples, batched with padding and attention
// masks into plain typed arrays with shapes (the tensor engine turns them into tensors), with the
// images prepared by worker threads a few batches ahead so a training step never waits on them.
//
// Determinism: which examples form batch k depends only on (seed, task weights, dataset sizes, k);
// each example's augmentation seed is derived from (seed, k, slot). Thread timing changes nothing:
// same seed, same batches, byte for byte.
import type { BadRow } from './badRows.js';
import { ImageDecodeError, type ImageOptions } from './image.js';
import { ImageWorkerPool, MainThreadImagePreparer, defaultWorkerCount, type ImagePreparer } from './imagePool.js';
import type { DataRow } from './manifest.js';
import { deriveSeed, Rng } from './random.js';
import type { Tokenizer } from './tokenizer.js';

/** One training example before tokenization; what each text means is up to the task. */
export interface Example {
  id: string;
  /** Absolute path of the example's image, if it has one. */
  imagePath?: string;
  /** The model's input text (an instruction, a question, a title…). */
  source?: string;
  /** The text the model should produce. */
  target?: string;
  /** An image the model should produce (design): its VQ codes are computed once from this file and set in targetCodes. */
  targetImage?: string;
  /**
   * The target image's VQ codes (0 … K-1, row-major over the code grid). When set, the target is the
   * image-code tokens <bos> imageCodeStart+c₀ … with no <eos>: an image ends by length, exactly as
   * generate(…, { kind: 'image' }) writes it.
   */
  targetCodes?: Int32Array;
  /** Special tokens written in `source` ("<mask>") are read as those tokens, not as text: for
   * sources the pipeline wrote itself (denoising), never for user text. */
  specialTokensInSource?: boolean;
  /** A held-out example's split: validation (for choosing settings) or test (for the final figures). */
  heldOut?: 'val' | 'test';
  /** The recommend task: a shopper's items (indices into the run's item vocabulary) in time order; each predicts the next. */
  items?: Int32Array;
  /**
   * Several (source, target) text pairs about the one image, packed into one row in place of
   * `source` and `target` (answer rows of a `packAnswers` model: every question about a product):
   * each pair's tokens see the image and their own pair only, counted from position 0, so one pass
   * over the image trains each pair as if it were alone (Batch.pairOf).
   */
  pairs?: ReadonlyArray<{ source: string; target: string }>;
  /**
   * What the row reads when its condition is dropped (design: the instruction without a prompt), in
   * a share of batches set by LoaderOptions.promptDropout: the model learns p(image) beside
   * p(image | prompt), which classifier-free guidance contrasts at sampling time.
   */
  unconditionalSource?: string;
}

export interface TaskSource {
  name: string;
  examples: readonly Example[];
  /** Relative share of batch slots; weights need not sum to 1. */
  weight?: number;
  /**
   * The share of the training (of its steps, or of a time budget) before which the task takes no
   * rows: a curriculum. The trainer turns it into a batch (DataLoader.joinAt); default 0.
   */
  start?: number;
}

/** A typed array and its shape, row-major. */
export interface TensorData<T extends Int32Array | Float32Array | Uint8Array> {
  data: T;
  shape: number[];
}

export interface Batch {
  step: number;
  ids: string[];
  tasks: string[];
  /** [B, 3, S, S] normalised pixels; null when no example in the batch has an image. */
  images: TensorData<Float32Array> | null;
  /** [B]: 1 where the example has an image (the others' pixels are zeros). */
  imageMask: TensorData<Uint8Array>;
  /** [B, Ls]: source tokens then <eos>, right-padded with <pad>. */
  sourceIds: TensorData<Int32Array>;
  /** [B, Ls]: 1 for real tokens, 0 for padding. */
  sourceMask: TensorData<Float32Array>;
  /** [B, Lt]: <bos> target tokens <eos>, right-padded; the decoder reads [:, :-1] and predicts [:, 1:]. */
  targetIds: TensorData<Int32Array>;
  targetMask: TensorData<Float32Array>;
  /** [B]: 1 where the target is image codes (the model embeds those targets with the image-target segment). */
  targetIsImage?: TensorData<Uint8Array>;
  /** [B, Li]: each row's items (recommend), right-padded with -1; absent when no row has items. */
  items?: TensorData<Int32Array>;
  /** Packed rows (Example.pairs): the pair of every source and target token ([B, Ls] and [B, Lt]; each
   * token of an unpacked row is pair 0, padding -1). Absent when no row of the batch is packed. */
  pairOf?: { source: TensorData<Int32Array>; target: TensorData<Int32Array> };
  /** Examples dropped from this batch because their image could not be used. */
  bad: BadRow[];
}

export interface ImageLoaderOptions extends Omit<ImageOptions, 'augment'> {
  /** Random resized crop + horizontal flip; false for evaluation. */
  augment?: boolean | { crop?: { scale: readonly [number, number]; ratio: readonly [number, number] } | false; hflip?: number };
}

export interface LoaderOptions {
  tokenizer: Tokenizer;
  batchSize: number;
  seed: number;
  image?: ImageLoaderOptions;
  maxSourceLength?: number;
  maxTargetLength?: number;
  /** Image worker threads; 0 prepares images on the main thread. Default min(4, cores). */
  workers?: number;
  /** Batches prepared ahead of the one being consumed. */
  prefetch?: number;
  /**
   * Tasks whose rows come as one group of `batchSize` rows in every batch, beside the `batchSize`
   * slots the other tasks share by weight (their weights draw no slots; with several, each batch's
   * group is one of them, drawn by weight). A contrastive task needs a group: its negatives are the
   * other rows of its group. Every batch still trains every other task: batches that alternate
   * between tasks learnt far worse (README, "Why these defaults").
   */
  groupTasks?: ReadonlySet<string>;
  /**
   * Data parallel: this process's share of every batch. Every rank plans the same global batches and
   * keeps its contiguous part of the slots and of the group (as even as can be), so the ranks' batches
   * together are exactly the one-process batch, whatever the number of ranks.
   */
  shard?: { rank: number; worldSize: number };
  /**
   * The share of rows with an `unconditionalSource` that read it instead of their source
   * (classifier-free guidance); drawn per (seed, step, slot), so a batch is the same on a resume or
   * over any number of ranks. Default 0.
   */
  promptDropout?: number;
}

/** What batch k is made of: decided on the main thread, in order, from the seed alone. */
interface BatchPlan {
  step: number;
  /** `slot`: the pick's place in the global batch (its augmentation seed), kept when the batch is sharded. */
  picks: Array<{ task: number; example: number; slot?: number }>;
}

/** Rank `rank`'s contiguous part of `n` items split over `world` ranks: [start, end). */
export function shardRange(n: number, rank: number, world: number): [number, number] {
  return [Math.floor((n * rank) / world), Math.floor((n * (rank + 1)) / world)];
}

/**
 * Draws (task, example) pairs: each slot's task by weight, then the next example of that task's
 * current shuffled pass; a task that runs out starts a freshly shuffled pass.
 */
export class MixtureSampler {
  private readonly rng: Rng;
  private readonly orders: number[][];
  private readonly cursors: number[];
  private readonly passes: number[];
  private readonly weights: number[];

  /**
   * `bucket`: tasks whose examples have lengths (item histories) are drawn in runs of `run`
   * examples of similar length, the runs in random order: a batch pads to its longest row, and
   * histories run from 3 to 200 items, so random batches would be mostly padding.
   */
  constructor(private readonly sizes: readonly number[], weights: readonly number[], private readonly seed: number, private readonly bucket?: { lengths: ReadonlyArray<readonly number[] | undefined>; run: number }) {
    if (sizes.length === 0) throw new RangeError('a loader needs at least one task');
    this.rng = new Rng(deriveSeed(seed, 'mixture'));
    this.weights = weights.map((w, i) => (sizes[i]! > 0 ? w : 0));
    if (!this.weights.some((w) => w > 0)) throw new RangeError('every task is empty or has weight 0: nothing to sample');
    this.orders = sizes.map(() => []);
    this.cursors = sizes.map(() => 0);
    this.passes = sizes.map(() => 0);
    sizes.forEach((_n, t) => this.reshuffle(t));
  }

  private reshuffle(task: number): void {
    const order = Array.from({ length: this.sizes[task]! }, (_v, i) => i);
    const rng = new Rng(deriveSeed(this.seed, 'pass', task, this.passes[task]!));
    rng.shuffle(order);
    const lengths = this.bucket?.lengths[task];
    this.orders[task] = lengths !== undefined ? bucketedOrder(order, lengths, this.bucket!.run, rng) : order;
    this.cursors[task] = 0;
    this.passes[task]!++;
  }

  next(): { task: number; example: number } {
    return this.nextOf(this.drawTask());
  }

  /** A task, drawn by weight. */
  drawTask(): number {
    return this.weights.length === 1 ? 0 : this.rng.weighted(this.weights);
  }

  /** The next example of one task's current shuffled pass. */
  nextOf(task: number): { task: number; example: number } {
    if (this.cursors[task]! >= this.orders[task]!.length) this.reshuffle(task);
    const example = this.orders[task]![this.cursors[task]!++]!;
    return { task, example };
  }
}

/** A shuffled order regrouped into runs of `run` similar lengths (sorted within chunks of 64 runs), the runs shuffled. */
function bucketedOrder(order: number[], lengths: readonly number[], run: number, rng: Rng): number[] {
  const runs: number[][] = [];
  const chunk = run * 64;
  for (let at = 0; at < order.length; at += chunk) {
    const part = order.slice(at, at + chunk).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
    for (let r = 0; r < part.length; r += run) runs.push(part.slice(r, r + run));
  }
  rng.shuffle(runs);
  return runs.flat();
}

/** Pad id rows to the longest one: ids [B, L] and a 1/0 mask. */
export function padBatch(rows: readonly number[][], padId: number): { ids: TensorData<Int32Array>; mask: TensorData<Float32Array> } {
  const length = Math.max(1, ...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * length).fill(padId);
  const mask = new Float32Array(rows.length * length);
  rows.forEach((r, b) => {
    ids.set(r, b * length);
    mask.fill(1, b * length, b * length + r.length);
  });
  return { ids: { data: ids, shape: [rows.length, length] }, mask: { data: mask, shape: [rows.length, length] } };
}

/** Item rows right-padded with -1 to the longest: [B, L]. A row without items is all -1. */
export function padItems(rows: ReadonlyArray<Int32Array | undefined>): TensorData<Int32Array> {
  const length = Math.max(1, ...rows.map((r) => r?.length ?? 0));
  const data = new Int32Array(rows.length * length).fill(-1);
  rows.forEach((r, b) => { if (r !== undefined) data.set(r, b * length); });
  return { data, shape: [rows.length, length] };
}

/** A row's token ids, and the pair of each (Example.pairs; all 0 in an unpacked row). */
export interface RowTokens { source: number[]; target: number[]; sourcePairs: number[]; targetPairs: number[] }
type Limits = Pick<LoaderOptions, 'maxSourceLength' | 'maxTargetLength'>;

/** <bos> target text <eos>, cut to leave room for <eos> within `maxLength`. */
function encodeTextTarget(tokenizer: Tokenizer, text: string, maxLength: number | undefined): number[] {
  return [tokenizer.bosId, ...truncateWithEnd(tokenizer.encode(text), maxLength === undefined ? undefined : maxLength - 1, tokenizer.eosId)];
}

/** Packed pairs as one row: each pair's source and target encoded as a lone pair's would be, one after another. */
export function encodePairs(tokenizer: Tokenizer, pairs: ReadonlyArray<{ source: string; target: string }>, limits: Limits): RowTokens {
  const out: RowTokens = { source: [], target: [], sourcePairs: [], targetPairs: [] };
  pairs.forEach((p, k) => {
    const s = encodeSource(tokenizer, p.source, limits.maxSourceLength), t = encodeTextTarget(tokenizer, p.target, limits.maxTargetLength);
    out.source.push(...s); out.sourcePairs.push(...s.map(() => k));
    out.target.push(...t); out.targetPairs.push(...t.map(() => k));
  });
  return out;
}

/** Whether a packed row fits the model's source and target positions. */
export function packFits(row: RowTokens, limits: Limits): boolean {
  return (limits.maxSourceLength === undefined || row.source.length <= limits.maxSourceLength) && (limits.maxTargetLength === undefined || row.target.length <= limits.maxTargetLength);
}

/** Pair rows right-padded with -1 to `length`: [B, length]. */
function padPairs(rows: readonly number[][], length: number): TensorData<Int32Array> {
  const data = new Int32Array(rows.length * length).fill(-1);
  rows.forEach((r, b) => data.set(r, b * length));
  return { data, shape: [rows.length, length] };
}

function truncateWithEnd(ids: number[], max: number | undefined, end: number): number[] {
  if (max !== undefined && ids.length + 1 > max) ids = ids.slice(0, Math.max(0, max - 1));
  ids.push(end);
  return ids;
}

/**
 * A source text as the model reads it: its tokens, cut to leave room for <eos>, then <eos>. The
 * loader encodes training sources so, and inference must encode prompts the same way.
 */
export function encodeSource(tokenizer: Tokenizer, text: string, maxLength: number | undefined, o: { parseSpecialTokens?: boolean } = {}): number[] {
  return truncateWithEnd(tokenizer.encode(text, o), maxLength, tokenizer.eosId);
}

/**
 * <bos> then each VQ code as its vocabulary id. Never truncated: a cut image is not an image, so a
 * target longer than the model's target positions is an error naming the example.
 */
function imageCodeTarget(example: Example, tokenizer: Tokenizer, maxLength: number | undefined): number[] {
  const codes = example.targetCodes!;
  if (maxLength !== undefined && codes.length + 1 > maxLength) {
    throw new RangeError(`example ${example.id}: its target image is ${codes.length} codes, more than the ${maxLength - 1} target positions the model has`);
  }
  const ids = [tokenizer.bosId];
  for (const c of codes) {
    if (!(c >= 0 && c < tokenizer.imageCodes)) throw new RangeError(`example ${example.id}: image code ${c} is outside the tokenizer's ${tokenizer.imageCodes} image codes`);
    ids.push(tokenizer.imageCodeStart + c);
  }
  return ids;
}

export class DataLoader {
  private readonly tasks: readonly TaskSource[];
  private readonly opts: LoaderOptions;
  private readonly preparer: ImagePreparer;
  private readonly joinSteps = new Map<number, number>();

  constructor(tasks: readonly TaskSource[], opts: LoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${opts.batchSize}`);
    this.tasks = tasks;
    this.opts = opts;
    const workers = opts.workers ?? defaultWorkerCount();
    const needsImages = opts.image !== undefined && tasks.some((t) => t.examples.some((e) => e.imagePath !== undefined));
    this.preparer = needsImages && workers > 0 ? new ImageWorkerPool(workers) : new MainThreadImagePreparer();
  }

  /** Whether the task's rows come as a group (LoaderOptions.groupTasks) rather than in the shared slots. */
  private isGroupTask(t: TaskSource): boolean {
    return this.opts.groupTasks?.has(t.name) === true;
  }

  /**
   * Task `name` takes rows from batch `step` on, not before (a schedule: TaskSource.start). Until it
   * is told, a task with a start takes no rows; one without takes them from batch 0.
   */
  joinAt(name: string, step: number): void {
    const i = this.tasks.findIndex((t) => t.name === name);
    if (i < 0) throw new RangeError(`joinAt: the loader has no task '${name}'`);
    if (!(Number.isInteger(step) && step >= 0)) throw new RangeError(`joinAt: the step must be a non-negative integer, got ${step}`);
    this.joinSteps.set(i, step);
  }

  /** The batch each task takes rows from: 0, its joinAt step, or Infinity while a scheduled task has none yet. */
  private joinStep(i: number): number {
    return this.joinSteps.get(i) ?? (this.tasks[i]!.start !== undefined && this.tasks[i]!.start! > 0 ? Infinity : 0);
  }

  /** Example slots per batch drawn from each task, for a number of steps: a quick check of the mixture. */
  plan(steps: number, startStep = 0): BatchPlan[] {
    // A phase is a span of batches in which the same tasks take rows; each has its own samplers, and
    // the phase with every task keeps the loader's own seeds (a run without a schedule is unchanged).
    const joins = this.tasks.map((_t, i) => this.joinStep(i));
    const phaseAt = (step: number): { slots?: MixtureSampler; groups?: MixtureSampler } => {
      const active = joins.map((j) => j <= step);
      return this.phaseSamplers(active, active.every((a) => a) ? this.opts.seed : deriveSeed(this.opts.seed, 'phase', active.map((a) => (a ? 1 : 0)).join('')));
    };
    let phase = phaseAt(0);
    const plans: BatchPlan[] = [];
    for (let step = 0; step < startStep + steps; step++) {
      if (step > 0 && joins.includes(step)) phase = phaseAt(step);
      const { slots, groups } = phase;
      const picks = slots !== undefined ? Array.from({ length: this.opts.batchSize }, () => slots.next()) : [];
      if (groups !== undefined) {
        const task = groups.drawTask();
        for (let k = 0; k < this.opts.batchSize; k++) picks.push(groups.nextOf(task));
      }
      if (step >= startStep) plans.push({ step, picks: this.shardOf(picks, slots !== undefined ? this.opts.batchSize : 0) });
    }
    return plans;
  }

  /** The samplers of the tasks marked active: the shared slots' and the groups'. */
  private phaseSamplers(active: readonly boolean[], seed: number): { slots?: MixtureSampler; groups?: MixtureSampler } {
    const grouped = this.tasks.map((t) => this.isGroupTask(t));
    const sizes = this.tasks.map((t) => t.examples.length);
    // Two samplers over disjoint tasks: the slots' and the groups'. A sampler with nothing to draw is left out.
    // Item histories (recommend) come in runs of similar length: consecutive draws of a task fill a batch
    // when it is the only task of its sampler, and otherwise are spread over batches, which costs nothing.
    const lengths = this.tasks.map((t) => (t.examples.some((e) => e.items !== undefined) ? t.examples.map((e) => e.items?.length ?? 0) : undefined));
    const samplerOf = (mine: (i: number) => boolean, seed: number, bucketed = false): MixtureSampler | undefined => {
      const weights = this.tasks.map((t, i) => (mine(i) && active[i] ? t.weight ?? 1 : 0));
      if (!weights.some((w, i) => w > 0 && sizes[i]! > 0)) return undefined;
      return bucketed && lengths.some((l) => l !== undefined) ? new MixtureSampler(sizes, weights, seed, { lengths, run: this.opts.batchSize }) : new MixtureSampler(sizes, weights, seed);
    };
    const slots = samplerOf((i) => !grouped[i], seed, true);
    const groups = samplerOf((i) => grouped[i]!, deriveSeed(seed, 'groups'), true);
    if (slots === undefined && groups === undefined) {
      throw new RangeError(active.every((a) => a) ? 'every task is empty or has weight 0: nothing to sample' : 'no task with rows takes part from the first batch: at least one must start at 0');
    }
    return { ...(slots !== undefined ? { slots } : {}), ...(groups !== undefined ? { groups } : {}) };
  }

  /** This rank's part of a global batch's picks: its share of the `slotCount` shared slots, then of the group. */
  private shardOf(picks: Array<{ task: number; example: number }>, slotCount: number): BatchPlan['picks'] {
    const s = this.opts.shard;
    if (s === undefined || s.worldSize === 1) return picks;
    const withSlot = picks.map((p, slot) => ({ ...p, slot }));
    const part = (from: number, to: number) => {
      const [a, b] = shardRange(to - from, s.rank, s.worldSize);
      return withSlot.slice(from + a, from + b);
    };
    return [...part(0, slotCount), ...part(slotCount, picks.length)];
  }

  private imageOptions(step: number, slot: number): ImageOptions | undefined {
    const img = this.opts.image;
    if (img === undefined) return undefined;
    const { augment, ...base } = img;
    if (augment === undefined || augment === false) return base;
    const seed = deriveSeed(this.opts.seed, 'augment', step, slot);
    const options: ImageOptions = { ...base, augment: augment === true ? { seed } : { seed, ...augment } };
    return options;
  }

  /** Build one batch from its plan (images through the preparer, text through the tokenizer). */
  async prepare(plan: BatchPlan): Promise<Batch> {
    const { tokenizer } = this.opts;
    const bad: BadRow[] = [];
    const examples = plan.picks.map((p) => ({ task: this.tasks[p.task]!.name, example: this.tasks[p.task]!.examples[p.example]! }));
    const images = await Promise.all(
      examples.map(async ({ example }, i) => {
        const options = this.imageOptions(plan.step, plan.picks[i]!.slot ?? i);
        if (example.imagePath === undefined || options === undefined) return null;
        try {
          return await this.preparer.load(example.imagePath, options);
        } catch (err) {
          if (!(err instanceof ImageDecodeError)) throw err;
          bad.push({ reason: err.reason, source: example.id, row: 0, file: err.file, got: err.detail });
          return 'bad' as const;
        }
      }),
    );
    const kept = examples.map((e, i) => ({ ...e, image: images[i]!, unconditional: this.dropsPrompt(e.example, plan.step, plan.picks[i]!.slot ?? i) })).filter((e) => e.image !== 'bad');
    const size = this.opts.image?.size ?? 0;
    const withImage = kept.some((e) => e.image !== null);
    const plane = 3 * size * size;
    const pixels = withImage ? new Float32Array(kept.length * plane) : null;
    const imageMask = new Uint8Array(kept.length);
    kept.forEach((e, b) => {
      if (e.image !== null && e.image !== 'bad' && pixels !== null) {
        pixels.set(e.image.data, b * plane);
        imageMask[b] = 1;
      }
    });
    const texts = kept.map((e) => this.rowTokens(e.unconditional ? { ...e.example, source: e.example.unconditionalSource! } : e.example));
    const source = padBatch(texts.map((t) => t.source), tokenizer.padId);
    const target = padBatch(texts.map((t) => t.target), tokenizer.padId);
    const batch: Batch = {
      step: plan.step,
      ids: kept.map((e) => e.example.id),
      tasks: kept.map((e) => e.task),
      images: pixels !== null ? { data: pixels, shape: [kept.length, 3, size, size] } : null,
      imageMask: { data: imageMask, shape: [kept.length] },
      sourceIds: source.ids,
      sourceMask: source.mask,
      targetIds: target.ids,
      targetMask: target.mask,
      targetIsImage: { data: Uint8Array.from(kept, (e) => (e.example.targetCodes !== undefined ? 1 : 0)), shape: [kept.length] },
      bad,
    };
    if (kept.some((e) => e.example.items !== undefined)) batch.items = padItems(kept.map((e) => e.example.items));
    if (kept.some((e) => e.example.pairs !== undefined)) {
      batch.pairOf = { source: padPairs(texts.map((t) => t.sourcePairs), source.ids.shape[1]!), target: padPairs(texts.map((t) => t.targetPairs), target.ids.shape[1]!) };
    }
    return batch;
  }

  /** Whether the row in `slot` of batch `step` reads its unconditional source (LoaderOptions.promptDropout). */
  private dropsPrompt(example: Example, step: number, slot: number): boolean {
    const p = this.opts.promptDropout ?? 0;
    if (p <= 0 || example.unconditionalSource === undefined) return false;
    return new Rng(deriveSeed(this.opts.seed, 'prompt-dropout', step, slot)).next() < p;
  }

  /** A row's source and target ids as the model reads them, and for each token its pair (all 0 unless packed). */
  private rowTokens(example: Example): RowTokens {
    const { tokenizer, maxSourceLength, maxTargetLength } = this.opts;
    if (example.pairs === undefined) {
      const source = encodeSource(tokenizer, example.source ?? '', maxSourceLength, { parseSpecialTokens: example.specialTokensInSource === true });
      const target = example.targetCodes !== undefined ? imageCodeTarget(example, tokenizer, maxTargetLength) : encodeTextTarget(tokenizer, example.target ?? '', maxTargetLength);
      return { source, target, sourcePairs: source.map(() => 0), targetPairs: target.map(() => 0) };
    }
    const out = encodePairs(tokenizer, example.pairs, this.opts);
    // Packs are cut to fit when they are made (packAnswerPairs); one that does not is an error naming it, never a silent cut.
    if (!packFits(out, this.opts)) {
      throw new RangeError(`example ${example.id}: its ${example.pairs.length} packed pairs take ${out.source.length} source and ${out.target.length} target tokens, more than the model's ${maxSourceLength} and ${maxTargetLength}`);
    }
    return out;
  }

  /** Batches startStep … startStep+steps-1, with `prefetch` batches prepared ahead. */
  async *batches(opts: { steps: number; startStep?: number }): AsyncGenerator<Batch> {
    const plans = this.plan(opts.steps, opts.startStep ?? 0);
    const ahead = Math.max(1, (this.opts.prefetch ?? 2) + 1);
    const inFlight: Array<Promise<Batch>> = [];
    let next = 0;
    const fill = (): void => {
      while (inFlight.length < ahead && next < plans.length) {
        const p = this.prepare(plans[next++]!);
        p.catch(() => {}); // surfaced when awaited below; avoids an unhandled-rejection warning meanwhile
        inFlight.push(p);
      }
    };
    fill();
    while (inFlight.length > 0) {
      const batch = await inFlight.shift()!;
      fill();
      yield batch;
    }
  }

  /** Steps that make one pass over the examples of the tasks that share the slots (of the group tasks when there are no others). */
  stepsPerEpoch(): number {
    const count = (ts: readonly TaskSource[]) => ts.reduce((n, t) => n + t.examples.length, 0);
    const slotRows = count(this.tasks.filter((t) => !this.isGroupTask(t)));
    return Math.ceil((slotRows > 0 ? slotRows : count(this.tasks)) / this.opts.batchSize);
  }

  async close(): Promise<void> {
    await this.preparer.close();
  }
}

/** Rows of a dataset as examples: the image, and the row's text (or label) as the target. */
export function examplesFromRows(rows: readonly DataRow[], opts: { source?: string | ((row: DataRow) => string); target?: 'text' | 'label' } = {}): Example[] {
  return rows.map((row) => {
    const ex: Example = { id: row.id };
    if (row.imagePath !== undefined) ex.imagePath = row.imagePath;
    if (opts.source !== undefined) ex.source = typeof opts.source === 'string' ? opts.source : opts.source(row);
    const target = opts.target === 'label' ? row.label : row.text;
    if (target !== undefined) ex.target = target;
    return ex;
  });
}
