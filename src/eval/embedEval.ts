// Evaluating the embed task as retrieval: every held-out item's caption searches all held-out
// images (text→image) and every image searches all captions (image→text), scored by recall@1/5/10.
// What counts as a hit: the item itself, or any item of the same group — for the synthetic catalog
// the same attributes (category, colour, pattern: their titles describe them equally well), and by
// default the same caption text (two products captioned alike are equally right answers). Beside
// chance, `m6 eval` reports the pixel baseline (pixelBaselines.ts): a caption stands for the mean
// thumbnail of its training rows, and images and captions are ranked by distance to it.
import * as torch from '../torch/index.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { M6Model } from '../model/index.js';
import { chanceRecall, imageToTextRecall, partRecalls, recallAtK, relevantItems, type EmbedItem, type PartRecalls } from './retrievalMetrics.js';
import type { Pipeline } from '../pipelines/index.js';
import { syntheticCatalog, syntheticCatalogFileOf } from './describeEval.js';
import { corpusNote, loadPixelCorpus, pixelSearchBaseline, PIXEL_TRAIN_ROWS, type PixelSearchResult } from './pixelBaselines.js';
import { isEvalRow } from '../tasks/taskData.js';
import type { EvalContext, Skipped, TaskEvaluation } from './evaluation.js';

export interface RetrievalExample { query: string; image?: string; top: Array<{ id: string; text: string; image: string; relevant: boolean }> }

export interface EmbedEvalResult {
  items: number;
  /** Items dropped because their image could not be read. */
  failed: Array<{ id: string; error: string }>;
  textToImage: Record<string, number>;
  imageToText: Record<string, number>;
  /** Recall@k a random ranking would score on text→image (the chance level). */
  chanceTextToImage: Record<string, number>;
  /** The same for image→text, which ranks the distinct captions (imageToTextRecall). */
  chanceImageToText: Record<string, number>;
  /** Distinct captions image→text ranks. */
  captions: number;
  /** How many items share a group with each item, on average (relevance is per group). */
  meanGroupSize: number;
  /** Text→image recall of each part's queries (items with a `part`), over the whole gallery, with its chance level. */
  byPart?: PartRecalls;
  examples: RetrievalExample[];
  seconds: number;
}

export async function evaluateEmbed(pipeline: Pipeline, items: readonly EmbedItem[], o: { ks?: number[]; showExamples?: number } = {}): Promise<EmbedEvalResult> {
  const started = Date.now();
  const ks = o.ks ?? [1, 5, 10];
  const imageVectors = await pipeline.embed({ images: items.map((it) => it.image) });
  const failed: EmbedEvalResult['failed'] = [];
  const kept = items.filter((it, i) => {
    const r = imageVectors[i]!;
    if (!r.ok) failed.push({ id: it.id, error: r.error });
    return r.ok;
  });
  const keptImages = imageVectors.filter((r) => r.ok).map((r) => (r as { vector: Float32Array }).vector);
  const textVectors = await pipeline.embed({ texts: kept.map((it) => it.text) });
  const n = kept.length;
  const relevant = relevantItems(kept);
  const groupSizes = relevant.map((r) => r.length);
  return torch.scope(() => {
    const dim = pipeline.config.dim;
    const stack = (vs: Float32Array[]) => {
      const flat = new Float32Array(vs.length * dim);
      vs.forEach((v, i) => flat.set(v, i * dim));
      return torch.tensor(flat, { shape: [vs.length, dim] });
    };
    const texts = stack(textVectors.map((r) => (r.ok ? r.vector : new Float32Array(dim))));
    const images = stack(keptImages);
    const sim = texts.mm(images.transpose(0, 1));                   // (texts, images)
    const textToImage = n > 0 ? recallAtK(sim, relevant, ks) : {};
    const i2t = n > 0 ? imageToTextRecall(sim, kept, ks) : { recall: {}, chance: {}, captions: 0 };
    const chance: Record<string, number> = {};
    for (const k of ks) chance[`recall@${k}`] = chanceRecall(groupSizes, n, k);
    const byPart = partRecalls(kept, sim, relevant, ks);
    const show = Math.min(o.showExamples ?? 6, n);
    const top = show > 0 ? (sim.narrow(0, 0, show).topk(Math.min(5, n), 1).indices.toArray() as number[][]) : [];
    const examples: RetrievalExample[] = top.map((row, q) => ({
      query: kept[q]!.text,
      top: row.map((i) => ({ id: kept[i]!.id, text: kept[i]!.text, image: kept[i]!.image, relevant: relevant[q]!.includes(i) })),
    }));
    return {
      items: n, failed, textToImage, imageToText: i2t.recall, chanceTextToImage: chance, chanceImageToText: i2t.chance, captions: i2t.captions,
      meanGroupSize: n ? groupSizes.reduce((a, b) => a + b, 0) / n : 0,
      ...(byPart !== undefined ? { byPart } : {}),
      examples, seconds: (Date.now() - started) / 1000,
    };
  });
}

