// The VQ stage of `m6 train`: the image tokenizer whose codes design's targets are written in.
// It is trained first (or loaded) and saved in the run folder, then frozen while M6 trains:
//
//   RUN/vq.safetensors   the tokenizer (weights, codebook, its VqConfig in the metadata)
//   RUN/vq.json          how it came to be: config, steps, images, held-out PSNR, seconds, source
//
// `m6 train --tasks vq` runs this stage alone; `--tasks design` runs it before M6 when the run folder
// has no VQ yet (or copies the one `--vq FILE_OR_RUN` names); a resumed run reuses the saved one.
// The VQ must fit the M6 config: one code per patch of the model's grid (downsampling = patchSize)
// and a codebook the size of the vocabulary's image-code block (imageCodes).
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { renameDurably, tempNameFor, writeFileAtomic } from '../io/index.js';
import { dirname, join } from 'node:path';
import * as torch from '../torch/index.js';
import { InputError } from '../torch/inputError.js';
import type { DatasetSpec } from '../data/datasetSpec.js';
import { ImageBank } from '../data/imageBank.js';
import type { TaskSource } from '../data/loader.js';
import { readDataset, type DataRow } from '../data/manifest.js';
import { deriveSeed, Rng } from '../data/random.js';
import { gridSize, type M6Config } from '../model/config.js';
import { loadVqTokenizer, saveVqTokenizer, VQ_PRESETS, vqConfig, vqTrainStep, VqTokenizer, type VqConfig } from '../model/vq.js';
import { AdamW } from '../optim/index.js';
import { attachDesignCodes } from '../tasks/designCodes.js';
import { isEvalRow, type TaskData } from '../tasks/taskData.js';
import { DEFAULT_VQ_STEPS, findVqFile, runDirOf, VQ_FILE, VQ_INFO_FILE } from './vqFiles.js';
import { lrFactor, timeLrFactor } from '../optim/index.js';
import { formatDuration } from './progress.js';

export { VQ_FILE, VQ_INFO_FILE, DEFAULT_VQ_STEPS, runDirOf, findVqFile } from './vqFiles.js';

export interface VqStageOptions {
  /** A VQ tokenizer file (vq.safetensors) or a run folder holding one: used instead of training. */
  from?: string;
  /** Most steps. */
  steps: number;
  /**
   * A time budget (seconds): the stage stops at `steps` or when this runs out, whichever comes first,
   * its learning rate decaying over whichever is nearer (the demo gives the stage a share of its budget).
   */
  seconds?: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Most training images held in memory (a deterministic sample of the training rows). */
  maxImages?: number;
  /** bf16 autocast for the encoder and decoder (the codebook stays fp32). Measured on a 2-core CPU with bf16 matmul: 1.6× faster steps on one thread, ~1.1× on two. */
  bf16?: boolean;
}

export const DEFAULT_VQ_STAGE: VqStageOptions = { steps: DEFAULT_VQ_STEPS, batchSize: 16, lr: 2e-3, seed: 0, maxImages: 20_000 };

/** What vq.json records. */
export interface VqInfo {
  config: VqConfig;
  /** 'trained' in this run, or the file it was copied from. */
  source: string;
  steps?: number;
  trainImages?: number;
  heldOutImages?: number;
  /** PSNR (dB) of decode(encode(x)) on held-out images (training images when the data has none). */
  psnr?: number;
  psnrOn?: 'held-out' | 'train';
  seconds?: number;
  bf16?: boolean;
}

/** The VQ stage cannot run on what it was given (no images, a VQ that does not fit the model): shown as one line. */
export class VqStageError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'VqStageError';
  }
}

