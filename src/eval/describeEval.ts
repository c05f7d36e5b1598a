// `m6 eval` for describe: describe each held-out image, then score the text against the row's text
// (BLEU-4, ROUGE-L, CIDEr-D) and, where the rows have labels, whether it names the right one
// (category accuracy against the majority-class baseline; labelJudge.ts has the rules). On the
// synthetic catalog (catalog.jsonl beside the manifest) category and colour are judged as
// syntheticEval judges them, from the catalog's exact truth and its words for each category.
// Beside the majority class, a baseline that looks at the image: the text of the training row
// whose 16×16 thumbnail is nearest (pixelBaselines.ts), scored and judged exactly as the model's text.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DatasetSpec } from '../data/datasetSpec.js';
import type { DataRow } from '../data/manifest.js';
import { bleu, ciderD, rougeL } from './textMetrics.js';
import { examplesOrSkip, inChunks, type EvalContext, type ItemFailure, type Skipped, type TaskEvaluation } from './evaluation.js';
import { TASKS } from '../tasks/instructions.js';
import { isEvalRow } from '../tasks/taskData.js';
import { corpusNote, loadPixelCorpus, nearestNeighbourCopies, PIXEL_TRAIN_ROWS } from './pixelBaselines.js';
import { LabelJudge, normaliseLabelText, type LabelRule } from './labelJudge.js';
import { categoryOf, colourOf, majorityShare, readCatalog, type CatalogItem } from './syntheticEval.js';

export interface DescribeRecord {
  id: string;
  image: string;
  /** The row's text: what the model was trained to write. */
  reference: string;
  generated: string;
  /** The row's label (or the catalog's category), when there is one. */
  label?: string;
  /** The label the description names (null: none). */
  predicted?: string | null;
  labelOk?: boolean;
  rule?: LabelRule | 'catalog';
  /** Synthetic catalog only: the main colour and the colour the description names first. */
  colour?: string;
  predictedColour?: string | null;
  colourOk?: boolean;
}

export interface DescribeEvaluation extends TaskEvaluation<DescribeRecord> {
  task: 'describe';
}

/** catalog.jsonl beside the manifest, when the data is the synthetic catalog (every judged id is in it). */
/** Where a synthetic catalog's products (the attribute oracles) would be: beside the manifest, or beside the shards it was packed into. */
export function syntheticCatalogFileOf(spec: DatasetSpec): string | undefined {
  const beside = spec.manifest ?? spec.shards?.[0];
  return beside !== undefined ? join(dirname(beside), 'catalog.jsonl') : undefined;
}

export function syntheticCatalog(file: string, ids: readonly string[]): Map<string, CatalogItem> | null {
  if (!existsSync(file)) return null;
  const catalog = readCatalog(file);
  return ids.length > 0 && ids.every((id) => catalog.has(id)) ? catalog : null;
}

const share = (xs: readonly boolean[]): number => (xs.length ? xs.filter(Boolean).length / xs.length : 0);

