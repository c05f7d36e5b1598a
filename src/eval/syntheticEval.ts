// Judging generated text against the synthetic catalog's exact truth: a description is right about
// the category when the first garment word it names is the product's, and right about the colour
// when the first colour word it names is the product's main colour (titles and descriptions both
// lead with the main colour; the pattern's second colour comes later). Answers are judged by exact
// match after lower-casing and trimming.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CATEGORIES, COLOURS } from '../data/synth/attributes.js';
import type { M6Model } from '../model/index.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { bleu, ciderD, rougeL } from './textMetrics.js';
import type { Pipeline } from '../pipelines/index.js';
import { TASKS } from '../tasks/instructions.js';
import { inChunks } from './evaluation.js';
import { nearestNeighbourCopies, type PixelCorpus, type PixelRow } from './pixelBaselines.js';

export interface CatalogItem {
  id: string;
  image: string;
  category: string;
  colour: string;
  /** solid, striped, checked, dotted… */
  pattern?: string;
  title: string;
  description: string;
  qa: Array<{ question: string; answer: string }>;
  /** Whether the training split shows this category × colour × pattern (absent in catalogs written before the compositional hold-out). */
  composition?: 'seen' | 'novel';
}

/** A share and how many items it is over. */
export interface Share { share: number; items: number }

/**
 * `ok`'s share over the items of each part (seen and novel compositions): items whose part is
 * undefined count in no part.
 */
export function sharesByPart<T>(items: readonly T[], partOf: (item: T) => string | undefined, ok: (item: T) => boolean): Record<string, Share> {
  const tally = new Map<string, { hits: number; n: number }>();
  for (const it of items) {
    const part = partOf(it);
    if (part === undefined) continue;
    const t = tally.get(part) ?? { hits: 0, n: 0 };
    t.n++;
    if (ok(it)) t.hits++;
    tally.set(part, t);
  }
  return Object.fromEntries([...tally].sort(([a], [b]) => a.localeCompare(b)).map(([part, t]) => [part, { share: t.hits / t.n, items: t.n }]));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// Words that name each category. "shirt" must not match inside "t-shirt": a word here starts after
// a non-letter that is not a hyphen.
const CATEGORY_WORDS: ReadonlyArray<{ category: string; pattern: RegExp }> = CATEGORIES.map((c) => {
  const words = new Set([c.name, c.en.toLowerCase(), c.noun.replace(/^pair of /, '')]);
  const alternatives = [...words].map((w) => `${escapeRegExp(w)}s?`).join('|');
  return { category: c.name, pattern: new RegExp(`(?<![a-z-])(?:${alternatives})(?![a-z])`, 'g') };
});
const COLOUR_WORDS = COLOURS.map((c) => ({ colour: c.name, pattern: new RegExp(`(?<![a-z])${escapeRegExp(c.name)}(?![a-z])`, 'g') }));

function firstMatch<T extends { pattern: RegExp }>(text: string, table: readonly T[]): T | null {
  const lower = text.toLowerCase();
  let best: T | null = null, at = Infinity;
  for (const entry of table) {
    entry.pattern.lastIndex = 0;
    const m = entry.pattern.exec(lower);
    if (m !== null && m.index < at) { best = entry; at = m.index; }
  }
  return best;
}

/** The category a text names first, or null. */
export function categoryOf(text: string): string | null {
  return firstMatch(text, CATEGORY_WORDS)?.category ?? null;
}

/** The colour a text names first, or null. */
export function colourOf(text: string): string | null {
  return firstMatch(text, COLOUR_WORDS)?.colour ?? null;
}

export function normaliseAnswer(text: string): string {
  return text.trim().toLowerCase().replace(/[.!。]+$/, '');
}

/** catalog.jsonl of `m6 data synth`, by product id. */
export function readCatalog(file: string): Map<string, CatalogItem> {
  const out = new Map<string, CatalogItem>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const item = JSON.parse(line) as CatalogItem;
    out.set(item.id, item);
  }
  return out;
}

export interface DescribeJudgement { id: string; image: string; truth: string; reference: string; generated: string; category: string; colour: string; categoryOk: boolean; colourOk: boolean }
export interface AnswerJudgement { id: string; image: string; question: string; truth: string; generated: string; ok: boolean }

export interface SyntheticEvalResult {
  describe: { items: DescribeJudgement[]; categoryAccuracy: number; colourAccuracy: number; categoryBaseline: number; colourBaseline: number; bleu4: number; rougeL: number; ciderD: number };
  answer: { items: AnswerJudgement[]; exactMatch: number } | null;
  seconds: number;
}

/** The text describe is trained to write for a product (the manifest's title and description), which the caption metrics compare with. */
export function describeReference(it: CatalogItem): string {
  return `${it.title} ${it.description}`;
}

/** The share of the commonest value: what always answering the majority class scores. */
export function majorityShare(values: readonly string[]): number {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return values.length ? Math.max(...counts.values()) / values.length : 0;
}