/**
 * The VQ config for an M6 config: vq-nano's widths, as many stride-2 stages as the patch grid needs,
 * and two changes that made short CPU runs reconstruct colour better on the synthetic catalog (64 px,
 * 1024 codes, one seed: held-out PSNR 20.7 vs 20.1 dB after 600 steps, 22.6 vs 22.3 dB after 2000):
 *  - normGroups 1: each GroupNorm normalises all channels together, so the ratios between channels
 *    (the hue) survive normalisation; with 8 groups, "red" and "blue" channels were rescaled apart;
 *  - codeDim 8: nearest-code lookup in a low-dimensional space uses the codebook better (the
 *    factorised codes of ViT-VQGAN, Yu et al. 2022).
 */
export function vqConfigFor(cfg: M6Config): VqConfig {
  const stages = Math.log2(cfg.patchSize);
  const widths = VQ_PRESETS['vq-nano'].channels;
  const channels = Array.from({ length: stages + 1 }, (_v, i) => widths[Math.min(i, widths.length - 1)]!);
  return vqConfig('vq-nano', { imageSize: cfg.imageSize, channels, codebookSize: cfg.imageCodes, normGroups: 1, codeDim: 8 });
}

/** Why a VQ tokenizer cannot write this model's images, or undefined when it can. */
export function vqMismatch(vq: VqConfig, cfg: M6Config): string | undefined {
  const factor = 2 ** (vq.channels.length - 1);
  if (factor !== cfg.patchSize) return `the VQ tokenizer downsamples by ${factor} but ${cfg.name} has patchSize ${cfg.patchSize} (one code per patch of its ${gridSize(cfg)}×${gridSize(cfg)} grid)`;
  if (vq.codebookSize !== cfg.imageCodes) return `the VQ tokenizer has ${vq.codebookSize} codes but the model's vocabulary has ${cfg.imageCodes} image codes`;
  if (gridSize(cfg) ** 2 > cfg.maxTextLen) return `an image is ${gridSize(cfg) ** 2} codes but ${cfg.name} has only ${cfg.maxTextLen} target positions (maxTextLen)`;
  return undefined;
}

// ---- held-out PSNR ---------------------------------------------------------------------------------

/** Up to n items, a seeded sample kept in order (all of them when there are no more than n). */
function sample<T>(items: readonly T[], n: number, seed: number): T[] {
  if (items.length <= n) return [...items];
  const order = items.map((_v, i) => i);
  new Rng(seed).shuffle(order);
  return order.slice(0, n).sort((a, b) => a - b).map((i) => items[i]!);
}

/** PSNR of decode(encode(x)) over a bank, in chunks (eval mode; the model is given back as it was). */
export function reconstructionPsnr(vq: VqTokenizer, bank: ImageBank, chunk = 64): number {
  const wasTraining = vq.training;
  vq.eval();
  try {
    let sse = 0, n = 0;
    for (const { index } of bank.chunks(chunk)) {
      torch.noGrad(() => torch.scope(() => {
        const x = bank.batch(index);
        const mse = torch.nn.mseLoss(vq.decode(vq.encode(x)), x).item();
        sse += mse * index.length;
        n += index.length;
      }));
    }
    return n === 0 ? NaN : 10 * Math.log10(4 / Math.max(sse / n, 1e-12));
  } finally {
    vq.train(wasTraining);
  }
}

// ---- training -------------------------------------------------------------------------------------

export interface TrainVqOptions {
  config: VqConfig;
  trainImages: readonly string[];
  heldOutImages: readonly string[];
  stage: VqStageOptions;
  log: (message: string) => void;
  stop?: AbortSignal;
}

export interface TrainVqResult {
  vq: VqTokenizer;
  info: VqInfo;
}

/**
 * Trains a VQ tokenizer on images (AdamW, warmup then cosine, EMA codebook with dead-code restarts),
 * logging ten progress lines and the held-out PSNR at the end. Deterministic in the seed.
 */
