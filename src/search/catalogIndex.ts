// The catalog index: one interface, two stores.
//   lance: LanceDB embedded (the default): a folder on disk or an object-store URI that many server
//          replicas read; an IVF-PQ ANN index is trained once the catalog passes `ann.threshold` rows,
//          below it (and for a filter that keeps few rows) the search is an exact scan.
//   exact: every vector in memory, one matmul per query through our own tensors; for small catalogs
//          and as the ground truth for ANN recall. Given a folder it persists to one safetensors file.
// Both share everything above the storage: row checks, batching, filters (one parser), provenance.
//
// Provenance: an index records the run and the weights digest that made its vectors. Opened with
// other weights, `search` and `upsert` refuse with both named (vectors of two models do not compare);
// opened with no weights at all, the index is read-only (`info`, `get`).
//
// Resume: `upsert` writes in batches, each one commit; with `onExisting: 'skip'` rows whose id is
// already there are left alone, so a build that died half-way is finished by running it again.
import { InputError } from '../torch/inputError.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { F, type Filter } from './filter.js';
import { checkRow, lastById, VECTOR_COLUMNS, type BadIndexRow, type CatalogRow, type StoredRow, type VectorColumn } from './rows.js';

export type StoreKind = 'lance' | 'exact';

/** Who made the vectors: an index only answers queries whose vectors come from the same weights. */
export interface IndexProvenance {
  /** The training run's id or folder name. */
  run: string;
  /** A digest of the weights file (e.g. `sha256:…`): two runs, or two checkpoints of one run, differ. */
  weightsDigest: string;
  /** The model preset (e.g. `m6-nano`). */
  model: string;
  /** The embedding dimension. */
  dims: number;
}

/** What the index records beside its rows. */
export interface IndexMeta extends IndexProvenance {
  format: 'm6-catalog-index';
  version: 1;
  store: StoreKind;
  /** Always `dot` on unit vectors: the ANN index is trained with the same distance it is queried with. */
  distance: 'dot';
  createdAt: string;
  updatedAt: string;
  /** Rows after the last write. */
  rows: number;
}

/**
 * The ANN index LanceDB trains. `ivf_flat` (default): k-means partitions holding the full vectors:
 * exact distances inside the probed partitions, so recall depends on nprobes alone; at 1M × 128 it
 * trains ~8× faster than IVF-PQ and is faster to query at a higher recall (see `bench search`).
 * `ivf_pq`: product-quantised codes, 1/16 of the memory, re-ranked with the full vectors (refineFactor),
 * for catalogs whose vectors outgrow memory. (LanceDB 0.31's IVF_HNSW_SQ with `dot` gave recall@10
 * 0.3–0.45 on unit vectors whatever `ef`, so it is not offered.)
 */
export type AnnType = 'ivf_flat' | 'ivf_pq';

export interface AnnOptions {
  /** Rows from which `upsert` trains an ANN index (default 100 000); below it every search is exact. */
  threshold: number;
  type: AnnType;
  /** Vector columns that get an ANN index (default all three). */
  columns: readonly VectorColumn[];
  /** IVF partitions (default `annPartitions(rows)`). */
  partitions?: number;
  /** PQ sub-vectors (ivf_pq; default dims / 4: 4 dims each: LanceDB's 16-dim default gave recall@10 0.63 at 1M). */
  subVectors?: number;
  /** IVF partitions probed per query (default 10: recall@10 ≥ 0.999 at 1M rows in `bench search`). */
  nprobes: number;
  /**
   * Partitions probed by a filtered query (default 60): the nearest rows that pass a selective filter
   * lie farther out; at 1% selectivity and 1M rows 20 probes gave recall@10 0.96, 60 gave 0.99.
   */
  filteredNprobes: number;
  /** ivf_pq: candidates re-ranked with the full vectors, as a multiple of k (default 20). */
  refineFactor: number;
}

/**
 * IVF partitions trained by default: √rows, clamped to 16…256 (k-means on 2 cores stays under a
 * minute at 1M rows), and at most one per 4 rows, so an index forced on a small catalog
 * (`buildAnn`, `m6 eval --tasks search`) still trains partitions that hold rows.
 */
export function annPartitions(rows: number): number {
  return Math.max(1, Math.min(256, Math.max(16, Math.round(Math.sqrt(rows))), Math.floor(rows / 4)));
}

/** Fewest rows an ANN index trains on: PQ trains 256 centroids per sub-vector; IVF_FLAT only needs rows for its partitions. */
export function annMinRows(type: AnnType): number {
  return type === 'ivf_pq' ? 256 : 4;
}