export async function evaluateDescribe(ctx: EvalContext): Promise<DescribeEvaluation | Skipped> {
  const started = Date.now();
  const examples = examplesOrSkip(ctx);
  if (!Array.isArray(examples)) return examples;
  const generated = await inChunks(ctx, 'generated', examples.map((e) => e.imagePath!), (images) => ctx.pipeline.describe(images, { batchSize: ctx.batchSize }));

  const failures: ItemFailure[] = [];
  const items: DescribeRecord[] = [];
  examples.forEach((e, i) => {
    const r = generated[i]!;
    if (!r.ok) failures.push({ id: e.id, error: r.error });
    else items.push({ id: e.id, image: e.imagePath!, reference: e.target!, generated: r.text });
  });
  const result: DescribeEvaluation = {
    task: 'describe', available: ctx.available, evaluated: items.length, failures,
    metrics: captionMetrics(items),
    baselines: {}, baselineName: 'majority class',
    notes: ['BLEU-4, ROUGE-L and CIDEr-D against the row\'s text, one reference per item'],
    items, seconds: 0,
  };
  if (failures.length > 0) result.notes.push(`${failures.length} item(s) failed (e.g. ${failures[0]!.id}: ${failures[0]!.error}) and are left out of every metric`);

  const catalogFile = syntheticCatalogFileOf(ctx.spec);
  const catalog = catalogFile !== undefined ? syntheticCatalog(catalogFile, items.map((d) => d.id)) : null;
  const truth: DescriptionTruth = catalog !== null ? { catalog, catalogFile: catalogFile! } : { rows: ctx.data.rows };
  const judged = judgeDescriptions(items, truth);
  Object.assign(result.metrics, judged.metrics);
  Object.assign(result.baselines, judged.baselines);
  result.notes.push(...judged.notes);
  const pixel = await pixelNeighbourBaseline(ctx, items, truth);
  if (pixel.values !== undefined) result.moreBaselines = [{ name: 'pixel nearest neighbour', values: pixel.values }];
  result.notes.push(pixel.note);
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/** BLEU-4, ROUGE-L and CIDEr-D of the records' texts against their references, one reference each. */
function captionMetrics(items: readonly DescribeRecord[]): Record<string, number> {
  const pairs = items.map((d) => ({ candidate: d.generated, references: [d.reference] }));
  return { bleu4: bleu(pairs), rougeL: rougeL(pairs), ciderD: ciderD(pairs) };
}

/**
 * describe's pixel nearest-neighbour baseline on the items the model was judged on: each gets the
 * text of the training row (a row not held out) whose thumbnail is nearest, and the copies are
 * scored by captionMetrics and judgeDescriptions, as the model's descriptions are.
 */
async function pixelNeighbourBaseline(ctx: EvalContext, items: readonly DescribeRecord[], truth: DescriptionTruth): Promise<{ values?: Record<string, number>; note: string }> {
  const trainRows = ctx.data.rows.filter((r) => !isEvalRow(r) && r.imagePath !== undefined && r.text !== undefined);
  if (trainRows.length === 0 || items.length === 0) return { note: 'pixel nearest neighbour: not measured (the data has no training rows with an image and text to copy from)' };
  ctx.log(`describe: pixel baseline: loading the thumbnails of ${Math.min(trainRows.length, PIXEL_TRAIN_ROWS)} training rows…`);
  const train = await loadPixelCorpus(trainRows.map((r) => ({ id: r.id, image: r.imagePath!, text: r.text! })));
  if (train.rows.length === 0) return { note: `pixel nearest neighbour: not measured (none of the ${train.offered} training rows' images could be read)` };
  const { copies, failed } = await nearestNeighbourCopies(train, items.map((d) => ({ id: d.id, image: d.image, text: d.reference })));
  const byId = new Map(items.map((d) => [d.id, d]));
  const records: DescribeRecord[] = copies.map((c) => ({ id: c.id, image: byId.get(c.id)!.image, reference: byId.get(c.id)!.reference, generated: c.text }));
  const values = { ...captionMetrics(records), ...judgeDescriptions(records, truth).metrics };
  return {
    values,
    note: `pixel nearest neighbour: each item gets the text of the training row whose thumbnail is nearest, judged like the model's (${corpusNote(train)})`
      + (failed > 0 ? `; ${failed} item(s) whose image the baseline could not read are left out of its figures` : ''),
  };
}

/** What descriptions are judged against: the synthetic catalog's truth, or the data's rows (their labels). */
export type DescriptionTruth = { rows: readonly DataRow[] } | { catalog: Map<string, CatalogItem>; catalogFile: string };

export interface DescriptionJudgement {
  metrics: Record<string, number>;
  baselines: Record<string, number>;
  notes: string[];
}

/**
 * Fills in each record's label fields and returns category (and, on the synthetic catalog, colour)
 * accuracy with majority baselines. `rows` give the labels (the label vocabulary is every label in
 * them, held out or not); with no labels there is nothing to measure and a note says so.
 */
export function judgeDescriptions(items: DescribeRecord[], truth: DescriptionTruth): DescriptionJudgement {
  const out: DescriptionJudgement = { metrics: {}, baselines: {}, notes: [] };
  if ('catalog' in truth) {
    const catalog = truth.catalog;
    for (const d of items) {
      const item = catalog.get(d.id)!;
      const category = categoryOf(d.generated), colour = colourOf(d.generated);
      Object.assign(d, { label: item.category, predicted: category, labelOk: category === item.category, rule: 'catalog' as const, colour: item.colour, predictedColour: colour, colourOk: colour === item.colour });
    }
    const truths = items.map((d) => catalog.get(d.id)!);
    out.metrics.categoryAccuracy = share(items.map((d) => d.labelOk === true));
    out.metrics.colourAccuracy = share(items.map((d) => d.colourOk === true));
    out.baselines.categoryAccuracy = majorityShare(truths.map((t) => t.category));
    out.baselines.colourAccuracy = majorityShare(truths.map((t) => t.colour));
    out.notes.push(`synthetic catalog (${truth.catalogFile}): category and colour are the first garment and colour words the description names`);
  } else {
    const rows = new Map<string, DataRow>(truth.rows.map((r) => [r.id, r]));
    const labels = [...new Set(truth.rows.map((r) => r.label).filter((l): l is string => l !== undefined))];
    const labelled = items.filter((d) => rows.get(d.id)?.label !== undefined);
    if (labels.length === 0 || labelled.length === 0) {
      out.notes.push('no labels (give --label-col): category accuracy not measured');
    } else {
      const judge = new LabelJudge(labels);
      for (const d of labelled) {
        const label = rows.get(d.id)!.label!;
        const { predicted, rule } = judge.judge(d.generated, d.reference, label);
        Object.assign(d, { label, predicted, rule, labelOk: predicted !== null && normaliseLabelText(predicted) === normaliseLabelText(label) });
      }
      out.metrics.categoryAccuracy = share(labelled.map((d) => d.labelOk === true));
      out.baselines.categoryAccuracy = majorityShare(labelled.map((d) => d.label!));
      const exact = labelled.filter((d) => d.rule === 'exact').length;
      out.notes.push(
        `category accuracy over ${labelled.length} labelled item(s), ${judge.labels.length} labels: ` +
        (exact === labelled.length ? 'the target is the label, so the normalised description must equal the label'
          : exact === 0 ? 'the label is the first label name the description mentions'
            : `${exact} judged by exact match (target = label), ${labelled.length - exact} by the first label name mentioned`) +
        `; ${labelled.filter((d) => d.predicted === null).length} name no label`,
      );
    }
  }
  return out;
}