export async function trainVqTokenizer(o: TrainVqOptions): Promise<TrainVqResult> {
  const { stage, log } = o;
  const started = Date.now();
  const size = o.config.imageSize;
  const trainPaths = sample(o.trainImages, stage.maxImages ?? Infinity, deriveSeed(stage.seed, 'vq-images'));
  const loaded = await ImageBank.load(trainPaths, size);
  const firstBad = loaded.failed.entries().next();
  if (!firstBad.done) log(`VQ stage: ${loaded.failed.size} training images could not be read and were skipped (first: ${firstBad.value[0]}: ${firstBad.value[1]})`);
  if (loaded.bank.length === 0) throw new VqStageError(`VQ stage: none of the ${trainPaths.length} training images could be read`);
  const held = await ImageBank.load(sample(o.heldOutImages, 256, deriveSeed(stage.seed, 'vq-held-out')), size);
  const psnrOn = held.bank.length > 0 ? 'held-out' : 'train';
  const psnrBank = held.bank.length > 0 ? held.bank : new ImageBank(sample(loaded.bank.images, 256, 1), size);
  log(`VQ stage: training a ${o.config.codebookSize}-code image tokenizer (${size}px, ${2 ** (o.config.channels.length - 1)}× downsampling) on ${loaded.bank.length} images for ${stage.steps} steps of ${stage.batchSize}${stage.seconds !== undefined ? ` or ${formatDuration(stage.seconds)}, whichever comes first` : ''}${stage.bf16 === true ? ' (bf16 autocast)' : ''}` +
    (psnrOn === 'train' ? ' (the data has no held-out split: PSNR is measured on training images)' : `; PSNR on ${held.bank.length} held-out images`));

  torch.keepLargeAllocations();
  torch.manualSeed(deriveSeed(stage.seed, 'vq-init'));
  const vq = new VqTokenizer(o.config);
  const opt = new AdamW(vq.parameters(), { lr: stage.lr, weightDecay: 0 });
  const rng = new Rng(deriveSeed(stage.seed, 'vq-batches'));
  const warmup = Math.max(1, Math.min(100, Math.round(0.05 * stage.steps)));
  const every = Math.max(1, Math.round(stage.steps / 10));
  const budgetMs = stage.seconds !== undefined ? stage.seconds * 1000 : Infinity;
  let recent = { psnr: 0, n: 0, usedCodes: 0 };
  let lastLog = Date.now();
  let steps = 0;
  try {
    for (let step = 0; step < stage.steps; step++) {
      if (o.stop?.aborted) throw new VqStageError(`stopped during the VQ stage at step ${step} of ${stage.steps}: nothing was saved; run the command again to train it`);
      const timeFraction = (Date.now() - started) / budgetMs;
      if (timeFraction >= 1) break;
      // The decay follows whichever end is nearer: the step count or the time budget.
      const factor = Math.min(lrFactor(step, warmup, stage.steps, 0.1), Number.isFinite(budgetMs) ? timeLrFactor(step, warmup, timeFraction, 0.1) : 1);
      for (const g of opt.groups) g.hyper.lr = stage.lr * factor;
      const index = Array.from({ length: stage.batchSize }, () => rng.int(loaded.bank.length));
      const trainStep = () => vqTrainStep(vq, opt, loaded.bank.batch(index), { clipNorm: 1 });
      const stats = torch.scope(() => (stage.bf16 === true ? torch.autocast(trainStep) : trainStep()));
      recent = { psnr: recent.psnr + stats.psnr, n: recent.n + 1, usedCodes: stats.usedCodes };
      steps = step + 1;
      // A line every tenth of the steps, and at least every 30 s where steps are slow.
      if (steps % every === 0 || steps === stage.steps || Date.now() - lastLog >= 30_000) {
        log(`VQ step ${steps}/${stage.steps}: training PSNR ${(recent.psnr / recent.n).toFixed(2)} dB, ${recent.usedCodes} codes in the last batch, ${((Date.now() - started) / 1000).toFixed(0)} s`);
        recent = { psnr: 0, n: 0, usedCodes: 0 };
        lastLog = Date.now();
      }
      // Let a pending Ctrl-C be delivered between steps.
      if (step % 10 === 9) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    vq.eval();
    const value = reconstructionPsnr(vq, psnrBank);
    const seconds = (Date.now() - started) / 1000;
    const short = steps < stage.steps ? `; its ${formatDuration(stage.seconds!)} ran out before step ${stage.steps}` : '';
    log(`VQ stage done: ${psnrOn} PSNR ${value.toFixed(2)} dB after ${steps} steps (${seconds.toFixed(0)} s${short})`);
    return {
      vq,
      info: { config: vq.config, source: 'trained', steps, trainImages: loaded.bank.length, heldOutImages: held.bank.length, psnr: value, psnrOn, seconds, bf16: stage.bf16 === true },
    };
  } catch (err) {
    vq.dispose();
    throw err;
  } finally {
    for (const t of Object.values(opt.stateDict().tensors)) t.dispose();  // AdamW's moments: the VQ is frozen from here on
  }
}

// ---- the stage ------------------------------------------------------------------------------------

export interface PrepareVqOptions {
  runDir: string;
  config: M6Config;
  trainImages: readonly string[];
  heldOutImages: readonly string[];
  stage: VqStageOptions;
  log: (message: string) => void;
  stop?: AbortSignal;
}

/**
 * The run's VQ tokenizer, ready to encode (eval mode): the one saved in the run folder, else a copy
 * of `stage.from`, else one trained now and saved. Dispose it when done.
 */
export async function prepareVq(o: PrepareVqOptions): Promise<{ vq: VqTokenizer; file: string; info: VqInfo }> {
  const file = join(o.runDir, VQ_FILE);
  const check = (vq: VqTokenizer, where: string): VqTokenizer => {
    const why = vqMismatch(vq.config, o.config);
    if (why !== undefined) {
      vq.dispose();
      throw new VqStageError(`${where}: ${why}; train one for this model with --tasks vq (and no --vq), or choose another`);
    }
    return vq;
  };
  if (existsSync(file)) {
    const vq = check(loadVqTokenizer(file), file);
    const info = readInfo(o.runDir) ?? { config: vq.config, source: file };
    o.log(`VQ stage: reusing ${file}${info.psnr !== undefined ? ` (${info.psnrOn ?? 'held-out'} PSNR ${info.psnr.toFixed(2)} dB)` : ''}` +
      (o.stage.from !== undefined ? `; --vq ${o.stage.from} is not used (the run already has its tokenizer: its codes are what the model learnt)` : ''));
    return { vq, file, info };
  }
  if (o.stage.from !== undefined) {
    const given = findVqFile(o.stage.from);
    if (given === undefined) throw new VqStageError(`--vq ${o.stage.from}: no VQ tokenizer there (expected a ${VQ_FILE} file, or a run folder of m6 train --tasks vq that holds one)`);
    let vq: VqTokenizer;
    try {
      vq = loadVqTokenizer(given);
    } catch (err) {
      throw new VqStageError(`--vq ${given}: ${(err as Error).message}`);
    }
    check(vq, `--vq ${given}`);
    // Copied under a temp name, then renamed: a kill mid-copy never leaves half a VQ file that the next run would take as the run's.
    copyFileSync(given, tempNameFor(file));
    renameDurably(tempNameFor(file), file);
    const info: VqInfo = { ...(readInfo(runDirOf(dirname(given))) ?? {}), config: vq.config, source: given };
    writeFileAtomic(join(o.runDir, VQ_INFO_FILE), JSON.stringify(info, null, 2) + '\n');
    o.log(`VQ stage: using ${given} (copied to ${file})`);
    return { vq, file, info };
  }
  const { vq, info } = await trainVqTokenizer({
    config: vqConfigFor(o.config), trainImages: o.trainImages, heldOutImages: o.heldOutImages, stage: o.stage, log: o.log,
    ...(o.stop !== undefined ? { stop: o.stop } : {}),
  });
  saveVqTokenizer(file, vq);
  writeFileAtomic(join(o.runDir, VQ_INFO_FILE), JSON.stringify(info, null, 2) + '\n');
  o.log(`VQ stage: saved ${file}`);
  return { vq, file, info };
}

/** vq.json of a run folder, when it has one. */
export function readInfo(runDir: string): VqInfo | undefined {
  const f = join(runDir, VQ_INFO_FILE);
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as VqInfo;
  } catch {
    return undefined;  // a damaged record loses only the log line's PSNR
  }
}

