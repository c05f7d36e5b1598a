// From a dataset to the examples of each task: which rows can serve which task, with the task's
// instruction as the model's source text (OFA-style: every task is an instruction to one model).
// A task with no usable rows is skipped with a message saying what data it would need; it is never
// an error, so one spec can drive every task its data supports.
import { BadRowLog, formatBadRow, type BadRow } from '../data/badRows.js';
import type { DatasetSpec } from '../data/datasetSpec.js';
import type { Example, TaskSource } from '../data/loader.js';
import { readDataset, readTable, type DataRow } from '../data/manifest.js';
import { deriveSeed } from '../data/random.js';
import { denoisingPair } from './denoising.js';
import { designPromptOf, designSource, unconditionalDesignSource } from './designPrompt.js';
import { TASKS, type TaskName } from './instructions.js';
import { buildRecommendData, type RecommendData } from './recommendData.js';

/** Split names held out for evaluation (rows with another split, or none, train). */
const EVAL_SPLITS = new Set(['val', 'valid', 'validation', 'dev', 'test', 'eval', 'heldout', 'held-out']);
/** The held-out names that mean validation: rows for choosing settings, never for the final figures. */
const VALIDATION_SPLITS = new Set(['val', 'valid', 'validation', 'dev']);

/** Which held-out split a row is in ('val' or 'test'), or undefined for a training row. */
export function heldOutSplit(row: DataRow): 'val' | 'test' | undefined {
  if (!isEvalRow(row)) return undefined;
  return VALIDATION_SPLITS.has(row.split!.toLowerCase()) ? 'val' : 'test';
}

export interface TaskRequest {
  name: TaskName;
  /** Relative share of batch slots. */
  weight: number;
  /** The share of the training (0–1) before which the task takes no rows (`design@0.3`): a curriculum. */
  start?: number;
}

export interface TaskData {
  /** Tasks that have training examples, with their weights. */
  train: TaskSource[];
  /** The same tasks' held-out examples (may be empty when the data has no eval split). */
  eval: TaskSource[];
  /** One line per requested task that was skipped, saying why (and per task that lost rows to bad cells, with the first). */
  skipped: string[];
  /**
   * Tasks skipped for training because every example is held out (an evaluation-only dataset, such
   * as a test list on its own): `m6 eval` still evaluates them.
   */
  heldOutOnly: TaskSource[];
  /** Rows of the dataset, for evaluation and reports that need the raw rows. */
  rows: DataRow[];
  badRows: number;
  /** The recommend task's items, split and windows, when it was asked for and the data has interactions. */
  recommend?: RecommendData;
}

/**
 * `describe,answer:0.5,design@0.3` → tasks with weights (default 1) and starts: `@share` keeps a task
 * out of the mixture for that share of the training (default 0). Unknown names list the known ones.
 */
export function parseTaskList(text: string): TaskRequest[] {
  const out: TaskRequest[] = [];
  for (const item of text.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const [part, startText, ...more] = item.split('@');
    const start = startText === undefined ? undefined : Number(startText);
    if (more.length > 0 || (start !== undefined && !(startText!.trim() !== '' && start >= 0 && start < 1))) {
      throw new RangeError(`--tasks: '${item}': a task's @start is the share of the training before it joins, a number from 0 up to (not including) 1 (e.g. design@0.3)`);
    }
    const [name, weightText, ...rest] = part!.split(':');
    if (!(name! in TASKS) || rest.length > 0) {
      throw new RangeError(`--tasks: unknown task '${part}': expected names from ${Object.keys(TASKS).join(', ')}, each optionally with :weight (e.g. describe:2,answer:1)`);
    }
    const weight = weightText === undefined ? 1 : Number(weightText);
    if (!Number.isFinite(weight) || weight <= 0) throw new RangeError(`--tasks: the weight of '${name}' must be a positive number, got '${weightText}'`);
    if (out.some((t) => t.name === name)) throw new RangeError(`--tasks: '${name}' is listed twice`);
    out.push({ name: name as TaskName, weight, ...(start !== undefined && start > 0 ? { start } : {}) });
  }
  if (out.length === 0) throw new RangeError('--tasks: no task given');
  if (out.every((t) => t.start !== undefined)) throw new RangeError('--tasks: every task has a start after 0; at least one must train from the first step');
  return out;
}

interface QaPair { question: string; answer: string }

