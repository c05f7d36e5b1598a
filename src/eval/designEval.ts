// `m6 eval` (and `m6 demo`) for design: does an image designed from a held-out product's prompt show
// what the prompt asks for, and does the set of designs look like the real photos?
//
//   1. An attribute classifier (attributeClassifier.ts) is trained on the real training images of
//      the same data, or loaded from the run folder when one was trained on the same images:
//      RUN/design-classifier.safetensors. Its own held-out accuracy is reported (a judge's errors
//      count against every design it judges; a checked garment's "main" colour, one of two in
//      equal squares, is what it reads worst).
//   2. The model designs one image per held-out prompt (sampled, seeded).
//   3. Attribute accuracy: the classifier's reading of each design against the prompt's truth, beside
//      the majority-class baseline. Attributes are the synthetic catalog's category and colour
//      (catalog.jsonl beside the manifest), or a labelled dataset's label (as 'category').
//   4. Fréchet distance between the classifier's features of the held-out real images and of the
//      designs; its baseline is the same distance between a sample of real training images and the
//      held-out ones: the floor a perfect designer would reach with this many images.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageBank } from '../data/imageBank.js';
import type { DataRow } from '../data/manifest.js';
import { deriveSeed, Rng } from '../data/random.js';
import type { VqTokenizer } from '../model/vq.js';
import * as torch from '../torch/index.js';
import { frechetDistance } from './frechet.js';
import { runDirOf } from '../train/vqFiles.js';
import {
  classifyImages, loadAttributeClassifier, saveAttributeClassifier, trainAttributeClassifier,
  type AttributeClassifier, type AttributeSpec, type ClassifierReport,
} from './attributeClassifier.js';
import { designPromptOf } from '../tasks/designPrompt.js';
import { syntheticCatalog, syntheticCatalogFileOf } from './describeEval.js';
import { examplesOrSkip, type EvalContext, type ItemFailure, type Skipped, type TaskEvaluation } from './evaluation.js';
import { toRgbBytes } from '../pipelines/design.js';
import type { DesignedImage } from '../pipelines/index.js';
import { pickSampling, type SamplingOptions } from '../model/sampling.js';
import { majorityShare } from './syntheticEval.js';
import { isEvalRow } from '../tasks/taskData.js';

export const CLASSIFIER_FILE = 'design-classifier.safetensors';

export interface DesignEvalOptions extends SamplingOptions {
  /** Classifier training steps when none is cached (default 1000: about a minute at 64 px on 2 CPU cores). */
  classifierSteps?: number;
  /**
   * Where the classifier is cached (default: the run folder). It depends only on the data's real
   * images, so the demo keeps it beside its catalog and a second run of the demo reuses it.
   */
  classifierDir?: string;
  /** Most real training images the classifier learns from (a seeded sample; default 20000). */
  classifierImages?: number;
  /** Seed of the classifier and of the sampled designs (default 0). */
  seed?: number;
  /** (SamplingOptions) Sampling of the designs; the defaults are design's own (DESIGN_SAMPLING). */
  /** Classifier-free guidance scale of the designs (default: design's own, designGuidance). */
  guidance?: number;
  /** How many designs are written as PNG files for the report (default 12). */
  samples?: number;
  /** Where those PNG files go (default RUN/design-eval). */
  samplesDir?: string;
}

export interface DesignRecord {
  id: string;
  prompt: string;
  /** The real image of the held-out product. */
  real: string;
  /** The PNG of the design, for the first `samples` items. */
  generated?: string;
  truth: Record<string, string>;
  /** What the classifier reads in the design, per attribute. */
  predicted: Record<string, string>;
  ok: Record<string, boolean>;
}

export interface DesignEvaluation extends TaskEvaluation<DesignRecord> {
  task: 'design';
  classifier: ClassifierReport & { file: string; cached: boolean };
  /** Fréchet distances in the classifier's feature space. */
  frechet: { generated: number; realReference: number; features: number };
  /** (prompt, design PNG, real image) triples for a report. */
  samples: Array<{ prompt: string; generated: string; real: string }>;
}

interface Truth {
  attributes: AttributeSpec[];
  /** The attribute values of a row, by id; undefined when the row has none. */
  of: (id: string) => Record<string, string> | undefined;
  note: string;
}

