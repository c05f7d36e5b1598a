// The recommend task's data: the dataset's interactions as shoppers' item sequences, split by time
// per shopper (the last item is the test target, the one before it validation: SASRec's and
// S3-Rec's leave-one-out protocol), the run's item vocabulary (catalog rows first, then items known
// only from the interactions: id-only items, as in many logs) and each item's title.
// Training examples are windows of each shopper's training sequence; every step of a window
// predicts the next item (objectives.ts).
import { BadRowLog } from '../data/badRows.js';
import type { DatasetSpec } from '../data/datasetSpec.js';
import { readInteractions } from '../data/interactions.js';
import { assertNoLeak, leaveLastOut, type HeldOutCase, type InteractionSplit } from '../data/interactionSplit.js';
import { ItemVocabulary } from '../data/itemVocabulary.js';
import type { Example } from '../data/loader.js';
import type { DataRow } from '../data/manifest.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { TASKS } from './instructions.js';

/** A run's item vocabulary, beside its tokenizer.json: item ids in the order of the model's item table. */
export const ITEMS_FILE = 'items.json';

/** Title tokens an item keeps for its content vector (M6Config.itemTextLen): a product title's words. */
export const ITEM_TITLE_TOKENS = 16;

/**
 * Share of items whose learnt vector is dropped per training step when items have titles
 * (M6Config.itemIdDropout). 0.9: on the synthetic catalog's validation items (2,000 products, 600
 * shoppers, 400 steps) NDCG@10 was 0.0163 at 0.9 against 0.0139 at 0.5 (README, recommend).
 */
export const ITEM_ID_DROPOUT = 0.9;

/** Items a history window holds: SASRec's 50 (a shopper's older items matter less than recent ones). */
export const RECOMMEND_WINDOW = 50;

export interface RecommendItems {
  vocabulary: ItemVocabulary;
  /** Per item index: the catalog row's caption (its title), or undefined for id-only items and for
   * held-out catalog rows (their text is not trained on, as for every other task). */
  titles: Array<string | undefined>;
  /** Per item index: the catalog row's label (its category), when it has one: complements are items of other categories. */
  labels: Array<string | undefined>;
  /** Per item index: 1 when the item occurs in a training sequence (it has a learnt vector), 0 for cold items. */
  warm: Uint8Array;
}

export interface RecommendData {
  items: RecommendItems;
  /** Shoppers' sequences split by time (item ids). */
  split: InteractionSplit;
  /** Training windows: `items` holds up to RECOMMEND_WINDOW + 1 item indices. */
  train: Example[];
  /** Validation cases as windows ending at the held-out item (for the trainer's held-out loss). */
  heldOut: Example[];
  /** Interactions naming an item not in the catalog (when there is one): kept as id-only items. */
  unknownItems: number;
  bad: BadRowLog;
}

/** Windows of a sequence of item indices, each up to `window` + 1 long, ending at the last item and every `window` items before it, so every step is predicted once. */
export function sequenceWindows(sequence: readonly number[], window: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let end = sequence.length; end >= 2; end -= window) out.push(Int32Array.from(sequence.slice(Math.max(0, end - window - 1), end)));
  return out;
}

/** Item indices of a history's last `window` items that the vocabulary knows. */
export function historyIndices(vocabulary: ItemVocabulary, history: readonly string[], window = RECOMMEND_WINDOW): number[] {
  const out: number[] = [];
  for (const id of history) {
    const i = vocabulary.index(id);
    if (i !== undefined) out.push(i);
  }
  return out.slice(-window);
}

function catalogItems(rows: readonly DataRow[], isHeldOut: (row: DataRow) => boolean): { ids: string[]; titles: Map<string, string | undefined>; labels: Map<string, string | undefined> } {
  const ids: string[] = [], titles = new Map<string, string | undefined>(), labels = new Map<string, string | undefined>();
  for (const r of rows) {
    if (titles.has(r.id)) continue;
    ids.push(r.id);
    titles.set(r.id, isHeldOut(r) ? undefined : r.caption ?? r.text);
    labels.set(r.id, r.label);
  }
  return { ids, titles, labels };
}

/**
 * The recommend task's data, or why there is none. `rows` are the catalog's rows (empty for an
 * interactions-only dataset such as Amazon Beauty); `isHeldOut` says which catalog rows are held
 * out of training for the other tasks (their titles are withheld here too).
 */
export async function buildRecommendData(spec: DatasetSpec, rows: readonly DataRow[], isHeldOut: (row: DataRow) => boolean): Promise<RecommendData | string> {
  if (spec.interactions === undefined) return 'the dataset names no interactions file (give --interactions FILE, or "interactions" in the spec: user, item, time per row, or one user per line)';
  const bad = new BadRowLog();
  const log = await readInteractions(spec.interactions, { bad });
  if (!log.ordered) return `${log.source} has no time column: its rows are baskets, not sequences (give --time-col; baskets train complements)`;
  const split = leaveLastOut(log.sequences);
  assertNoLeak(split, log.sequences);
  const catalog = catalogItems(rows, isHeldOut);
  const known = new Set(catalog.ids);
  let unknownItems = 0;
  const extra: string[] = [];
  for (const seq of log.sequences.values()) {
    for (const id of seq) {
      if (known.has(id)) continue;
      if (catalog.ids.length > 0) unknownItems++;
      known.add(id);
      extra.push(id);
    }
  }
  const vocabulary = ItemVocabulary.from([...catalog.ids, ...extra]);
  const warm = new Uint8Array(vocabulary.size);
  const train: Example[] = [];
  for (const [user, seq] of split.train) {
    const idx = seq.map((id) => vocabulary.index(id)!);
    for (const i of idx) warm[i] = 1;
    sequenceWindows(idx, RECOMMEND_WINDOW).forEach((items, k) => train.push({ id: `${user}#w${k}`, source: TASKS.recommend.instruction, items }));
  }
  if (train.length === 0) return `${log.source}: no shopper has 2 or more training interactions (after holding out each shopper's last two)`;
  const heldOut = split.val.map((c: HeldOutCase) => ({ id: `${c.user}#val`, heldOut: 'val' as const, source: TASKS.recommend.instruction, items: Int32Array.from([...historyIndices(vocabulary, c.history), vocabulary.index(c.target)!]) }));
  const titles = vocabulary.ids.map((id) => catalog.titles.get(id));
  const labels = vocabulary.ids.map((id) => catalog.labels.get(id));
  return { items: { vocabulary, titles, labels, warm }, split, train, heldOut, unknownItems, bad };
}

/** Each item's title as `length` token ids (cut at `length`), -1 after the end and for items without a title: ItemTable.setText's input. */
export function itemTitleTokens(tokenizer: Tokenizer, titles: ReadonlyArray<string | undefined>, length: number): Int32Array {
  const out = new Int32Array(titles.length * length).fill(-1);
  titles.forEach((title, i) => {
    if (title === undefined) return;
    out.set(tokenizer.encode(title).slice(0, length), i * length);
  });
  return out;
}
