// Reading a dataset's rows: CSV/TSV (with or without a header), JSONL, or a class-per-folder tree.
// A row that cannot be used (invalid UTF-8, wrong field count, missing value, a path escaping the
// image root…) is skipped and counted with file, row, field, expected vs got; it never stops the
// read. A wrong column name is different: every row would fail, so it is an error listing the
// columns that exist (and the delimiter the header seems to use, when that is the likely cause).
import { readFile, readdir } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { basename, extname, isAbsolute, join as joinPath, relative, resolve, sep } from 'node:path';
import { parse as parseCsv, type Options as CsvOptions } from 'csv-parse/sync';
import { BadRowLog, type BadRow } from './badRows.js';
import { assignSplit, DatasetSpecError, type DatasetSpec } from './datasetSpec.js';
import { unitHash } from './random.js';
import { readShardDataset } from './shards.js';
import { fileReadProblem } from '../torch/inputError.js';

/** One usable example: where its image is, its text, label and split. */
export interface DataRow {
  id: string;
  source: string;
  /** 1-based record line in the source file (0 for image-folder files; for shards, the sample's place among all the shards' samples). */
  row: number;
  /** Absolute path, already checked to lie inside the image root. */
  imagePath?: string;
  text?: string;
  /** The first of the joined text parts (the title when a title and a description are joined): a
   * short caption, what a shopper would type, for the embed task's texts and design's prompts. */
  caption?: string;
  label?: string;
  /** The price column's number (spec.priceCol), when the row has one. */
  price?: number;
  /** The attribute columns' values (spec.attributeCols) that the row has, by column name. */
  attributes?: Record<string, string>;
  split?: string;
  /** The record's own fields (after a join), kept only when asked (readDataset's keepFields): what `m6 data pack` writes. */
  fields?: ReadonlyMap<string, string>;
}

export interface Dataset {
  source: string;
  columns: string[];
  /** Records in the source, usable or not. */
  totalRows: number;
  rows: DataRow[];
  bad: BadRowLog;
}

/** A parsed table: column names and, per record, its line number and fields. */
export interface Table {
  file: string;
  columns: string[];
  records: Array<{ row: number; fields: Map<string, string> }>;
  totalRows: number;
  delimiter?: string;
}

const DELIMITER_CANDIDATES = [',', '\t', ';', '|'];

function describeDelimiter(d: string): string {
  return d === '\t' ? 'tab' : `'${d}'`;
}

/** Count each candidate delimiter outside quotes on the first line; the most frequent wins. */
export function sniffDelimiter(firstLine: string): string | undefined {
  let best: string | undefined;
  let bestCount = 0;
  for (const d of DELIMITER_CANDIDATES) {
    let count = 0;
    let quoted = false;
    for (const ch of firstLine) {
      if (ch === '"') quoted = !quoted;
      else if (ch === d && !quoted) count++;
    }
    if (count > bestCount) {
      best = d;
      bestCount = count;
    }
  }
  return best;
}

function firstLineOf(buf: Buffer): string {
  const end = buf.indexOf(10);
  return buf.subarray(0, end < 0 ? Math.min(buf.length, 65536) : end).toString('utf8').replace(/^\uFEFF/, '').replace(/\r$/, '');
}

async function readSource(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new DatasetSpecError(`${what} ${file} ${fileReadProblem(err)}`);
  }
}

/**
 * The row's price and attributes (spec.priceCol, spec.attributeCols) into `out`; an empty price is
 * no price, one that is not a number makes the row bad (false).
 */
function catalogFields(out: DataRow, fields: ReadonlyMap<string, string>, spec: DatasetSpec, bad: (b: Omit<BadRow, 'source' | 'row' | 'sample'>) => void): boolean {
  if (spec.priceCol !== undefined) {
    const text = (fields.get(spec.priceCol) ?? '').trim();
    const price = Number(text);
    if (text !== '' && !Number.isFinite(price)) {
      bad({ reason: 'not a number', field: spec.priceCol, expected: 'a price (a number, or empty for none)', got: `'${text.slice(0, 40)}'` });
      return false;
    }
    if (text !== '') out.price = price;
  }
  const attributes: Record<string, string> = {};
  for (const c of spec.attributeCols ?? []) {
    const v = fields.get(c);
    if (v !== undefined && v !== '') attributes[c] = v;
  }
  if (Object.keys(attributes).length > 0) out.attributes = attributes;
  return true;
}