// ---- in a training run ----------------------------------------------------------------------------

/** Training images (rows outside the held-out splits) and held-out ones, each path once. */
function imagesOf(rows: readonly DataRow[]): { train: string[]; heldOut: string[] } {
  const train = new Set<string>(), heldOut = new Set<string>();
  for (const r of rows) if (r.imagePath !== undefined) (isEvalRow(r) ? heldOut : train).add(r.imagePath);
  return { train: [...train], heldOut: [...heldOut] };
}

/**
 * The stage as `m6 train` runs it before M6: the run's VQ (reused, copied or trained), then every
 * design example's target image as codes. Examples whose image cannot be read are dropped (and
 * counted); a design task left with no training example is dropped with a message.
 */
export async function designVqStage(o: { runDir: string; config: M6Config; data: TaskData; stage?: Partial<VqStageOptions>; log: (m: string) => void; stop?: AbortSignal }): Promise<{ train: TaskSource[]; eval: TaskSource[] }> {
  const images = imagesOf(o.data.rows);
  const { vq, file } = await prepareVq({
    runDir: o.runDir, config: o.config, trainImages: images.train, heldOutImages: images.heldOut, stage: { ...DEFAULT_VQ_STAGE, ...o.stage }, log: o.log,
    ...(o.stop !== undefined ? { stop: o.stop } : {}),
  });
  try {
    const sets = [...o.data.train, ...o.data.eval];
    const coded = await attachDesignCodes(vq, file, sets, { runDir: o.runDir, imageSize: o.config.imageSize, log: o.log });
    if (coded.dropped > 0) o.log(`design: ${coded.dropped} examples dropped: their image could not be read (first: ${coded.firstError})`);
    const train = coded.sets.slice(0, o.data.train.length), evalSets = coded.sets.slice(o.data.train.length);
    const empty = train.findIndex((t) => t.name === 'design' && t.examples.length === 0);
    if (empty >= 0) {
      o.log('design: skipped: none of its training images could be read');
      train.splice(empty, 1);
      evalSets.splice(empty, 1);
    }
    if (train.length === 0) throw new VqStageError('no task has training data left after the VQ stage; see the messages above');
    return { train, eval: evalSets };
  } finally {
    vq.dispose();
  }
}

