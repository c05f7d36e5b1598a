// The exact store: every row in memory, a query is one matrix-vector product over all vectors of a
// column through our own tensors, then top-k. It is the ground truth the ANN index is measured
// against, and serves small catalogs. With a folder it persists as `exact.safetensors` (vectors as
// tensors, the other columns as JSON in its metadata; written to a temp file and renamed, so a batch
// is all there or not at all) beside `m6-index.json`.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import { loadSafetensors, saveSafetensors } from '../io/index.js';
import { compileFilter, type Filter, type FilterColumn } from './filter.js';
import { VECTOR_COLUMNS, type StoredRow, type VectorColumn } from './rows.js';
import type { AnnColumnInfo, IndexMeta, SearchHit, StoreBackend } from './catalogIndex.js';

type RowColumns = Omit<StoredRow, VectorColumn>;

export class ExactStore implements StoreBackend {
  readonly kind = 'exact' as const;
  private rows: StoredRow[] = [];
  private readonly slot = new Map<string, number>();
  /** (N, D) float32 per column, built on the first search after a change. */
  private readonly matrices = new Map<VectorColumn, torch.Tensor>();
  private readonly dir: string | undefined;

  constructor(uri: string) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) throw new Error(`${uri}: the exact store lives in memory or in a local folder, not at a URI`);
    this.dir = uri === ':memory:' ? undefined : uri;
    if (this.dir && existsSync(this.dataFile)) this.load();
  }

  private get dataFile(): string { return join(this.dir!, 'exact.safetensors'); }
  private get metaFile(): string { return join(this.dir!, 'm6-index.json'); }
  private memoryMeta: IndexMeta | undefined;

  async readMeta(): Promise<IndexMeta | undefined> {
    if (!this.dir) return this.memoryMeta;
    if (!existsSync(this.metaFile)) return undefined;
    return JSON.parse(readFileSync(this.metaFile, 'utf8')) as IndexMeta;
  }

  async writeMeta(meta: IndexMeta): Promise<void> {
    if (!this.dir) { this.memoryMeta = meta; return; }
    mkdirSync(this.dir, { recursive: true });
    if (!existsSync(this.dataFile)) this.save();
    const tmp = `${this.metaFile}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(meta, null, 2)}\n`);
    renameSync(tmp, this.metaFile);
  }

  async count(): Promise<number> { return this.rows.length; }

  async write(rows: StoredRow[], onExisting: 'update' | 'skip'): Promise<{ inserted: number; updated: number }> {
    let inserted = 0, updated = 0;
    for (const r of rows) {
      const at = this.slot.get(r.id);
      if (at === undefined) { this.slot.set(r.id, this.rows.length); this.rows.push(r); inserted++; }
      else if (onExisting === 'update') { this.rows[at] = r; updated++; }
    }
    if (inserted || updated) this.changed();
    return { inserted, updated };
  }

  async remove(ids: string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const at = this.slot.get(id);
      if (at === undefined) continue;
      const last = this.rows.pop()!;
      this.slot.delete(id);
      if (at < this.rows.length) { this.rows[at] = last; this.slot.set(last.id, at); }
      n++;
    }
    if (n) this.changed();
    return n;
  }

  async get(ids: string[]): Promise<StoredRow[]> {
    return ids.flatMap((id) => { const at = this.slot.get(id); return at === undefined ? [] : [copyRow(this.rows[at]!)]; });
  }

  async search(vector: Float32Array, k: number, column: VectorColumn, where: Filter | undefined): Promise<SearchHit[]> {
    const n = this.rows.length;
    if (!n) return [];
    let eligible: Int32Array | undefined;
    if (where) {
      const keep = compileFilter(where);
      const idx = new Int32Array(n);
      let m = 0;
      let row: StoredRow;
      const read = (c: FilterColumn): string | number | null => readColumn(row, c);
      for (let i = 0; i < n; i++) { row = this.rows[i]!; if (keep(read)) idx[m++] = i; }
      if (!m) return [];
      if (m < n) eligible = idx.subarray(0, m);
    }
    const mat = this.matrix(column);
    const { values, indices } = torch.scope(() => {
      const q = torch.tensor(vector);
      let scores: torch.Tensor, pick: torch.Tensor | undefined;
      if (eligible) {
        pick = torch.tensor(eligible, { dtype: 'int64' });
        scores = mat.indexSelect(0, pick).matmul(q);  // (m, D)·(D) → (m)
      } else {
        scores = mat.matmul(q);                     // (N, D)·(D) → (N)
      }
      const top = scores.topk(Math.min(k, scores.size(0)));
      const at = pick ? pick.indexSelect(0, top.indices) : top.indices;
      return { values: top.values.toTypedArray() as Float32Array, indices: at.toTypedArray() as BigInt64Array };
    });
    return Array.from(values, (score, i) => hit(this.rows[Number(indices[i])]!, score));
  }

  async annInfo(columns: readonly VectorColumn[]): Promise<AnnColumnInfo[]> {
    return columns.map((column) => ({ column, state: 'none', indexedRows: 0, unindexedRows: this.rows.length }));
  }

  async maintain(): Promise<boolean> { return false; }

  async close(): Promise<void> {
    this.dropMatrices();
    this.rows = [];
    this.slot.clear();
  }

  private matrix(column: VectorColumn): torch.Tensor {
    let m = this.matrices.get(column);
    if (m === undefined) {
      const n = this.rows.length, d = this.rows[0]!.fused.length;
      const flat = new Float32Array(n * d);
      for (let i = 0; i < n; i++) flat.set(this.rows[i]![column], i * d);
      m = torch.tensor(flat, { shape: [n, d] });
      this.matrices.set(column, m);
    }
    return m;
  }

  private dropMatrices(): void {
    for (const m of this.matrices.values()) m.dispose();
    this.matrices.clear();
  }

  private changed(): void {
    this.dropMatrices();
    if (this.dir) this.save();
  }

  private save(): void {
    mkdirSync(this.dir!, { recursive: true });
    const n = this.rows.length;
    const cols: RowColumns[] = this.rows.map(({ id, title, label, price, attributes, imagePath }) => ({ id, title, label, price, attributes, imagePath }));
    torch.scope(() => {
      const tensors: Record<string, torch.Tensor> = {};
      for (const c of VECTOR_COLUMNS) {
        const d = n ? this.rows[0]![c].length : 0;
        const flat = new Float32Array(n * d);
        for (let i = 0; i < n; i++) flat.set(this.rows[i]![c], i * d);
        tensors[c] = torch.tensor(flat, { shape: [n, d] });
      }
      saveSafetensors(this.dataFile, tensors, { format: 'm6-catalog-index/exact', rows: JSON.stringify(cols) });
    });
  }

  private load(): void {
    const { tensors, metadata } = loadSafetensors(this.dataFile);
    try {
      const cols = JSON.parse(metadata.rows ?? '[]') as RowColumns[];
      const vecs = Object.fromEntries(VECTOR_COLUMNS.map((c) => {
        const t = tensors.get(c);
        if (!t || t.size(0) !== cols.length) throw new Error(`${this.dataFile}: column '${c}' has ${t?.size(0) ?? 'no'} rows, the row list ${cols.length}`);
        return [c, { data: t.toTypedArray() as Float32Array, d: t.ndim === 2 ? t.size(1) : 0 }];
      })) as Record<VectorColumn, { data: Float32Array; d: number }>;
      this.rows = cols.map((c, i) => ({ ...c, ...Object.fromEntries(VECTOR_COLUMNS.map((v) => [v, vecs[v].data.slice(i * vecs[v].d, (i + 1) * vecs[v].d)])) } as StoredRow));
      this.rows.forEach((r, i) => this.slot.set(r.id, i));
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  }
}

function readColumn(r: StoredRow, c: FilterColumn): string | number | null {
  // The LanceDB table stores a missing title/label/image path as null: read the empty string the same way.
  switch (c) {
    case 'price': return r.price;
    case 'id': return r.id;
    default: return r[c] === '' ? null : r[c];
  }
}

function hit(r: StoredRow, score: number): SearchHit {
  return { id: r.id, score, title: r.title, imagePath: r.imagePath, label: r.label, price: r.price, attributes: { ...r.attributes } };
}

function copyRow(r: StoredRow): StoredRow {
  return { ...r, attributes: { ...r.attributes }, image: r.image.slice(), text: r.text.slice(), fused: r.fused.slice() };
}