/** The attributes to judge: the synthetic catalog's category and colour, else the rows' labels. */
function truthOf(ctx: EvalContext, rows: readonly DataRow[]): Truth | string {
  const ids = rows.map((r) => r.id);
  const catalogFile = syntheticCatalogFileOf(ctx.spec);
  const catalog = catalogFile !== undefined ? syntheticCatalog(catalogFile, ids) : null;
  const classes = (values: Iterable<string>) => [...new Set(values)].sort();
  if (catalog !== null) {
    const items = ids.map((id) => catalog.get(id)!);
    return {
      attributes: [{ name: 'category', classes: classes(items.map((i) => i.category)) }, { name: 'colour', classes: classes(items.map((i) => i.colour)) }],
      of: (id) => { const i = catalog.get(id); return i !== undefined ? { category: i.category, colour: i.colour } : undefined; },
      note: `synthetic catalog (${catalogFile}): category and colour`,
    };
  }
  const byId = new Map(rows.map((r) => [r.id, r]));
  const labels = classes(rows.map((r) => r.label).filter((l): l is string => l !== undefined));
  if (labels.length < 2) return 'no attributes to judge designs by: the data needs labels (--label-col) with at least two classes, or to be the synthetic catalog';
  return {
    attributes: [{ name: 'category', classes: labels }],
    of: (id) => { const l = byId.get(id)?.label; return l !== undefined ? { category: l } : undefined; },
    note: 'category is the row\'s label',
  };
}

/** Up to n items, a seeded sample kept in order. */
function sample<T>(items: readonly T[], n: number, seed: number): T[] {
  if (items.length <= n) return [...items];
  const order = items.map((_v, i) => i);
  new Rng(seed).shuffle(order);
  return order.slice(0, n).sort((a, b) => a - b).map((i) => items[i]!);
}

/** The bank's images through the VQ tokenizer and back (encode → decode), in batches. */
function vqRoundTrip(vq: VqTokenizer, bank: ImageBank, batchSize: number): ImageBank {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bank.length; at += batchSize) {
    const index = Array.from({ length: Math.min(batchSize, bank.length - at) }, (_v, i) => at + i);
    torch.noGrad(() => torch.scope(() => out.push(...toRgbBytes(vq.decode(vq.encode(bank.batch(index)))))));
  }
  return new ImageBank(out, bank.size);
}

/** Labels of rows as class indices per attribute. */
function labelIndices(truths: ReadonlyArray<Record<string, string>>, attributes: readonly AttributeSpec[]): number[][] {
  return truths.map((t) => attributes.map((a) => a.classes.indexOf(t[a.name]!)));
}

const capitalised = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The run's classifier for this data: loaded when one was trained on the same images, else trained and saved. */
async function attributeClassifier(ctx: EvalContext, truth: Truth, rows: readonly DataRow[], o: DesignEvalOptions): Promise<{ model: AttributeClassifier; report: ClassifierReport; file: string; cached: boolean; heldOut: { bank: ImageBank; labels: number[][] }; trainBank: ImageBank }> {
  const imageSize = ctx.pipeline.config.imageSize;
  const seed = o.seed ?? 0;
  const labelled = rows.filter((r) => r.imagePath !== undefined && truth.of(r.id) !== undefined);
  const trainRows = sample(labelled.filter((r) => !isEvalRow(r)), o.classifierImages ?? 20_000, deriveSeed(seed, 'classifier-images'));
  const heldRows = sample(labelled.filter(isEvalRow), 2000, deriveSeed(seed, 'classifier-held-out'));
  if (trainRows.length === 0 || heldRows.length === 0) throw new Error(`the attribute classifier needs real training and held-out images with ${truth.attributes.map((a) => a.name).join(' and ')}; found ${trainRows.length} and ${heldRows.length}`);
  const steps = o.classifierSteps ?? 1000;
  const file = join(o.classifierDir ?? runDirOf(ctx.pipeline.checkpoint), CLASSIFIER_FILE);
  const key = createHash('sha256').update(JSON.stringify({ imageSize, steps, seed, attributes: truth.attributes, train: trainRows.map((r) => r.imagePath), held: heldRows.map((r) => r.imagePath) })).digest('hex');
  const load = async (rs: readonly DataRow[]) => {
    const { bank, kept } = await ImageBank.load(rs.map((r) => r.imagePath!), imageSize);
    return { bank, labels: labelIndices(kept.map((i) => truth.of(rs[i]!.id)!), truth.attributes) };
  };
  const train = await load(trainRows);
  const heldOut = await load(heldRows);
  const cached = loadAttributeClassifier(file, key);
  if (cached !== undefined) {
    ctx.log(`design: using the attribute classifier in ${file} (held-out accuracy ${Object.entries(cached.report.accuracy).map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(', ')})`);
    return { ...cached, file, cached: true, heldOut, trainBank: train.bank };
  }
  ctx.log(`design: training an attribute classifier (${truth.attributes.map((a) => `${a.name}: ${a.classes.length} classes`).join(', ')}) on ${train.bank.length} real images for ${steps} steps`);
  const { model, report } = trainAttributeClassifier({
    config: { imageSize, attributes: truth.attributes, channels: 32, features: 64 },
    train, heldOut, steps, batchSize: 32, lr: 3e-3, seed, log: ctx.log,
  });
  saveAttributeClassifier(file, model, report, key);
  ctx.log(`design: attribute classifier held-out accuracy ${Object.entries(report.accuracy).map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(', ')} (${report.seconds.toFixed(0)} s); saved ${file}`);
  return { model, report, file, cached: false, heldOut, trainBank: train.bank };
}