/**
 * `m6 eval`'s embed evaluator: the held-out image–caption pairs as a search benchmark. Relevance:
 * for the synthetic catalog (catalog.jsonl beside the manifest) the same category, colour and
 * pattern (what a title says); otherwise the same label when rows have one, else the same caption.
 */
export async function evaluateEmbedTask(ctx: EvalContext): Promise<TaskEvaluation<RetrievalExample> | Skipped> {
  if (ctx.examples === null || ctx.examples.length === 0) return { skipped: ctx.skipReason ?? 'no held-out examples' };
  const examples = ctx.examples;
  const catalogFile = syntheticCatalogFileOf(ctx.spec);
  const catalog = catalogFile !== undefined ? syntheticCatalog(catalogFile, examples.map((e) => e.id)) : null;
  const labels = new Map(ctx.data.rows.map((r) => [r.id, r.label]));
  const items: EmbedItem[] = examples.map((e) => {
    const product = catalog?.get(e.id);
    const group = product !== undefined ? `${product.category}|${product.colour}|${product.pattern ?? ''}` : labels.get(e.id);
    return { id: e.id, image: e.imagePath!, text: e.source!, ...(group !== undefined ? { group } : {}) };
  });
  ctx.log(`embed: searching ${items.length} held-out items both ways…`);
  const r = await evaluateEmbed(ctx.pipeline, items);
  const pixel = await pixelSearch(ctx, items);
  const prefixed = (prefix: string, x: Record<string, number>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [`${prefix}${k.replace('recall@', 'Recall')}`, v]));
  return {
    task: 'embed', available: ctx.available, evaluated: r.items, failures: r.failed,
    metrics: { ...prefixed('textToImage', r.textToImage), ...prefixed('imageToText', r.imageToText) },
    baselines: { ...prefixed('textToImage', r.chanceTextToImage), ...prefixed('imageToText', r.chanceImageToText) }, baselineName: 'random ranking',
    ...(pixel.result !== undefined ? { moreBaselines: [{ name: 'pixel mean thumbnail', values: { ...prefixed('textToImage', pixel.result.textToImage), ...prefixed('imageToText', pixel.result.imageToText) } }] } : {}),
    notes: [
      `relevant: ${catalog !== null ? 'items with the same category, colour and pattern' : labels.size && items.some((i) => i.group !== undefined) ? 'items with the same label' : 'items with the same caption'} (${r.meanGroupSize.toFixed(1)} per item on average); image→text ranks the ${r.captions} distinct captions; baseline = a random ranking`,
      pixel.note,
    ],
    items: r.examples, seconds: r.seconds,
  };
}

/** The pixel search baseline over the same gallery, from the data's training rows (rows not held out) with an image and a caption. */
async function pixelSearch(ctx: EvalContext, items: readonly EmbedItem[]): Promise<{ result?: PixelSearchResult; note: string }> {
  const trainRows = ctx.data.rows.filter((row) => !isEvalRow(row) && row.imagePath !== undefined && row.caption !== undefined);
  if (trainRows.length === 0) return { note: 'pixel mean thumbnail: not measured (the data has no training rows with an image and a caption)' };
  ctx.log(`embed: pixel baseline: loading the thumbnails of ${Math.min(trainRows.length, PIXEL_TRAIN_ROWS)} training rows…`);
  const train = await loadPixelCorpus(trainRows.map((row) => ({ id: row.id, image: row.imagePath!, text: row.caption! })));
  if (train.rows.length === 0) return { note: `pixel mean thumbnail: not measured (none of the ${train.offered} training rows' images could be read)` };
  const result = await pixelSearchBaseline(train, items);
  return {
    result,
    note: 'pixel mean thumbnail: a caption stands for the mean thumbnail of the training rows with that caption (else those sharing the most words: '
      + `${(100 * (1 - result.exactTitles)).toFixed(0)}% of the queries); text→image ranks the images, image→text the captions, by distance to it (${corpusNote(train)})`,
  };
}
