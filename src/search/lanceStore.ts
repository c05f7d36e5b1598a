// The LanceDB store: table `items` (one row per catalog item) and table `m6_meta` (one row: the
// index's metadata as JSON) in one LanceDB database, a local folder or an object-store URI.
// The metadata lives in a table rather than a file beside it because an object store has no atomic
// rename, while every Lance commit is atomic on every store: a replica reads either the old or the new.
//
// Writes are `mergeInsert` on `id`: one commit per batch, update or skip on a present id (a build
// into an empty table appends instead).
// Search is `dot` distance everywhere (the ANN index is trained with it; `_distance` = 1 − dot).
// The ANN index is IVF_FLAT by default (IVF_PQ by option: see AnnType).
// A filter is a prefilter; when the ANN's probed partitions give fewer than k rows that pass it,
// the query is run again as an exact scan of the rows that pass, so a selective filter still
// returns k results.
import { createRequire } from 'node:module';
import './lanceEnv.js';
import * as lancedb from '@lancedb/lancedb';
import { filterToSql, sqlString, type Filter } from './filter.js';
import type { StoredRow, VectorColumn } from './rows.js';
import { annMinRows, annPartitions, type AnnColumnInfo, type AnnOptions, type IndexMeta, type SearchHit, type StoreBackend } from './catalogIndex.js';

// LanceDB loads apache-arrow with require(); an `import` would get the ESM build, whose classes
// fail LanceDB's instanceof checks. Take the very module it uses.
const arrow = createRequire(import.meta.url)('apache-arrow') as typeof import('apache-arrow');

/** The table of catalog rows in an index's LanceDB database (the bench queries it directly). */
export const ITEMS = 'items';
const META = 'm6_meta';
const SCALARS = ['id', 'title', 'label', 'price', 'attributes', 'image_path'] as const;
/** Small fragments (fewer rows than Lance's compaction target) from which a write compacts the table. */
const COMPACT_AT = 16;
/** Ids per `id IN (…)` statement. */
const ID_CHUNK = 1000;

export class LanceStore implements StoreBackend {
  readonly kind = 'lance' as const;
  private items: lancedb.Table | undefined;

  private constructor(private readonly db: lancedb.Connection, items: lancedb.Table | undefined) {
    this.items = items;
  }

  static async open(uri: string, storageOptions?: Readonly<Record<string, string>>): Promise<LanceStore> {
    const db = await lancedb.connect(uri, storageOptions ? { storageOptions: { ...storageOptions } } : {});
    try {
      const names = await db.tableNames();
      return new LanceStore(db, names.includes(ITEMS) ? await db.openTable(ITEMS) : undefined);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  private get table(): lancedb.Table {
    if (!this.items) throw new Error('catalog index: the items table is missing (the metadata was never written)');
    return this.items;
  }

  async readMeta(): Promise<IndexMeta | undefined> {
    if (!(await this.db.tableNames()).includes(META)) return undefined;
    const t = await this.db.openTable(META);
    try {
      const rows = await t.query().toArray() as { key: string; value: string }[];
      const row = rows.find((r) => r.key === 'index');
      return row ? JSON.parse(row.value) as IndexMeta : undefined;
    } finally {
      t.close();
    }
  }

  async writeMeta(meta: IndexMeta): Promise<void> {
    if (!this.items) this.items = await this.db.createEmptyTable(ITEMS, itemSchema(meta.dims), { existOk: true });
    const schema = new arrow.Schema([new arrow.Field('key', new arrow.Utf8(), false), new arrow.Field('value', new arrow.Utf8(), false)]);
    const data = lancedb.makeArrowTable([{ key: 'index', value: JSON.stringify(meta) }], { schema });
    const t = await this.db.createTable(META, data, { mode: 'overwrite' });
    t.close();
  }

  async count(): Promise<number> { return this.table.countRows(); }

  async write(rows: StoredRow[], onExisting: 'update' | 'skip', append: boolean): Promise<{ inserted: number; updated: number }> {
    const t = this.table;
    const data = toArrow(rows, t);
    if (append) {
      // mergeInsert joins the batch against every stored id: at 1M rows that halves build speed.
      await t.add(await data);
      return { inserted: rows.length, updated: 0 };
    }
    let b = t.mergeInsert('id');
    if (onExisting === 'update') b = b.whenMatchedUpdateAll();
    const r = await b.whenNotMatchedInsertAll().execute(await data);
    return { inserted: r.numInsertedRows, updated: r.numUpdatedRows };
  }

  async remove(ids: string[]): Promise<number> {
    let n = 0;
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const r = await this.table.delete(idIn(ids.slice(i, i + ID_CHUNK)));
      n += r.numDeletedRows;
    }
    return n;
  }

  async get(ids: string[]): Promise<StoredRow[]> {
    const out: StoredRow[] = [];
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const chunk = ids.slice(i, i + ID_CHUNK);
      const t = await this.table.query().where(idIn(chunk)).limit(chunk.length).toArrow();
      out.push(...fromArrow(t));
    }
    return out;
  }