export function jsonValueToString(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** Read a CSV/TSV or JSONL table; bad records go to `bad`, the rest come back as field maps. */
export async function readTable(
  file: string,
  opts: { format: 'csv' | 'jsonl'; delimiter?: string; columns?: string[]; bad: BadRowLog; what?: string },
): Promise<Table> {
  let buf = await readSource(file, opts.what ?? 'manifest');
  // Strip a UTF-8 BOM here: csv-parse's own BOM handling switches its output from bytes to strings.
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
  const source = file;
  if (opts.format === 'jsonl') return readJsonl(buf, source, opts.bad);
  const delimiter = opts.delimiter ?? sniffDelimiter(firstLineOf(buf)) ?? ',';
  const skipped: Array<{ lines: number; message: string }> = [];
  // on_skip exists at runtime (csv-parse 5) but is missing from its typings.
  const csvOptions: CsvOptions & { on_skip: (err: { lines?: number; message: string } | undefined) => void } = {
    // null: fields come back as bytes, so invalid UTF-8 can be reported per field (the typings omit null)
    encoding: null as unknown as BufferEncoding,
    delimiter,
    info: true,
    bom: false,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_skip: (err: { lines?: number; message: string } | undefined) => {
      if (err) skipped.push({ lines: err.lines ?? 0, message: err.message });
    },
  };
  const parsed = parseCsv(buf, csvOptions) as Array<{ record: Buffer[]; info: { lines: number } }>;
  for (const s of skipped) {
    opts.bad.add({ reason: 'malformed row', source, row: s.lines, expected: 'a CSV record', got: s.message });
  }
  let columns: string[];
  let body = parsed;
  if (opts.columns !== undefined) {
    columns = opts.columns;
  } else {
    const header = parsed[0];
    if (header === undefined) throw new DatasetSpecError(`manifest ${file} is empty: expected a header line with column names`);
    columns = header.record.map((b) => b.toString('utf8').trim());
    body = parsed.slice(1);
  }
  const records: Table['records'] = [];
  for (const { record, info } of body) {
    const row = info.lines;
    if (record.length !== columns.length) {
      opts.bad.add({
        reason: 'wrong field count', source, row,
        expected: `${columns.length} fields (${columns.join(describeDelimiter(delimiter) === 'tab' ? '\\t' : delimiter)})`,
        got: `${record.length}`,
      });
      continue;
    }
    const fields = new Map<string, string>();
    let ok = true;
    for (let i = 0; i < columns.length; i++) {
      const bytes = record[i]!;
      if (!isUtf8(bytes)) {
        opts.bad.add({ reason: 'invalid UTF-8', source, row, field: columns[i]!, expected: 'UTF-8 text', got: `bytes ${bytes.subarray(0, 24).toString('hex')}` });
        ok = false;
        break;
      }
      fields.set(columns[i]!, bytes.toString('utf8').trim());
    }
    if (ok) records.push({ row, fields });
  }
  return { file, columns, records, totalRows: body.length + skipped.length, delimiter };
}

function readJsonl(buf: Buffer, source: string, bad: BadRowLog): Table {
  const columns: string[] = [];
  const seen = new Set<string>();
  const records: Table['records'] = [];
  let totalRows = 0;
  let start = 0;
  let line = 0;
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) start = 3;
  while (start < buf.length) {
    let end = buf.indexOf(10, start);
    if (end < 0) end = buf.length;
    line++;
    const bytes = buf.subarray(start, end);
    start = end + 1;
    if (bytes.toString('latin1').trim() === '') continue;
    totalRows++;
    if (!isUtf8(bytes)) {
      bad.add({ reason: 'invalid UTF-8', source, row: line, expected: 'UTF-8 text', got: `bytes ${bytes.subarray(0, 24).toString('hex')}` });
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      bad.add({ reason: 'invalid JSON', source, row: line, expected: 'one JSON object per line', got: (err as Error).message });
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      bad.add({ reason: 'invalid JSON', source, row: line, expected: 'a JSON object', got: Array.isArray(value) ? 'an array' : typeof value });
      continue;
    }
    const fields = new Map<string, string>();
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (!seen.has(key)) {
        seen.add(key);
        columns.push(key);
      }
      const s = jsonValueToString(v);
      if (s !== undefined) fields.set(key, s);
    }
    records.push({ row: line, fields });
  }
  return { file: source, columns, records, totalRows };
}

