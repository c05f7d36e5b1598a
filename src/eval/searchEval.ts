// Evaluating catalog search end to end (`m6 eval --tasks search`): the held-out rows of the embed
// task go into a catalog index as `m6 index build` puts them there (LanceDB, a temp folder, unless
// `--index` names one built from those rows), every held-out title is a text query against their
// image vectors, and the ranking is scored by recall@1/5/10 and nDCG@10 beside a random ranking.
// Relevant to a title: its own item and every item with the same title (case-insensitive), as the
// embed task counts ties of identical captions (retrievalMetrics.relevantItems): the query cannot
// tell such items apart. The ranking is the exact store's (one matmul, the ground truth); the ANN
// index's top 10 on the same queries is measured against it, forced on the gallery when it is below
// the size at which `m6 index build` trains one.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataRow } from '../data/manifest.js';
import type { Pipeline } from '../pipelines/index.js';
import { annMinRows, annPartitions, DEFAULT_ANN, indexCatalog, openCatalogIndex, provenanceOf, type CatalogIndex, type IndexProvenance, type StoredRow } from '../search/index.js';
import { InputError } from '../torch/inputError.js';
import type { EvalContext, ItemFailure, Skipped, TaskEvaluation } from './evaluation.js';
import { chanceNdcg, chanceRecall, rankedListMetrics, relevantItems } from './retrievalMetrics.js';
import type { RetrievalExample } from './embedEval.js';

export interface SearchEvalOptions {
  /** A catalog index already built from the held-out rows (by this run); default: one built in a temp folder. */
  index?: string;
  /** Examples kept in the per-item records (default 20). */
  showExamples?: number;
}

const KS = [1, 5, 10];
const NDCG_K = 10;

/** The gallery and its index: the rows as stored (examples' order) and where the ANN figure comes from. */
interface Gallery {
  rows: StoredRow[];
  failures: ItemFailure[];
  index: CatalogIndex;
  /** Whether the index is ours (a temp folder): an ANN index may be trained on it. */
  own: boolean;
}