  async search(vector: Float32Array, k: number, column: VectorColumn, where: Filter | undefined, opts: { exact: boolean; nprobes: number; refineFactor: number }): Promise<SearchHit[]> {
    const sql = where ? filterToSql(where) : undefined;
    const type = opts.exact ? undefined : (await this.indexes()).get(column)?.indexType;
    const quantised = type !== undefined && type !== 'IvfFlat';
    const run = async (exact: boolean): Promise<SearchHit[]> => {
      let q = this.table.vectorSearch(vector).column(column).distanceType('dot').limit(k).select([...SCALARS, '_distance']);
      if (sql) q = q.where(sql);
      if (exact) q = q.bypassVectorIndex();
      else {
        q = q.nprobes(opts.nprobes);
        // Re-ranking only helps quantised codes; over IVF_FLAT's full vectors it would re-read them.
        if (quantised) q = q.refineFactor(opts.refineFactor);
      }
      return hits(await q.toArrow());
    };
    // Without an ANN index on the column LanceDB scans exactly whatever the options say. With one,
    // fewer than k hits means the probed partitions held too few rows passing the filter: rescan
    // exactly (also when there is no index and simply fewer than k rows pass: a cheap scan then).
    const got = await run(opts.exact);
    if (!opts.exact && got.length < k) return run(true);
    return got;
  }

  async annInfo(columns: readonly VectorColumn[]): Promise<AnnColumnInfo[]> {
    const out: AnnColumnInfo[] = [];
    const rows = await this.table.countRows();
    for (const column of columns) {
      const idx = await this.vectorIndex(column);
      const stats = idx ? await this.table.indexStats(idx.name) : undefined;
      if (!idx || !stats) { out.push({ column, state: 'none', indexedRows: 0, unindexedRows: rows }); continue; }
      out.push({ column, state: stats.numUnindexedRows ? 'partial' : 'ready', type: stats.indexType, indexedRows: stats.numIndexedRows, unindexedRows: stats.numUnindexedRows });
    }
    return out;
  }

  async maintain(ann: AnnOptions, dims: number, force: boolean): Promise<boolean> {
    await this.compact();
    const rows = await this.table.countRows();
    if (rows < Math.max(ann.threshold, annMinRows(ann.type))) return false;
    let did = false, stale = false;
    for (const column of ann.columns) {
      const idx = await this.vectorIndex(column);
      if (idx && !force) {
        const s = await this.table.indexStats(idx.name);
        if (s && s.numUnindexedRows > 0.1 * s.numIndexedRows) stale = true;
        continue;
      }
      const numPartitions = ann.partitions ?? annPartitions(rows);
      const config = ann.type === 'ivf_pq' ? lancedb.Index.ivfPq({ numPartitions, numSubVectors: ann.subVectors ?? defaultSubVectors(dims), distanceType: 'dot' })
        : lancedb.Index.ivfFlat({ numPartitions, distanceType: 'dot' });
      await this.table.createIndex(column, { config, replace: true });
      this.indexCache = undefined;
      did = true;
    }
    if (stale) {
      // Rows added since training are scanned exactly until optimize() adds them to the index
      // (the partitions stay as trained; retrain with buildAnn({ force: true }) after big changes).
      await this.table.optimize();
      this.indexCache = undefined;
      did = true;
    }
    return did;
  }

  /**
   * Merges the small fragments that many commits leave (`m6 index build` commits every batch: a
   * million rows in 256-row batches is ~3,900 fragments) into few, before an ANN index is trained
   * over them: a query visits every fragment (100k rows in 400 fragments: IVF_FLAT p50 2.9 ms,
   * compacted into one: 2.1 ms). The old files stay for Lance's 7 days, so a replica reading the
   * version before compaction keeps working.
   */
  private async compact(): Promise<void> {
    const { fragmentStats } = await this.table.stats();
    if (fragmentStats.numSmallFragments < COMPACT_AT) return;
    await this.table.optimize();
    this.indexCache = undefined;
  }

  async close(): Promise<void> {
    this.items?.close();
    this.items = undefined;
    this.db.close();
  }

  private async vectorIndex(column: VectorColumn): Promise<lancedb.IndexConfig | undefined> {
    return (await this.table.listIndices()).find((i) => i.columns.length === 1 && i.columns[0] === column);
  }

  /** The vector indexes by column, as of open or this store's last index build (a search only needs their type). */
  private indexCache: Map<string, lancedb.IndexConfig> | undefined;
  private async indexes(): Promise<Map<string, lancedb.IndexConfig>> {
    this.indexCache ??= new Map((await this.table.listIndices()).filter((i) => i.columns.length === 1).map((i) => [i.columns[0]!, i]));
    return this.indexCache;
  }
}