interface Wanted { id: string; prompt: string; real: string; truth: Record<string, string> }
type Made = Wanted & { image: DesignedImage };
type Classifier = Awaited<ReturnType<typeof attributeClassifier>>;

/** The held-out rows that can be judged: a prompt, a real image and the attributes; the others as failures. */
function judgeable(ctx: EvalContext, examples: readonly { id: string; targetImage?: string }[], truth: Truth, failures: ItemFailure[]): Wanted[] {
  const rowsById = new Map(ctx.data.rows.map((r) => [r.id, r]));
  const wanted: Wanted[] = [];
  for (const e of examples) {
    const row = rowsById.get(e.id);
    const prompt = row !== undefined ? designPromptOf(row) : undefined;
    const t = truth.of(e.id);
    if (prompt === undefined || e.targetImage === undefined) failures.push({ id: e.id, error: 'no prompt or image for this row' });
    else if (t === undefined) failures.push({ id: e.id, error: `no ${truth.attributes.map((a) => a.name).join('/')} to judge against` });
    else wanted.push({ id: e.id, prompt, real: e.targetImage, truth: t });
  }
  return wanted;
}

/** One design per prompt, a few batches at a time so a long evaluation shows it is alive; a failed prompt goes to `failures`, and every design stays paired with its own prompt and truth (tested). */
export async function designAll(ctx: EvalContext, wanted: readonly Wanted[], seed: number, o: DesignEvalOptions, failures: ItemFailure[]): Promise<Made[]> {
  const started = Date.now();
  const made: Made[] = [];
  const chunk = ctx.batchSize * 8;
  for (let at = 0; at < wanted.length; at += chunk) {
    const part = wanted.slice(at, at + chunk);
    const results = await ctx.pipeline.designEach(part.map((w) => w.prompt), { seed: deriveSeed(seed, 'design-eval', at), batchSize: ctx.batchSize, ...pickSampling(o), ...(o.guidance !== undefined ? { guidance: o.guidance } : {}) });
    results.forEach((r, k) => {
      if (r.ok) made.push({ ...part[k]!, image: r.images[0]! });
      else failures.push({ id: part[k]!.id, error: r.error });
    });
    if (at + chunk < wanted.length) ctx.log(`design: ${at + part.length}/${wanted.length} designed (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  return made;
}

/** Fréchet distances in the classifier's feature space: designs vs the held-out real images, and a real training sample vs the same (the floor). */
async function frechetDistances(ctx: EvalContext, clf: Classifier, made: readonly Made[], generated: torch.Tensor, seed: number, failures: ItemFailure[]): Promise<DesignEvaluation['frechet']> {
  const size = ctx.pipeline.config.imageSize;
  const real = await ImageBank.load(made.map((m) => m.real), size);
  for (const [path, error] of real.failed) failures.push({ id: made.find((m) => m.real === path)!.id, error: `real image: ${error}` });
  const reference = new ImageBank(sample(clf.trainBank.images, Math.max(made.length, 2), deriveSeed(seed, 'frechet-reference')), size);
  const realFeatures = classifyImages(clf.model, real.bank);
  const refFeatures = classifyImages(clf.model, reference);
  try {
    return {
      generated: made.length >= 2 && real.bank.length >= 2 ? frechetDistance(realFeatures.features, generated) : NaN,
      realReference: reference.length >= 2 && real.bank.length >= 2 ? frechetDistance(realFeatures.features, refFeatures.features) : NaN,
      features: clf.model.config.features,
    };
  } finally {
    for (const t of [realFeatures.features, refFeatures.features]) t.dispose();
  }
}

/** The first few designs as PNG files beside their real image, for the report (their records get the file). */
function writeSamples(ctx: EvalContext, made: readonly Made[], items: DesignRecord[], o: DesignEvalOptions): DesignEvaluation['samples'] {
  const samplesDir = o.samplesDir ?? join(runDirOf(ctx.pipeline.checkpoint), 'design-eval');
  const count = Math.min(o.samples ?? 12, made.length);
  if (count > 0) mkdirSync(samplesDir, { recursive: true });
  return made.slice(0, count).map((m, i) => {
    const file = join(samplesDir, `${m.id.replace(/[^A-Za-z0-9._-]+/g, '_')}.png`);
    writeFileSync(file, m.image.png);
    items[i]!.generated = file;
    return { prompt: m.prompt, generated: file, real: m.real };
  });
}

/** Accuracy per attribute beside the majority class; the classifier's own accuracy; the VQ ceiling; the Fréchet distance beside its floor. */
function designMetrics(truth: Truth, items: readonly DesignRecord[], clf: Classifier, reconstructed: readonly number[][], frechet: DesignEvaluation['frechet']): { metrics: Record<string, number>; baselines: Record<string, number> } {
  const heldTruth = clf.heldOut.labels;
  const share = (xs: readonly boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : 0);
  const metrics: Record<string, number> = {}, baselines: Record<string, number> = {};
  for (const a of truth.attributes) {
    metrics[`${a.name}Accuracy`] = share(items.map((d) => d.ok[a.name]!));
    baselines[`${a.name}Accuracy`] = majorityShare(items.map((d) => d.truth[a.name]!));
  }
  metrics.frechetDistance = frechet.generated;
  baselines.frechetDistance = frechet.realReference;
  truth.attributes.forEach((a, k) => {
    metrics[`classifier${capitalised(a.name)}Accuracy`] = clf.report.accuracy[a.name]!;
    baselines[`classifier${capitalised(a.name)}Accuracy`] = majorityShare(heldTruth.map((l) => a.classes[l[k]!]!));
    metrics[`vqCeiling${capitalised(a.name)}Accuracy`] = share(heldTruth.map((l, i) => reconstructed[k]![i] === l[k]));
  });
  return { metrics, baselines };
}

export async function evaluateDesign(ctx: EvalContext, o: DesignEvalOptions = {}): Promise<DesignEvaluation | Skipped> {
  const started = Date.now();
  const examples = examplesOrSkip(ctx);
  if (!Array.isArray(examples)) return examples;
  const truth = truthOf(ctx, ctx.data.rows);
  if (typeof truth === 'string') return { skipped: truth };
  const seed = o.seed ?? 0;
  const failures: ItemFailure[] = [];
  const wanted = judgeable(ctx, examples, truth, failures);
  const clf = await attributeClassifier(ctx, truth, ctx.data.rows, o);
  try {
    const made = await designAll(ctx, wanted, seed, o, failures);
    // The classifier's reading of each design.
    const gen = classifyImages(clf.model, new ImageBank(made.map((m) => m.image.rgb), ctx.pipeline.config.imageSize));
    const items: DesignRecord[] = made.map((m, i) => {
      const predicted: Record<string, string> = {}, ok: Record<string, boolean> = {};
      truth.attributes.forEach((a, k) => {
        predicted[a.name] = a.classes[gen.predicted[k]![i]!]!;
        ok[a.name] = predicted[a.name] === m.truth[a.name];
      });
      return { id: m.id, prompt: m.prompt, real: m.real, truth: m.truth, predicted, ok };
    });
    let frechet: DesignEvaluation['frechet'];
    try {
      frechet = await frechetDistances(ctx, clf, made, gen.features, seed, failures);
    } finally {
      gen.features.dispose();
    }
    const samples = writeSamples(ctx, made, items, o);
    // The ceiling the VQ tokenizer sets: the classifier's reading of held-out real images after
    // encode → decode. A design is made of these codes, so it cannot read better than this.
    const recon = classifyImages(clf.model, vqRoundTrip(ctx.pipeline.vq!, clf.heldOut.bank, ctx.batchSize * 4));
    recon.features.dispose();
    const { metrics, baselines } = designMetrics(truth, items, clf, recon.predicted, frechet);
    const notes = [
      `${truth.note} of each design as read by an attribute classifier trained on the real training images (${clf.report.trainImages} images, ${clf.report.steps} steps${clf.cached ? ', cached' : ''}); the classifier…Accuracy rows are its own accuracy on held-out real images`,
      `Fréchet distance in the classifier's ${frechet.features}-d feature space, designs vs held-out real images; its baseline is a real training sample of the same size vs the same held-out images (the floor for this many images)`,
      `the vqCeiling…Accuracy rows are the classifier's accuracy on the same held-out real images after the VQ tokenizer's encode → decode: what designs made of its codes can reach`,
      `one design per prompt, sampled (seed ${seed})`,
    ];
    if (failures.length > 0) notes.push(`${failures.length} item(s) failed (e.g. ${failures[0]!.id}: ${failures[0]!.error}) and are left out of every metric`);
    return {
      task: 'design', available: ctx.available, evaluated: items.length, failures, metrics, baselines, notes, items,
      classifier: { ...clf.report, file: clf.file, cached: clf.cached },
      frechet, samples, seconds: (Date.now() - started) / 1000,
    };
  } finally {
    clf.model.dispose();
  }
}