/**
 * Question–answer pairs per manifest row: a `qa` column holding a JSON list of {question, answer}
 * (the synthetic catalog writes one), or `question` and `answer` columns.
 */
/** One qa cell → its pairs, or why it is malformed (expected a JSON list of {question, answer} strings). */
function parseQaCell(cell: string): QaPair[] | string {
  let list: unknown;
  try {
    list = JSON.parse(cell);
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (!Array.isArray(list)) return `a JSON ${list === null ? 'null' : typeof list}, not a list`;
  const pairs: QaPair[] = [];
  for (const [i, item] of list.entries()) {
    const q = (item as { question?: unknown } | null)?.question, a = (item as { answer?: unknown } | null)?.answer;
    if (typeof q !== 'string' || typeof a !== 'string') return `item ${i} is ${JSON.stringify(item)?.slice(0, 60)}, not {question, answer} strings`;
    if (q.trim() && a.trim()) pairs.push({ question: q, answer: a });
  }
  return pairs;
}

/** A record's pairs from its qa cell (or question and answer cells); a malformed qa cell is reported in `bad`. */
function qaPairsOf(fields: ReadonlyMap<string, string>, hasQa: boolean, bad: BadRowLog, where: Pick<BadRow, 'source' | 'row' | 'sample'>): QaPair[] {
  if (!hasQa) {
    const q = fields.get('question'), a = fields.get('answer');
    return q && a ? [{ question: q, answer: a }] : [];
  }
  const cell = fields.get('qa') ?? '';
  const parsed = cell === '' ? [] : parseQaCell(cell);
  if (typeof parsed !== 'string') return parsed;
  bad.add({ reason: 'malformed qa', ...where, field: 'qa', expected: 'a JSON list of {"question", "answer"} strings', got: parsed });
  return [];
}

const NO_QA = 'no qa column (JSON list of {question, answer}) and no question and answer columns';

/** Each shard row's pairs, from the qa (or question and answer) keys of its sample's json. */
function shardQaPairs(rows: readonly DataRow[], bad: BadRowLog): ((row: DataRow) => QaPair[]) | string {
  const keys = new Set(rows.flatMap((r) => [...(r.fields?.keys() ?? [])]));
  const hasQa = keys.has('qa');
  if (!hasQa && !(keys.has('question') && keys.has('answer'))) return `the shards' samples have ${NO_QA} in their json`;
  const byRow = new Map<DataRow, QaPair[]>();
  for (const r of rows) byRow.set(r, qaPairsOf(r.fields ?? new Map(), hasQa, bad, { source: r.source, row: r.row, sample: r.id }));
  return (row) => byRow.get(row) ?? [];
}

/** The question–answer pairs of each row; a malformed qa cell is a bad row in `bad` (the row still serves other tasks). */
async function readQaPairs(spec: DatasetSpec, rows: readonly DataRow[], bad: BadRowLog): Promise<((row: DataRow) => QaPair[]) | string> {
  if (spec.shards !== undefined) return shardQaPairs(rows, bad);
  if (spec.manifest === undefined) return 'the data is an image folder; answer needs a manifest with a qa column (JSON list of {question, answer}) or question and answer columns';
  const table = await readTable(spec.manifest, { format: spec.format, ...(spec.delimiter !== undefined ? { delimiter: spec.delimiter } : {}), ...(spec.columns !== undefined ? { columns: spec.columns } : {}), bad: new BadRowLog() });
  const hasQa = table.columns.includes('qa');
  const hasColumns = table.columns.includes('question') && table.columns.includes('answer');
  if (!hasQa && !hasColumns) return `${spec.manifest} has ${NO_QA}; its columns are ${table.columns.map((c) => `'${c}'`).join(', ')}`;
  const byRow = new Map<number, QaPair[]>();
  for (const record of table.records) {
    const pairs = qaPairsOf(record.fields, hasQa, bad, { source: spec.manifest, row: record.row });
    if (pairs.length) byRow.set(record.row, pairs);
  }
  return (row) => byRow.get(row.row) ?? [];
}

export function isEvalRow(row: DataRow): boolean {
  return row.split !== undefined && EVAL_SPLITS.has(row.split.toLowerCase());
}

/** The `heldOut` field of a row's examples: absent on training rows. */
function heldOutOf(row: DataRow): Pick<Example, 'heldOut'> {
  const split = heldOutSplit(row);
  return split === undefined ? {} : { heldOut: split };
}

/** Reads the dataset once and builds each requested task's train and eval examples. */
export async function buildTaskData(spec: DatasetSpec, requested: readonly TaskRequest[]): Promise<TaskData> {
  // An interactions-only dataset (item ids, no catalog: Amazon Beauty) has no rows; only recommend can use it.
  // Shard rows keep their samples' json fields: the answer task's qa pairs are among them.
  const dataset = spec.manifest === undefined && spec.imageFolder === undefined && spec.shards === undefined ? undefined : await readDataset(spec, { keepFields: spec.shards !== undefined });
  const rows = dataset?.rows ?? [];
  let recommend: RecommendData | undefined;
  const train: TaskSource[] = [], evalSets: TaskSource[] = [], heldOutOnly: TaskSource[] = [], skipped: string[] = [];
  const qaBad = new BadRowLog();
  for (const { name, weight } of requested) {
    let examples: Example[] = [];
    if (name === 'describe') {
      const usable = rows.filter((r) => r.imagePath !== undefined && r.text !== undefined);
      if (usable.length === 0) {
        skipped.push('describe: skipped: no row has both an image and text (give --image-col and --text-col)');
        continue;
      }
      examples = usable.map((r) => ({ id: r.id, imagePath: r.imagePath!, source: TASKS.describe.instruction, target: r.text!, ...heldOutOf(r) }));
    } else if (name === 'answer') {
      const qa = await readQaPairs(spec, rows, qaBad);
      if (qaBad.total > 0) skipped.push(`answer: ${qaBad.total} rows with a malformed qa cell give no questions, e.g. ${formatBadRow(qaBad.summary()[0]!.examples[0]!)}`);
      if (typeof qa === 'string') {
        skipped.push(`answer: skipped: ${qa}`);
        continue;
      }
      for (const r of rows) {
        qa(r).forEach((p, k) => {
          const ex: Example = { id: `${r.id}#q${k}`, source: p.question, target: p.answer, ...heldOutOf(r) };
          if (r.imagePath !== undefined) ex.imagePath = r.imagePath;
          examples.push(ex);
        });
      }
      if (examples.length === 0) {
        skipped.push('answer: skipped: no row has a question and an answer');
        continue;
      }
    } else if (name === 'design') {
      // Text → image: the row's caption is the prompt (designPrompt.ts), its image the target; the
      // image is not an input. targetCodes are filled in by the VQ stage of training (designCodes.ts).
      const usable = rows.filter((r) => r.imagePath !== undefined && designPromptOf(r) !== undefined);
      if (usable.length === 0) {
        skipped.push('design: skipped: no row has both an image and a caption or label (give --image-col and --text-col: the first text column is the prompt)');
        continue;
      }
      examples = usable.map((r) => ({ id: r.id, targetImage: r.imagePath!, source: designSource(designPromptOf(r)!), unconditionalSource: unconditionalDesignSource(), ...heldOutOf(r) }));
    } else if (name === 'embed') {
      // Image–text pairs: the row's caption (its first text part) is the text an image should be found by.
      const usable = rows.filter((r) => r.imagePath !== undefined && r.caption !== undefined);
      if (usable.length < 2) {
        skipped.push(`embed: skipped: contrastive training needs at least two rows with both an image and text, found ${usable.length} (give --image-col and --text-col)`);
        continue;
      }
      examples = usable.map((r) => ({ id: r.id, imagePath: r.imagePath!, source: r.caption!, ...heldOutOf(r) }));
    } else if (name === 'denoise') {
      const usable = rows.filter((r) => r.text !== undefined);
      if (usable.length === 0) {
        skipped.push('denoise: skipped: no row has text (give --text-col)');
        continue;
      }
      examples = usable.map((r) => ({ id: `${r.id}#denoise`, ...denoisingPair(r.text!, deriveSeed(0, 'denoise', r.id)), specialTokensInSource: true, ...heldOutOf(r) }));
    } else if (name === 'recommend') {
      const rd = await buildRecommendData(spec, rows, isEvalRow);
      if (typeof rd === 'string') {
        skipped.push(`recommend: skipped: ${rd}`);
        continue;
      }
      recommend = rd;
      if (rd.unknownItems > 0) skipped.push(`recommend: ${rd.unknownItems} interactions name items that are not catalog rows: they are kept as items known by id only`);
      // Held-out cases come from the time split, not from the catalog's split: each shopper's last two items.
      train.push({ name, examples: rd.train, weight });
      evalSets.push({ name, examples: rd.heldOut, weight });
      continue;
    } else {
      const task = name as TaskName;  // every task is handled above today; a new one lands here until it is
      skipped.push(`${task}: skipped: ${TASKS[task].unavailable ?? 'not available'}`);
      continue;
    }
    const trainExamples = examples.filter((e) => e.heldOut === undefined);
    if (trainExamples.length === 0) {
      heldOutOnly.push({ name, examples, weight });
      skipped.push(`${name}: skipped: all ${examples.length} examples are in held-out splits (${[...EVAL_SPLITS].join('/')})`);
      continue;
    }
    train.push({ name, examples: trainExamples, weight });
    evalSets.push({ name, examples: examples.filter((e) => e.heldOut !== undefined), weight });
  }
  // A schedule's starts shape the training mixture only: held-out sets are judged whole.
  for (const t of train) {
    const start = requested.find((r) => r.name === t.name)?.start;
    if (start !== undefined) t.start = start;
  }
  const out: TaskData = { train, eval: evalSets, skipped, heldOutOnly, rows, badRows: (dataset?.bad.total ?? 0) + (recommend?.bad.total ?? 0) + qaBad.total };
  if (recommend !== undefined) out.recommend = recommend;
  return out;
}

/** The row an answer example's pair came from: ids are `${row}#q${k}` (buildTaskData). */
const answerRowOf = (id: string): string => id.slice(0, id.lastIndexOf('#q'));

/**
 * Answer examples packed per row (M6Config.packAnswers): each row's questions in one example of
 * `pairs`, about its image, split into consecutive packs of as many as `fits` allows (a pair that
 * fits nowhere alone is still a pack of one: the loader names it). Pack ids are `${row}#qa${n}`.
 */
export function packAnswerPairs(examples: readonly Example[], fits: (pairs: ReadonlyArray<{ source: string; target: string }>) => boolean): Example[] {
  const packs: Example[] = [];
  let row: string | undefined, pairs: Array<{ source: string; target: string }> = [], first: Example | undefined, n = 0;
  const flush = () => {
    if (first === undefined || pairs.length === 0) return;
    const { source: _s, target: _t, ...rest } = first;
    packs.push({ ...rest, id: `${row}#qa${n++}`, pairs });
    pairs = [];
  };
  for (const e of examples) {
    const r = answerRowOf(e.id);
    if (r !== row) { flush(); row = r; first = e; n = 0; }
    const pair = { source: e.source ?? '', target: e.target ?? '' };
    if (pairs.length > 0 && !fits([...pairs, pair])) { flush(); first = e; }
    pairs.push(pair);
  }
  flush();
  return packs;
}

/**
 * Every text the tasks will train on (sources and targets): what a fresh tokenizer learns from.
 * Held-out rows are left out, so nothing about them reaches the run before it is judged on them.
 */
export function taskTexts(data: TaskData): string[] {
  const texts: string[] = [];
  for (const t of data.train) {
    for (const e of t.examples) {
      if (e.source !== undefined) texts.push(e.source);
      if (e.target !== undefined) texts.push(e.target);
      for (const p of e.pairs ?? []) texts.push(p.source, p.target);
    }
  }
  // Item titles are what the recommend task reads of an item (held-out catalog rows' are withheld).
  for (const title of data.recommend?.items.titles ?? []) if (title !== undefined) texts.push(title);
  return texts;
}

/**
 * What training evaluates on as it goes: each task's validation examples, or — for a task whose data
 * has no validation split — all its held-out examples (`note` says which tasks those are, so that no
 * one reads a choice made on them as made on validation).
 */
export function validationSets(sets: readonly TaskSource[]): { sets: TaskSource[]; note?: string } {
  const withoutVal: string[] = [];
  const out = sets.map((s) => {
    const val = s.examples.filter((e) => e.heldOut === 'val');
    if (val.length > 0) return { ...s, examples: val };
    if (s.examples.length > 0) withoutVal.push(s.name);
    return s;
  });
  return withoutVal.length === 0 ? { sets: out } : { sets: out, note: `${withoutVal.join(', ')}: no validation rows (split 'val'): the evaluation during training reads their test rows` };
}