/** 4 dims per PQ sub-vector (recall@10 ≥ 0.95 at 1M rows wants finer codes than LanceDB's 16-dim default). */
function defaultSubVectors(dims: number): number {
  for (const per of [4, 8, 16]) if (dims % per === 0) return dims / per;
  return 1;
}

function idIn(ids: string[]): string {
  return `id IN (${ids.map(sqlString).join(', ')})`;
}

function itemSchema(dims: number): import('apache-arrow').Schema {
  const vec = () => new arrow.FixedSizeList(dims, new arrow.Field('item', new arrow.Float32(), true));
  return new arrow.Schema([
    new arrow.Field('id', new arrow.Utf8(), false),
    new arrow.Field('title', new arrow.Utf8(), true),
    new arrow.Field('label', new arrow.Utf8(), true),
    new arrow.Field('price', new arrow.Float64(), true),
    new arrow.Field('attributes', new arrow.Utf8(), true),
    new arrow.Field('image_path', new arrow.Utf8(), true),
    new arrow.Field('image', vec(), false),
    new arrow.Field('text', vec(), false),
    new arrow.Field('fused', vec(), false),
  ]);
}

async function toArrow(rows: StoredRow[], t: lancedb.Table): Promise<import('apache-arrow').Table> {
  const schema = await t.schema() as unknown as import('apache-arrow').Schema;
  const n = rows.length;
  const str = (get: (r: StoredRow) => string) => arrow.vectorFromArray(rows.map((r) => { const s = get(r); return s === '' ? null : s; }), new arrow.Utf8()).data[0]!;
  const children = schema.fields.map((f) => {
    switch (f.name) {
      case 'id': return arrow.vectorFromArray(rows.map((r) => r.id), new arrow.Utf8()).data[0]!;
      case 'title': return str((r) => r.title);
      case 'label': return str((r) => r.label);
      case 'image_path': return str((r) => r.imagePath);
      case 'attributes': return str((r) => (Object.keys(r.attributes).length ? JSON.stringify(r.attributes) : ''));
      case 'price': return arrow.vectorFromArray(rows.map((r) => r.price), new arrow.Float64()).data[0]!;
      case 'image': case 'text': case 'fused': {
        const c = f.name;
        const d = (f.type as import('apache-arrow').FixedSizeList).listSize;
        const flat = new Float32Array(n * d);
        rows.forEach((r, i) => flat.set(r[c], i * d));
        const child = arrow.makeData({ type: new arrow.Float32(), length: n * d, data: flat });
        return arrow.makeData({ type: f.type as import('apache-arrow').FixedSizeList, length: n, nullCount: 0, child });
      }
      default: throw new Error(`catalog index: the items table has a column '${f.name}' this version of m6 does not write`);
    }
  });
  const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children: children as import('apache-arrow').Data[] });
  return new arrow.Table([new arrow.RecordBatch(schema, struct)]);
}

function fromArrow(t: import('apache-arrow').Table): StoredRow[] {
  const col = (name: string) => t.getChild(name)!;
  const id = col('id'), title = col('title'), label = col('label'), price = col('price'), attrs = col('attributes'), path = col('image_path');
  const vec = (name: VectorColumn) => col(name);
  const image = vec('image'), text = vec('text'), fused = vec('fused');
  const f32 = (v: { toArray(): unknown } | null): Float32Array => Float32Array.from(v!.toArray() as Float32Array);
  return Array.from({ length: t.numRows }, (_, i) => ({
    id: id.get(i) as string,
    title: (title.get(i) as string | null) ?? '',
    label: (label.get(i) as string | null) ?? '',
    price: (price.get(i) as number | null) ?? null,
    attributes: attrs.get(i) ? JSON.parse(attrs.get(i) as string) as Record<string, string> : {},
    imagePath: (path.get(i) as string | null) ?? '',
    image: f32(image.get(i)), text: f32(text.get(i)), fused: f32(fused.get(i)),
  }));
}

function hits(t: import('apache-arrow').Table): SearchHit[] {
  const id = t.getChild('id')!, title = t.getChild('title')!, label = t.getChild('label')!, price = t.getChild('price')!, path = t.getChild('image_path')!, dist = t.getChild('_distance')!;
  const attrs = t.getChild('attributes')!;
  return Array.from({ length: t.numRows }, (_, i) => ({
    id: id.get(i) as string,
    score: 1 - (dist.get(i) as number),
    title: (title.get(i) as string | null) ?? '',
    imagePath: (path.get(i) as string | null) ?? '',
    label: (label.get(i) as string | null) ?? '',
    price: (price.get(i) as number | null) ?? null,
    attributes: attrs.get(i) ? JSON.parse(attrs.get(i) as string) as Record<string, string> : {},
  }));
}