export const DEFAULT_ANN: AnnOptions = Object.freeze({ threshold: 100_000, type: 'ivf_flat', columns: VECTOR_COLUMNS, nprobes: 10, filteredNprobes: 60, refineFactor: 20 });

export interface OpenOptions {
  /** The store (default: the one found at `uri`, else `lance`). */
  store?: StoreKind;
  /** The weights the caller's vectors come from; needed to create an index, to write and to search. */
  weights?: IndexProvenance;
  /** Create the index when there is none (default true; a reader passes false, so a mistyped path is an error, not a new empty index). */
  create?: boolean;
  ann?: Partial<AnnOptions>;
  /** Object-store settings for a lance URI (credentials, region, endpoint: LanceDB's `storageOptions`). */
  storageOptions?: Readonly<Record<string, string>>;
}

export interface UpsertOptions {
  /** What to do with a row whose id is already in the index (default `update`; `skip` resumes a build). */
  onExisting?: 'update' | 'skip';
  /** Rows per commit (default 10 000). */
  batchSize?: number;
  /** Called after each committed batch. */
  onBatch?: (p: { rowsSeen: number; inserted: number; updated: number; skipped: number; bad: number }) => void;
  /** Train the ANN index at the end when the catalog has passed the threshold (default true). */
  buildAnn?: boolean;
}

export interface UpsertReport {
  inserted: number;
  updated: number;
  /** Rows left alone because their id was present (`onExisting: 'skip'`), or repeated later in the same call. */
  skipped: number;
  bad: BadIndexRow[];
  /** Whether an ANN index was trained or refreshed by this call. */
  annBuilt: boolean;
}

export interface SearchOptions {
  k?: number;
  /** A filter over the catalog's columns: the SQL-like string a user writes, or a tree from `F`. */
  where?: string | Filter;
  vectorColumn?: VectorColumn;
  /** Skip the ANN index: an exact scan (the ground truth). */
  exact?: boolean;
  nprobes?: number;
  refineFactor?: number;
}

export interface SearchHit {
  id: string;
  /** Dot product of the query and the row's vector (cosine similarity for unit vectors). */
  score: number;
  title: string;
  imagePath: string;
  label: string;
  price: number | null;
  /** The row's attribute columns (colour, pattern…), as stored. */
  attributes: Record<string, string>;
}

export interface AnnColumnInfo {
  column: VectorColumn;
  /** `none`: exact scans; `ready`: every row indexed; `partial`: rows added since training are scanned exactly. */
  state: 'none' | 'ready' | 'partial';
  type?: string;
  indexedRows: number;
  unindexedRows: number;
}

export interface IndexInfo extends IndexMeta {
  uri: string;
  /** Rows now (`rows` in the metadata is the count at the last write). */
  rows: number;
  ann: { threshold: number; columns: AnnColumnInfo[] };
  /** Why searching is refused, when it is (other weights, or none given). */
  refused?: string;
}

/** The rows stored, for a store that needs only these operations. */
export interface StoreBackend {
  readonly kind: StoreKind;
  readMeta(): Promise<IndexMeta | undefined>;
  writeMeta(meta: IndexMeta): Promise<void>;
  count(): Promise<number>;
  /**
   * Writes one batch atomically (ids unique within it). `append`: the caller knows none of these ids
   * is stored (a build into an empty index), so the store may skip matching them against its rows.
   */
  write(rows: StoredRow[], onExisting: 'update' | 'skip', append: boolean): Promise<{ inserted: number; updated: number }>;
  remove(ids: string[]): Promise<number>;
  get(ids: string[]): Promise<StoredRow[]>;
  search(vector: Float32Array, k: number, column: VectorColumn, where: Filter | undefined, opts: { exact: boolean; nprobes: number; refineFactor: number }): Promise<SearchHit[]>;
  annInfo(columns: readonly VectorColumn[]): Promise<AnnColumnInfo[]>;
  /** After writes: compacts small fragments where the store has them, trains or refreshes ANN indexes when due; true when it trained or refreshed one. */
  maintain(ann: AnnOptions, dims: number, force: boolean): Promise<boolean>;
  close(): Promise<void>;
}

/** Vectors of other weights (or none) against this index: the user picks the right run or rebuilds. */
export class StaleIndexError extends InputError {
  override name = 'StaleIndexError';
}

/** No index at the URI, or one of another store. */
export class CatalogIndexError extends InputError {
  override name = 'CatalogIndexError';
}
export class IndexClosedError extends Error {
  override name = 'IndexClosedError';
}

