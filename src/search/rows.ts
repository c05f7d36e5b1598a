// What a catalog index holds per item, and the checks a row passes before it is written. A bad row
// (no id, a vector of the wrong length, a NaN, a vector that is not unit length, a price that is not
// a number) is reported with its position, id, field and expected vs got; the other rows are kept.

export type VectorColumn = 'fused' | 'image' | 'text';
export const VECTOR_COLUMNS: readonly VectorColumn[] = Object.freeze(['fused', 'image', 'text']);

/** One catalog item as given to `upsert`: its vectors (unit length, the index's dims) and its own columns. */
export interface CatalogRow {
  id: string;
  image: ArrayLike<number>;
  text: ArrayLike<number>;
  /** Defaults to normalize(image + text). */
  fused?: ArrayLike<number>;
  title?: string;
  label?: string;
  price?: number | null;
  attributes?: Readonly<Record<string, string>>;
  imagePath?: string;
}

/** A row as the index stores it: every column present (empty strings / null where not given). */
export interface StoredRow {
  id: string;
  title: string;
  label: string;
  price: number | null;
  attributes: Record<string, string>;
  imagePath: string;
  image: Float32Array;
  text: Float32Array;
  fused: Float32Array;
}

export type BadIndexRowReason = 'missing id' | 'wrong vector length' | 'not finite' | 'not unit length' | 'wrong type';

export interface BadIndexRow {
  reason: BadIndexRowReason;
  /** 1-based position of the row in what this upsert call was given. */
  row: number;
  id?: string;
  field: string;
  expected: string;
  got: string;
}

export function formatBadIndexRow(b: BadIndexRow): string {
  return `row ${b.row}${b.id !== undefined ? ` (id '${b.id}')` : ''}: ${b.reason}, field '${b.field}', expected ${b.expected}, got ${b.got}`;
}

/** |‖v‖ − 1| allowed for a vector to count as unit length (float32 round-off of an L2-normalised vector is ~1e-7). */
export const UNIT_TOLERANCE = 1e-3;

/** The row as stored, or the first thing wrong with it. `row` is its 1-based position for the report. */
export function checkRow(r: unknown, row: number, dims: number): StoredRow | BadIndexRow {
  if (typeof r !== 'object' || r === null) return { reason: 'wrong type', row, field: '(row)', expected: 'an object', got: describe(r) };
  const o = r as Record<string, unknown>;
  const id = o.id;
  if (typeof id !== 'string' || id.length === 0) {
    return { reason: 'missing id', row, field: 'id', expected: 'a non-empty string', got: describe(id) };
  }
  const bad = (reason: BadIndexRowReason, field: string, expected: string, got: string): BadIndexRow => ({ reason, row, id, field, expected, got });
  const vec = (field: VectorColumn): Float32Array | BadIndexRow => {
    const v = o[field];
    if (!isArrayLikeOfNumbers(v)) return bad('wrong type', field, `an array of ${dims} numbers`, describe(v));
    return checkVector(v, field, dims, bad);
  };
  const image = vec('image');
  if (!(image instanceof Float32Array)) return image;
  const text = vec('text');
  if (!(text instanceof Float32Array)) return text;
  let fused: Float32Array | BadIndexRow;
  if (o.fused === undefined || o.fused === null) {
    fused = new Float32Array(dims);
    let n = 0;
    for (let i = 0; i < dims; i++) { fused[i] = image[i]! + text[i]!; n += fused[i]! * fused[i]!; }
    n = Math.sqrt(n);
    if (n < 1e-6) return bad('not unit length', 'fused', 'image + text to be non-zero (it is normalised)', 'image = −text');
    for (let i = 0; i < dims; i++) fused[i]! /= n;
  } else {
    fused = vec('fused');
    if (!(fused instanceof Float32Array)) return fused;
  }
  const str = (field: string): string | BadIndexRow => {
    const v = o[field];
    if (v === undefined || v === null) return '';
    return typeof v === 'string' ? v : bad('wrong type', field, 'a string', describe(v));
  };
  const title = str('title');
  if (typeof title !== 'string') return title;
  const label = str('label');
  if (typeof label !== 'string') return label;
  const imagePath = str('imagePath');
  if (typeof imagePath !== 'string') return imagePath;
  const p = o.price;
  if (p !== undefined && p !== null && (typeof p !== 'number' || !Number.isFinite(p))) return bad('wrong type', 'price', 'a finite number or null', describe(p));
  const attributes: Record<string, string> = {};
  if (o.attributes !== undefined && o.attributes !== null) {
    if (typeof o.attributes !== 'object' || Array.isArray(o.attributes)) return bad('wrong type', 'attributes', 'an object of strings', describe(o.attributes));
    for (const [k, v] of Object.entries(o.attributes)) {
      if (typeof v !== 'string') return bad('wrong type', `attributes.${k}`, 'a string', describe(v));
      attributes[k] = v;
    }
  }
  return { id, title, label, price: typeof p === 'number' ? p : null, attributes, imagePath, image, text, fused };
}

function checkVector(v: ArrayLike<number>, field: string, dims: number, bad: (reason: BadIndexRowReason, field: string, expected: string, got: string) => BadIndexRow): Float32Array | BadIndexRow {
  if (v.length !== dims) return bad('wrong vector length', field, `${dims} numbers`, `${v.length}`);
  const out = new Float32Array(dims);
  let n = 0;
  for (let i = 0; i < dims; i++) {
    const x = v[i]!;
    if (typeof x !== 'number' || !Number.isFinite(x)) return bad('not finite', field, 'finite numbers', `${describe(x)} at [${i}]`);
    out[i] = x;
    n += x * x;
  }
  n = Math.sqrt(n);
  if (Math.abs(n - 1) > UNIT_TOLERANCE) return bad('not unit length', field, `‖v‖ = 1 ± ${UNIT_TOLERANCE} (L2-normalised)`, `‖v‖ = ${n.toPrecision(6)}`);
  return out;
}

function isArrayLikeOfNumbers(v: unknown): v is ArrayLike<number> {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  return typeof v;
}

/** Rows of one call with a repeated id: the last one wins (as a second upsert would). Order of first appearance kept. */
export function lastById(rows: StoredRow[]): StoredRow[] {
  const at = new Map<string, number>();
  const out: StoredRow[] = [];
  for (const r of rows) {
    const i = at.get(r.id);
    if (i === undefined) { at.set(r.id, out.length); out.push(r); } else out[i] = r;
  }
  return out;
}