/** How a description of `it` is judged: the category and colour it names first, against the catalog's. */
export function judgeDescription(it: CatalogItem, generated: string): { category: string; colour: string; categoryOk: boolean; colourOk: boolean } {
  const category = categoryOf(generated) ?? '—', colour = colourOf(generated) ?? '—';
  return { category, colour, categoryOk: category === it.category, colourOk: colour === it.colour };
}

/**
 * Describes each held-out item's image and answers its questions with the model, and judges both.
 * `imageRoot` is the catalog folder (item.image is relative to it). Baselines are the majority
 * class's share among the evaluated items (what always saying the commonest category would score).
 */
export async function evaluateSynthetic(pipeline: Pipeline, items: readonly CatalogItem[], imageRoot: string, o: { maxQuestions?: number; withAnswers?: boolean; log?: (m: string) => void } = {}): Promise<SyntheticEvalResult> {
  const started = Date.now();
  const path = (it: CatalogItem) => `${imageRoot}/${it.image}`;
  // In chunks, with a line after each: a long evaluation shows it is alive.
  const chunked = (task: 'describe' | 'answer') => ({ task, batchSize: 16, log: o.log ?? (() => {}) });
  const described = await inChunks(chunked('describe'), 'described', items.map(path), (part) => pipeline.describe(part));
  const dItems: DescribeJudgement[] = items.map((it, i) => {
    const r = described[i]!;
    const generated = r.ok ? r.text : `(error: ${r.error})`;
    return { id: it.id, image: it.image, truth: it.title, reference: describeReference(it), generated, ...judgeDescription(it, generated) };
  });
  const share = (xs: boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : 0);
  let answer: SyntheticEvalResult['answer'] = null;
  if (o.withAnswers !== false) {
    const questions = items.flatMap((it) => it.qa.map((q) => ({ it, ...q }))).slice(0, o.maxQuestions ?? 300);
    const answered = await inChunks(chunked('answer'), 'answered', questions.map((q) => ({ question: q.question, image: path(q.it) })), (part) => pipeline.answer(part));
    const aItems = questions.map((q, i): AnswerJudgement => {
      const r = answered[i]!;
      const generated = r.ok ? r.text : `(error: ${r.error})`;
      return { id: q.it.id, image: q.it.image, question: q.question, truth: q.answer, generated, ok: normaliseAnswer(generated) === normaliseAnswer(q.answer) };
    });
    answer = { items: aItems, exactMatch: share(aItems.map((a) => a.ok)) };
  }
  // The caption metrics compare with the text the model was trained to write (title and description).
  const pairs = dItems.map((d) => ({ candidate: d.generated, references: [d.reference] }));
  return {
    describe: {
      items: dItems,
      bleu4: bleu(pairs),
      rougeL: rougeL(pairs),
      ciderD: ciderD(pairs),
      categoryAccuracy: share(dItems.map((d) => d.categoryOk)),
      colourAccuracy: share(dItems.map((d) => d.colourOk)),
      categoryBaseline: majorityShare(items.map((it) => it.category)),
      colourBaseline: majorityShare(items.map((it) => it.colour)),
    },
    answer,
    seconds: (Date.now() - started) / 1000,
  };
}

/** The catalog's products as the pixel baselines see them: describe copies the title and description, search matches the title. */
export function catalogPixelRows(items: readonly CatalogItem[], imageRoot: string): PixelRow[] {
  return items.map((it) => ({ id: it.id, image: join(imageRoot, it.image), text: describeReference(it), caption: it.title }));
}

export interface NearestDescribeResult {
  items: number;
  /** Held-out products left out because their image could not be read. */
  failed: number;
  categoryAccuracy: number;
  colourAccuracy: number;
  ciderD: number;
  /** Each judged product's verdicts, for figures by part (seen and novel compositions). */
  judgements: Array<{ id: string; categoryOk: boolean; colourOk: boolean }>;
  examples: Array<{ id: string; nearest: string; caption: string }>;
}

/** describe's pixel nearest-neighbour baseline on the catalog (pixelBaselines.ts), judged as evaluateSynthetic judges the model. */
export async function nearestNeighbourDescribe(train: PixelCorpus, heldOut: readonly CatalogItem[], imageRoot: string): Promise<NearestDescribeResult> {
  const byId = new Map(heldOut.map((it) => [it.id, it]));
  const { copies, failed } = await nearestNeighbourCopies(train, catalogPixelRows(heldOut, imageRoot));
  const judged = copies.map((c) => ({ ...c, it: byId.get(c.id)!, ...judgeDescription(byId.get(c.id)!, c.text) }));
  const share = (xs: boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : 0);
  return {
    items: judged.length, failed,
    categoryAccuracy: share(judged.map((j) => j.categoryOk)),
    colourAccuracy: share(judged.map((j) => j.colourOk)),
    // Against the same references as the model's descriptions (evaluateSynthetic).
    ciderD: ciderD(judged.map((j) => ({ candidate: j.text, references: [describeReference(j.it)] }))),
    judgements: judged.map((j) => ({ id: j.id, categoryOk: j.categoryOk, colourOk: j.colourOk })),
    examples: judged.slice(0, 6).map((j) => ({ id: j.id, nearest: j.nearest, caption: j.text })),
  };
}