/** `m6 eval`'s search evaluator. */
export async function evaluateSearch(ctx: EvalContext, o: SearchEvalOptions = {}): Promise<TaskEvaluation<RetrievalExample> | Skipped> {
  if (ctx.examples === null || ctx.examples.length === 0) return { skipped: ctx.skipReason ?? 'no held-out examples' };
  const unsupported = ctx.pipeline.whyNot('embed');
  if (unsupported !== undefined) return { skipped: `search ranks the embed task's vectors: ${unsupported}` };
  const started = Date.now();
  const byId = new Map(ctx.data.rows.map((r) => [r.id, r]));
  const rows = ctx.examples.map((e) => byId.get(e.id)).filter((r): r is DataRow => r !== undefined);
  const weights = await provenanceOf(ctx.pipeline);
  const temp = mkdtempSync(join(tmpdir(), 'm6-eval-search-'));
  try {
    const gallery = o.index !== undefined ? await givenGallery(o.index, rows, weights) : await builtGallery(ctx, rows, weights, join(temp, 'index'));
    try {
      return await judge(ctx, gallery, weights, temp, o, started);
    } finally {
      await gallery.index.close();
    }
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** The held-out rows indexed as `m6 index build` indexes a catalog; rows that cannot be embedded are failures. */
async function builtGallery(ctx: EvalContext, rows: readonly DataRow[], weights: IndexProvenance, dir: string): Promise<Gallery> {
  const index = await openCatalogIndex(dir, { store: 'lance', weights, ann: { threshold: Infinity, columns: ['image'] } });
  ctx.log(`search: indexing ${rows.length} held-out rows…`);
  const built = await indexCatalog(ctx.pipeline, rows, index, { onExisting: 'skip' });
  const stored = await index.get(rows.map((r) => r.id));
  return { rows: stored, failures: built.failed.map((f) => ({ id: f.id, error: f.error })), index, own: true };
}

/** A given index must hold exactly the rows judged: others would change the gallery the baseline is computed for. */
async function givenGallery(uri: string, rows: readonly DataRow[], weights: IndexProvenance): Promise<Gallery> {
  const index = await openCatalogIndex(uri, { weights, create: false });
  try {
    const stored = await index.get(rows.map((r) => r.id));
    const info = await index.info();
    if (info.refused !== undefined) throw new InputError(`--index ${info.refused}`);
    const missing = rows.length - stored.length, extra = info.rows - stored.length;
    if (missing > 0 || extra > 0) {
      throw new InputError(`--index ${uri}: holds ${info.rows} rows, of which ${stored.length} are the ${rows.length} held-out rows judged (${missing} missing, ${extra} others); `
        + 'build it from the held-out rows alone (m6 index build … --split-col/--split with only those rows), or leave --index out to index them in a temp folder');
    }
    return { rows: stored, failures: [], index, own: false };
  } catch (e) {
    await index.close();
    throw e;
  }
}

async function judge(ctx: EvalContext, g: Gallery, weights: IndexProvenance, temp: string, o: SearchEvalOptions, started: number): Promise<TaskEvaluation<RetrievalExample>> {
  const n = g.rows.length;
  const relevant = relevantItems(g.rows.map((r) => ({ id: r.id, image: r.imagePath, text: r.title })));
  const sizes = relevant.map((r) => r.length);
  const exact = await openCatalogIndex(':memory:', { store: 'exact', weights });
  try {
    await exact.upsert(g.rows, { buildAnn: false });
    ctx.log(`search: ${n} titles against ${n} images (exact store, then the ANN index)…`);
    const truth = await rankAll(exact, g.rows, {});
    const ann = await annFigures(ctx, g, weights, temp, truth.ids);
    const position = new Map(g.rows.map((r, i) => [r.id, i]));
    const ranked = truth.ids.map((ids) => ids.map((id) => position.get(id)!));
    const m = rankedListMetrics(ranked, relevant, KS, NDCG_K);
    const metrics: Record<string, number> = { ...recallKeys(m), ndcg10: m[`ndcg@${NDCG_K}`]!, ...(Number.isFinite(ann.recall) ? { annRecallAt10: ann.recall } : {}) };
    const baselines: Record<string, number> = { ...recallKeys(Object.fromEntries(KS.map((k) => [`recall@${k}`, chanceRecall(sizes, n, k)]))), ndcg10: chanceNdcg(sizes, n, NDCG_K) };
    return {
      task: 'search', available: ctx.available, evaluated: n, failures: g.failures, metrics, baselines, baselineName: 'random ranking',
      notes: [
        `text→image over a catalog index of the ${n} held-out rows' image vectors${g.own ? ' (LanceDB, built as m6 index build builds one)' : ''}; relevant: the query's own item and any item with the same title (${(sizes.reduce((a, b) => a + b, 0) / Math.max(1, n)).toFixed(2)} per query on average); ranked by the exact store`,
        ann.note,
        `latency p50 per query: exact store ${median(truth.ms).toFixed(2)} ms${ann.ms.length ? `, ANN ${median(ann.ms).toFixed(2)} ms` : ''}`,
      ],
      items: examples(g.rows, ranked, relevant, o.showExamples ?? 20), seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await exact.close();
  }
}

function recallKeys(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(KS.map((k) => [`textToImageRecall${k}`, m[`recall@${k}`]!]));
}

/** Each row's title vector (its stored text vector: what `m6 search --text TITLE` embeds) searched against the image column. */
async function rankAll(index: CatalogIndex, rows: readonly StoredRow[], opts: { nprobes?: number }): Promise<{ ids: string[][]; ms: number[] }> {
  const ids: string[][] = [], ms: number[] = [];
  for (const r of rows) {
    const t0 = performance.now();
    const hits = await index.search(r.text, { k: NDCG_K, vectorColumn: 'image', ...opts });
    ms.push(performance.now() - t0);
    ids.push(hits.map((h) => h.id));
  }
  return { ids, ms };
}

/** The ANN index's top 10 against the exact store's, on the gallery's index when it has one on images, else on an IVF_FLAT index trained for the measurement. */
async function annFigures(ctx: EvalContext, g: Gallery, weights: IndexProvenance, temp: string, truth: string[][]): Promise<{ recall: number; ms: number[]; note: string }> {
  const n = g.rows.length;
  const has = async (idx: CatalogIndex) => (await idx.info()).ann.columns.find((c) => c.column === 'image')?.state === 'ready';
  let idx = g.index, own: CatalogIndex | undefined;
  let how = `the index's own ANN index (nprobes ${DEFAULT_ANN.nprobes})`;
  if (!(await has(idx))) {
    if (n < annMinRows('ivf_flat')) return { recall: NaN, ms: [], note: `ANN recall@10: not measured (${n} rows: too few to train IVF partitions)` };
    if (!g.own) {
      own = await openCatalogIndex(join(temp, 'ann'), { store: 'lance', weights, ann: { threshold: Infinity, columns: ['image'] } });
      await own.upsert(g.rows, { buildAnn: false });
      idx = own;
    }
    ctx.log(`search: training an IVF_FLAT index on ${n} image vectors for the ANN figure…`);
    await idx.buildAnn();
    const below = n < DEFAULT_ANN.threshold ? `; ${n} rows are below the ANN threshold (${DEFAULT_ANN.threshold}), so m6 index build would search them exactly` : '';
    how = `an IVF_FLAT index forced on the same vectors (${annPartitions(n)} partitions, nprobes ${DEFAULT_ANN.nprobes}${below})`;
  }
  try {
    const got = await rankAll(idx, g.rows, {});
    let hit = 0, all = 0;
    got.ids.forEach((ids, q) => { const t = new Set(truth[q]); hit += ids.filter((id) => t.has(id)).length; all += truth[q]!.length; });
    return { recall: all ? hit / all : NaN, ms: got.ms, note: `ANN recall@10: the ANN top 10 ∩ the exact store's top 10 on the same queries, over ${how}` };
  } finally {
    await own?.close();
  }
}

function examples(rows: readonly StoredRow[], ranked: number[][], relevant: number[][], show: number): RetrievalExample[] {
  return ranked.slice(0, show).map((row, q) => ({
    query: rows[q]!.title,
    image: rows[q]!.imagePath,
    top: row.slice(0, 5).map((i) => ({ id: rows[i]!.id, text: rows[i]!.title, image: rows[i]!.imagePath, relevant: relevant[q]!.includes(i) })),
  }));
}

function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