export interface CatalogIndex extends AsyncDisposable {
  readonly uri: string;
  readonly store: StoreKind;
  upsert(rows: Iterable<CatalogRow> | AsyncIterable<CatalogRow>, opts?: UpsertOptions): Promise<UpsertReport>;
  /** Removes rows by id; returns how many were there. */
  remove(ids: readonly string[]): Promise<number>;
  search(vector: ArrayLike<number>, opts?: SearchOptions): Promise<SearchHit[]>;
  /** Rows by id, in the order asked, missing ids left out. */
  get(ids: readonly string[]): Promise<StoredRow[]>;
  info(): Promise<IndexInfo>;
  /** Trains (or retrains, with `force`) the ANN index now, whatever the threshold. */
  buildAnn(opts?: { force?: boolean }): Promise<boolean>;
  /** Idempotent; any other call after it throws. */
  close(): Promise<void>;
}

/**
 * Opens (or, given `weights`, creates) the catalog index at `uri`: a folder, an object-store URI
 * (lance only), or `:memory:` (exact only, nothing persisted).
 */
export async function openCatalogIndex(uri: string, opts: OpenOptions = {}): Promise<CatalogIndex> {
  const store = opts.store ?? detectStore(uri);
  if (opts.weights) checkProvenance(opts.weights);
  const ann: AnnOptions = { ...DEFAULT_ANN, ...opts.ann };
  const backend: StoreBackend = store === 'exact'
    ? new (await import('./exactStore.js')).ExactStore(uri)
    : await (await import('./lanceStore.js')).LanceStore.open(uri, opts.storageOptions);
  try {
    let meta = await backend.readMeta();
    if (meta === undefined) {
      if (!opts.weights || opts.create === false) throw new CatalogIndexError(`${uri}: no catalog index here; build one with m6 index build --run RUN … --out ${uri}`);
      const now = new Date().toISOString();
      meta = { format: 'm6-catalog-index', version: 1, store, ...pickProvenance(opts.weights), distance: 'dot', createdAt: now, updatedAt: now, rows: 0 };
      await backend.writeMeta(meta);
    } else if (meta.store !== store) {
      throw new CatalogIndexError(`${uri}: this is a ${meta.store} index, opened as ${store}`);
    }
    return new Index(uri, backend, meta, opts.weights, ann);
  } catch (e) {
    await backend.close();
    throw e;
  }
}

function detectStore(uri: string): StoreKind {
  if (uri === ':memory:') return 'exact';
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && existsSync(join(uri, 'exact.safetensors'))) return 'exact';
  return 'lance';
}

function pickProvenance(w: IndexProvenance): IndexProvenance {
  return { run: w.run, weightsDigest: w.weightsDigest, model: w.model, dims: w.dims };
}

function checkProvenance(w: IndexProvenance): void {
  for (const k of ['run', 'weightsDigest', 'model'] as const) {
    if (typeof w[k] !== 'string' || !w[k]) throw new TypeError(`weights.${k}: expected a non-empty string, got ${JSON.stringify(w[k])}`);
  }
  if (!Number.isInteger(w.dims) || w.dims < 1) throw new TypeError(`weights.dims: expected a positive integer, got ${JSON.stringify(w.dims)}`);
}

class Index implements CatalogIndex {
  private closed = false;
  /** Why writes and searches are refused, or undefined when they are allowed. */
  private readonly refused: string | undefined;

  constructor(readonly uri: string, private readonly backend: StoreBackend, private meta: IndexMeta,
    weights: IndexProvenance | undefined, private readonly ann: AnnOptions) {
    this.refused = refusal(uri, meta, weights);
  }

  get store(): StoreKind { return this.backend.kind; }

  private live(what: string): void {
    if (this.closed) throw new IndexClosedError(`CatalogIndex ${this.uri}: ${what}() after close()`);
  }
  private writable(what: string): void {
    this.live(what);
    if (this.refused) throw new StaleIndexError(this.refused);
  }