export interface VqOnlyOptions {
  runDir: string;
  data: DatasetSpec;
  config: M6Config;
  stage?: Partial<VqStageOptions>;
  log: (message: string) => void;
  stop?: AbortSignal;
}

/** `m6 train --tasks vq`: the VQ stage alone, into the run folder (nothing else is trained). */
export async function runVqOnly(o: VqOnlyOptions): Promise<{ file: string; info: VqInfo }> {
  mkdirSync(o.runDir, { recursive: true });
  const dataset = await readDataset(o.data);
  if (dataset.bad.total > 0) o.log(`${dataset.bad.total} bad rows of the dataset were skipped (see m6 data inspect)`);
  const images = imagesOf(dataset.rows);
  if (images.train.length === 0) throw new VqStageError(`the data has no training images (${dataset.rows.length} rows${images.heldOut.length ? `, all ${images.heldOut.length} images in held-out splits` : ''}); give --image-col`);
  const { vq, file, info } = await prepareVq({
    runDir: o.runDir, config: o.config, trainImages: images.train, heldOutImages: images.heldOut, stage: { ...DEFAULT_VQ_STAGE, ...o.stage }, log: o.log,
    ...(o.stop !== undefined ? { stop: o.stop } : {}),
  });
  vq.dispose();
  return { file, info };
}