/** Throw a DatasetSpecError naming the missing column, the columns there are, and a likely cause. */
export function checkColumns(table: Table, wanted: Array<[flag: string, column: string | undefined]>): void {
  for (const [flag, column] of wanted) {
    if (column === undefined || table.columns.includes(column)) continue;
    let hint = '';
    if (table.columns.length === 1 && table.delimiter !== undefined) {
      const other = sniffDelimiter(table.columns[0]!);
      if (other !== undefined && other !== table.delimiter) {
        hint = `; the header looks ${describeDelimiter(other)}-delimited, not ${describeDelimiter(table.delimiter)}-delimited: try --delimiter ${other === '\t' ? 'tab' : other}`;
      }
    }
    throw new DatasetSpecError(
      `${flag} '${column}' is not a column of ${table.file}; columns are: ${table.columns.map((c) => `'${c}'`).join(', ')}${hint}`,
    );
  }
}

/**
 * Resolve a manifest's image reference against the root. A leading '/' means "from the root" (as in
 * grocery's classes.csv); anything that still lands outside the root (../../etc/passwd) is refused.
 */
export function resolveInsideRoot(root: string, reference: string): string | undefined {
  const cleaned = reference.replace(/\\/g, '/').replace(/^\/+/, '');
  const abs = resolve(root, cleaned);
  const rel = relative(root, abs);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
  return abs;
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic']);

async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = joinPath(dir, e.name);
    if (e.isDirectory()) out.push(...(await walkFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

async function readImageFolder(spec: DatasetSpec, bad: BadRowLog, keepFields: boolean): Promise<Dataset> {
  const root = spec.imageFolder!;
  let classes: string[];
  try {
    const entries = await readdir(root, { withFileTypes: true });
    classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  } catch (err) {
    throw new DatasetSpecError(`--image-folder ${root}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message}`);
  }
  if (classes.length === 0) throw new DatasetSpecError(`--image-folder ${root} has no class folders; expected ${root}/<class>/<image files>`);
  const rows: DataRow[] = [];
  let totalRows = 0;
  for (const label of classes) {
    for (const file of await walkFiles(joinPath(root, label))) {
      totalRows++;
      const id = relative(root, file).split(sep).join('/');
      if (!IMAGE_EXTENSIONS.has(extname(file).toLowerCase())) {
        bad.add({ reason: 'not an image', source: root, row: 0, file: id, expected: [...IMAGE_EXTENSIONS].join('/'), got: extname(file) || 'no extension' });
        continue;
      }
      const row: DataRow = { id, source: root, row: 0, imagePath: file, label };
      if (spec.split !== undefined) row.split = assignSplit(id, spec.split, spec.splitSeed, unitHash);
      if (keepFields) row.fields = new Map([['label', label]]);
      rows.push(row);
    }
  }
  return { source: root, columns: ['image', 'label'], totalRows, rows, bad };
}

/** Read every row the spec describes; rows that cannot be used are counted in `bad`. */
export async function readDataset(spec: DatasetSpec, opts: { bad?: BadRowLog; keepFields?: boolean } = {}): Promise<Dataset> {
  const bad = opts.bad ?? new BadRowLog();
  if (spec.imageFolder !== undefined) return readImageFolder(spec, bad, opts.keepFields === true);
  if (spec.shards !== undefined) return readShardDataset(spec, bad, opts.keepFields === true);
  if (spec.manifest === undefined) {
    // A spec may hold interactions only (items are ids, as in Amazon Beauty): nothing to read here.
    const what = spec.interactions !== undefined ? ` (${spec.interactions.file} holds interactions only: item ids with no titles or images)` : '';
    throw new DatasetSpecError(`this command needs catalog rows: give --manifest FILE, --shards PATTERN or --image-folder DIR${what}`);
  }
  const file = spec.manifest;
  const tableOpts: Parameters<typeof readTable>[1] = { format: spec.format, bad };
  if (spec.delimiter !== undefined) tableOpts.delimiter = spec.delimiter;
  if (spec.columns !== undefined) tableOpts.columns = spec.columns;
  const table = await readTable(file, tableOpts);

  let joined: Map<string, Map<string, string>> | undefined;
  let joinedColumns: string[] = [];
  if (spec.join !== undefined) {
    checkColumns(table, [['--join-on', spec.join.left]]);
    const joinOpts: Parameters<typeof readTable>[1] = { format: 'csv', bad: new BadRowLog(), what: 'joined table' };
    if (spec.join.delimiter !== undefined) joinOpts.delimiter = spec.join.delimiter;
    const other = await readTable(spec.join.file, joinOpts);
    checkColumns(other, [['--join-on', spec.join.right]]);
    joined = new Map();
    for (const r of other.records) {
      const key = r.fields.get(spec.join.right);
      if (key !== undefined && !joined.has(key)) joined.set(key, r.fields);
    }
    joinedColumns = other.columns;
  }
  const columns = [...table.columns, ...joinedColumns.filter((c) => !table.columns.includes(c))];
  const all: Table = { ...table, columns };
  checkColumns(all, [
    ['--image-col', spec.imageCol],
    ['--label-col', spec.labelCol],
    ['--price-col', spec.priceCol],
    ...(spec.attributeCols ?? []).map((c): [string, string] => ['--attribute-col', c]),
    ['--id-col', spec.idCol],
    ['--split-col', spec.splitCol],
    ['--split-group-col', spec.splitGroupCol],
    ...spec.textCols.map((c): [string, string] => ['--text-col', c]),
    ...spec.textFileCols.map((c): [string, string] => ['--text-file-col', c]),
  ]);

  const readTextFile = textFileReader();
  const rows: DataRow[] = [];
  const source = file;
  for (const record of table.records) {
    const { row } = record;
    let fields = record.fields;
    if (joined !== undefined && spec.join !== undefined) {
      const key = fields.get(spec.join.left) ?? '';
      const extra = joined.get(key);
      if (extra === undefined) {
        bad.add({ reason: 'unknown label', source, row, field: spec.join.left, expected: `a '${spec.join.right}' of ${basename(spec.join.file)}`, got: `'${key}'` });
        continue;
      }
      fields = new Map([...extra, ...fields]);
    }
    const c: RowContext = { spec, bad, source, row, readTextFile };
    const image = manifestImageOf(fields, c);
    if (image === null) continue;
    const defaultId = spec.idCol !== undefined ? `${row}` : spec.imageCol !== undefined ? fields.get(spec.imageCol)! : `${basename(source)}:${row}`;
    const out = await rowFromFields(fields, c, image, defaultId);
    if (out === undefined) continue;
    if (opts.keepFields === true) out.fields = await withTextFileContents(fields, c);
    rows.push(out);
  }
  return { source, columns, totalRows: table.totalRows, rows, bad };
}

/** The fields with each text-file column's path replaced by the file's text (read already, from the cache): a record that stands alone. */
async function withTextFileContents(fields: ReadonlyMap<string, string>, c: RowContext): Promise<ReadonlyMap<string, string>> {
  if (c.spec.textFileCols.length === 0) return fields;
  const out = new Map(fields);
  for (const col of c.spec.textFileCols) {
    const ref = fields.get(col);
    const abs = ref ? resolveInsideRoot(c.spec.textRoot!, ref) : undefined;
    const text = abs !== undefined ? await c.readTextFile!(abs) : undefined;
    if (typeof text === 'string') out.set(col, text);
    else out.delete(col);
  }
  return out;
}

/** Reads text files once each (several rows may share one), UTF-8 checked. */
function textFileReader(): (path: string) => Promise<string | Error> {
  const textFiles = new Map<string, Promise<string | Error>>();
  return (path) => {
    let p = textFiles.get(path);
    if (p === undefined) {
      p = readFile(path).then(
        (b) => (isUtf8(b) ? b.toString('utf8').trim() : new Error('invalid UTF-8')),
        (e: Error) => e,
      );
      textFiles.set(path, p);
    }
    return p;
  };
}

/** Where a record came from, for its bad-row reports, and how to read its text files. */
export interface RowContext {
  spec: DatasetSpec;
  bad: BadRowLog;
  source: string;
  row: number;
  /** The sample's key, for a sample of a tar shard. */
  sample?: string;
  readTextFile?: (path: string) => Promise<string | Error>;
}

/** Adds a bad row at the record's place (its source and row, or its shard and sample key). */
export function reportBad(c: Pick<RowContext, 'bad' | 'source' | 'row' | 'sample'>, bad: Omit<BadRow, 'source' | 'row' | 'sample'>): void {
  c.bad.add({ ...bad, source: c.source, row: c.row, ...(c.sample !== undefined ? { sample: c.sample } : {}) });
}

/** The manifest's image path of a record: undefined without an image column, null when the cell is bad (reported). */
function manifestImageOf(fields: ReadonlyMap<string, string>, c: RowContext): string | undefined | null {
  const { spec } = c;
  if (spec.imageCol === undefined) return undefined;
  let ref = fields.get(spec.imageCol) ?? '';
  if (ref === '') {
    reportBad(c, { reason: 'missing value', field: spec.imageCol, expected: 'an image file name', got: 'an empty field' });
    return null;
  }
  if (spec.imageExt !== undefined && !ref.toLowerCase().endsWith(spec.imageExt.toLowerCase())) ref += spec.imageExt;
  const abs = resolveInsideRoot(spec.imageRoot!, ref);
  if (abs === undefined) {
    reportBad(c, { reason: 'path escapes root', field: spec.imageCol, expected: `a path inside ${spec.imageRoot}`, got: `'${ref}'` });
    return null;
  }
  return abs;
}

/** The record's text columns' and text files' contents in order; null when one is bad (reported). */
async function textPartsOf(fields: ReadonlyMap<string, string>, c: RowContext): Promise<string[] | null> {
  const { spec } = c;
  const parts: string[] = [];
  for (const col of spec.textCols) {
    const v = fields.get(col);
    if (v) parts.push(v);
  }
  for (const col of spec.textFileCols) {
    const ref = fields.get(col);
    if (!ref) continue;
    const abs = resolveInsideRoot(spec.textRoot!, ref);
    if (abs === undefined) {
      reportBad(c, { reason: 'path escapes root', field: col, expected: `a path inside ${spec.textRoot}`, got: `'${ref}'` });
      return null;
    }
    const text = await c.readTextFile!(abs);
    if (text instanceof Error) {
      // Said as what it is: a file that is there but cannot be read (a folder, no permission) is not "missing".
      const code = (text as NodeJS.ErrnoException).code;
      if (text.message === 'invalid UTF-8') reportBad(c, { reason: 'invalid UTF-8', field: col, file: abs, expected: 'UTF-8 text', got: 'invalid UTF-8 bytes' });
      else reportBad(c, { reason: code === 'ENOENT' ? 'missing file' : 'unreadable file', field: col, file: abs, got: fileReadProblem(text) });
      return null;
    }
    if (text) parts.push(text);
  }
  return parts;
}

/** The record's split: its split column, or its id's (or group's) hash under the split fractions; null when bad (reported). */
function splitOf(fields: ReadonlyMap<string, string>, id: string, c: RowContext): string | undefined | null {
  const { spec } = c;
  if (spec.splitCol !== undefined) {
    const s = fields.get(spec.splitCol) ?? '';
    if (s === '') {
      reportBad(c, { reason: 'missing value', field: spec.splitCol, expected: 'a split name', got: 'an empty field' });
      return null;
    }
    return s;
  }
  if (spec.split === undefined) return undefined;
  // A group's rows hash by the group's value, so the whole group lands in one split.
  const group = spec.splitGroupCol !== undefined ? fields.get(spec.splitGroupCol) ?? '' : id;
  if (group === '') {
    reportBad(c, { reason: 'missing value', field: spec.splitGroupCol!, expected: 'a group value (--split-group-col)', got: 'an empty field' });
    return null;
  }
  return assignSplit(group, spec.split, spec.splitSeed, unitHash);
}

/**
 * A record's fields (a manifest row's columns, or a shard sample's json keys and txt/cls members) as
 * a row under the spec's rules: text, label, id and split; undefined when a cell is bad (reported).
 */
export async function rowFromFields(fields: ReadonlyMap<string, string>, c: RowContext, imagePath: string | undefined, defaultId: string): Promise<DataRow | undefined> {
  const { spec } = c;
  const out: DataRow = { id: '', source: c.source, row: c.row };
  if (imagePath !== undefined) out.imagePath = imagePath;
  if (spec.textCols.length > 0 || spec.textFileCols.length > 0) {
    const parts = await textPartsOf(fields, c);
    if (parts === null) return undefined;
    const text = parts.join(spec.textJoin);
    if (text.trim() === '') {
      reportBad(c, { reason: 'empty text', field: [...spec.textCols, ...spec.textFileCols].join(','), expected: 'some text', got: 'empty' });
      return undefined;
    }
    out.text = text;
    out.caption = parts[0]!.trim();
  }
  if (spec.labelCol !== undefined) {
    const label = fields.get(spec.labelCol) ?? '';
    if (label === '') {
      reportBad(c, { reason: 'missing value', field: spec.labelCol, expected: 'a label', got: 'an empty field' });
      return undefined;
    }
    out.label = label;
  }
  if (!catalogFields(out, fields, spec, (b) => reportBad(c, b))) return undefined;
  out.id = spec.idCol !== undefined ? fields.get(spec.idCol) ?? defaultId : defaultId;
  const split = splitOf(fields, out.id, c);
  if (split === null) return undefined;
  if (split !== undefined) out.split = split;
  return out;
}