  async upsert(rows: Iterable<CatalogRow> | AsyncIterable<CatalogRow>, opts: UpsertOptions = {}): Promise<UpsertReport> {
    this.writable('upsert');
    const batchSize = opts.batchSize ?? 10_000;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`upsert: batchSize must be a positive integer, got ${batchSize}`);
    const onExisting = opts.onExisting ?? 'update';
    const report: UpsertReport = { inserted: 0, updated: 0, skipped: 0, bad: [], annBuilt: false };
    const dims = this.meta.dims;
    let seen = 0, pending: StoredRow[] = [];
    // A build into an empty index appends: no id can be present but those this call wrote, which it
    // remembers. Writing into a non-empty index (an update, a resumed build) matches ids in the store.
    const written = (await this.backend.count()) === 0 ? new Set<string>() : undefined;
    const flush = async (): Promise<void> => {
      if (!pending.length) return;
      const unique = lastById(pending);
      report.skipped += pending.length - unique.length;
      pending = [];
      const append = written !== undefined && !unique.some((r) => written.has(r.id));
      const r = await this.backend.write(unique, onExisting, append);
      if (written) for (const row of unique) written.add(row.id);  // stored now, whichever way they went
      report.inserted += r.inserted;
      report.updated += r.updated;
      report.skipped += unique.length - r.inserted - r.updated;
      opts.onBatch?.({ rowsSeen: seen, inserted: report.inserted, updated: report.updated, skipped: report.skipped, bad: report.bad.length });
    };
    try {
      for await (const raw of rows) {
        const r = checkRow(raw, ++seen, dims);
        if ('reason' in r) report.bad.push(r);
        else pending.push(r);
        if (pending.length >= batchSize) await flush();
      }
      await flush();
    } finally {
      // What was committed stays committed: the metadata follows it even when the rows' source failed.
      if (report.inserted || report.updated) await this.touch();
    }
    if (opts.buildAnn ?? true) report.annBuilt = await this.backend.maintain(this.ann, dims, false);
    return report;
  }

  async remove(ids: readonly string[]): Promise<number> {
    this.writable('remove');
    for (const [i, id] of ids.entries()) {
      if (typeof id !== 'string' || !id) throw new TypeError(`remove: ids[${i}] is ${JSON.stringify(id)}; expected a non-empty string`);
    }
    const n = ids.length ? await this.backend.remove([...new Set(ids)]) : 0;
    if (n) await this.touch();
    return n;
  }

  async search(vector: ArrayLike<number>, opts: SearchOptions = {}): Promise<SearchHit[]> {
    this.writable('search');
    const k = opts.k ?? 10;
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`search: k must be a positive integer, got ${k}`);
    const column = opts.vectorColumn ?? 'fused';
    if (!VECTOR_COLUMNS.includes(column)) throw new RangeError(`search: vectorColumn must be one of ${VECTOR_COLUMNS.join(', ')}, got ${JSON.stringify(column)}`);
    const dims = this.meta.dims;
    if (vector.length !== dims) throw new RangeError(`search: the query vector has ${vector.length} numbers; this index (${this.meta.model}, run ${this.meta.run}) holds ${dims}`);
    const q = Float32Array.from(vector);
    const bad = q.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new RangeError(`search: the query vector has ${q[bad]} at [${bad}]; expected finite numbers`);
    const where = opts.where === undefined ? undefined : F.from(opts.where);
    return this.backend.search(q, k, column, where, { exact: opts.exact ?? false, nprobes: opts.nprobes ?? (where ? this.ann.filteredNprobes : this.ann.nprobes), refineFactor: opts.refineFactor ?? this.ann.refineFactor });
  }

  async get(ids: readonly string[]): Promise<StoredRow[]> {
    this.live('get');
    if (!ids.length) return [];
    const rows = await this.backend.get([...new Set(ids)]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async info(): Promise<IndexInfo> {
    this.live('info');
    const rows = await this.backend.count();
    const columns = this.store === 'exact' ? VECTOR_COLUMNS.map((c): AnnColumnInfo => ({ column: c, state: 'none', indexedRows: 0, unindexedRows: rows }))
      : await this.backend.annInfo(this.ann.columns);
    return { ...this.meta, uri: this.uri, rows, ann: { threshold: this.ann.threshold, columns }, ...(this.refused ? { refused: this.refused } : {}) };
  }

  async buildAnn(opts: { force?: boolean } = {}): Promise<boolean> {
    this.writable('buildAnn');
    return this.backend.maintain({ ...this.ann, threshold: 1 }, this.meta.dims, opts.force ?? false);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.backend.close();
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.close(); }

  private async touch(): Promise<void> {
    this.meta = { ...this.meta, rows: await this.backend.count(), updatedAt: new Date().toISOString() };
    await this.backend.writeMeta(this.meta);
  }
}

function refusal(uri: string, meta: IndexMeta, w: IndexProvenance | undefined): string | undefined {
  const built = `run '${meta.run}' (weights ${meta.weightsDigest}, ${meta.model}, ${meta.dims} dims)`;
  if (!w) return `${uri}: opened without weights, so read-only; this index was built by ${built}: open it with that run's weights to search or write`;
  if (w.weightsDigest !== meta.weightsDigest || w.dims !== meta.dims) {
    return `${uri}: this index was built by ${built}, but the vectors come from run '${w.run}' (weights ${w.weightsDigest}, ${w.model}, ${w.dims} dims): ` +
      `vectors of different weights do not compare. Rebuild the index with this run (m6 index build), or query with run '${meta.run}'`;
  }
  return undefined;
}
