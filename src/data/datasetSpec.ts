// The dataset spec: one description of "where the examples are and which columns mean what",
// shared by every verb that takes data (`m6 data inspect`, later `m6 train`, `m6 eval`, `m6 index`).
// It comes from command-line flags or from a small JSON/YAML file (`--data FILE`); both go through
// `resolveDatasetSpec`, so they accept the same keys and fail with the same messages.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { fileReadProblem, InputError } from '../torch/inputError.js';
import { BraceError, braceExpand, splitOutsideBraces } from './braceExpand.js';
import type { InteractionsSpec } from './interactions.js';

/** An error in the spec itself (unknown key, missing manifest, bad split): the user must fix it. */
export class DatasetSpecError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetSpecError';
  }
}

export type ManifestFormat = 'csv' | 'jsonl';

export interface SplitFraction {
  name: string;
  fraction: number;
}

/** Add the columns of a second table to each row, matched on a key (e.g. class id → class name). */
export interface JoinSpec {
  file: string;
  /** Column of the manifest holding the key. */
  left: string;
  /** Column of the joined table holding the same key. */
  right: string;
  delimiter?: string;
}

/** A validated spec with absolute paths. */
export interface DatasetSpec {
  manifest?: string;
  /** WebDataset-style tar shards (absolute paths, braces expanded, in order): each sample a group of members sharing a key. */
  shards?: string[];
  imageFolder?: string;
  format: ManifestFormat;
  /** Field delimiter for CSV-like manifests; undefined means sniffed from the header line. */
  delimiter?: string;
  /** Column names of a header-less manifest. */
  columns?: string[];
  imageRoot?: string;
  imageCol?: string;
  imageExt?: string;
  textCols: string[];
  /** Columns holding paths (under textRoot) of text files whose contents join the text. */
  textFileCols: string[];
  textRoot?: string;
  /** Put between joined text columns. */
  textJoin: string;
  labelCol?: string;
  /** A numeric column kept with each row (a catalog index stores it for filters such as `price < 40`). */
  priceCol?: string;
  /** Columns kept with each row as its attributes (name → value), e.g. colour, pattern. */
  attributeCols?: string[];
  idCol?: string;
  splitCol?: string;
  split?: SplitFraction[];
  splitSeed: number;
  /** With `split`: rows that share this column's value (a sender, a product family) land in one split together. */
  splitGroupCol?: string;
  join?: JoinSpec;
  /** Shoppers' behaviour (events or sequences); a spec may have it and no manifest (items are ids only). */
  interactions?: InteractionsSpec;
  /** Baskets/outfits: items that go together, read like interactions but never ordered. */
  baskets?: InteractionsSpec;
}

/** The object form of the `baskets` key (its own columns: an outfit id is not a shopper id). */
export interface BasketsInput {
  file: string;
  userCol?: string;
  itemCol?: string;
  format?: string;
  delimiter?: string;
}

/** What a user writes, on the command line or in a spec file; every value still unchecked. */
export interface DatasetSpecInput {
  manifest?: string;
  /** A brace pattern (`data/{000000..000127}.tar`), a comma-separated list, or a list of either. */
  shards?: string | string[];
  imageFolder?: string;
  format?: string;
  delimiter?: string;
  columns?: string | string[];
  imageRoot?: string;
  imageCol?: string;
  imageExt?: string;
  textCol?: string | string[];
  textFileCol?: string | string[];
  textRoot?: string;
  textJoin?: string;
  labelCol?: string;
  priceCol?: string;
  attributeCol?: string | string[];
  idCol?: string;
  splitCol?: string;
  split?: string | Record<string, number>;
  splitSeed?: string | number;
  splitGroupCol?: string;
  join?: string | { file: string; on?: string; left?: string; right?: string; delimiter?: string };
  joinOn?: string;
  interactions?: string;
  /** events or sequences (default: sniffed from the file). */
  interactionsFormat?: string;
  userCol?: string;
  itemCol?: string;
  timeCol?: string;
  eventCol?: string;
  events?: string | string[];
  /** A path (columns `basket`, `item`) or {file, userCol, itemCol}. */
  baskets?: string | BasketsInput;
}

const SPEC_KEYS: ReadonlyArray<keyof DatasetSpecInput> = [
  'manifest', 'shards', 'imageFolder', 'format', 'delimiter', 'columns', 'imageRoot', 'imageCol', 'imageExt',
  'textCol', 'textFileCol', 'textRoot', 'textJoin', 'labelCol', 'priceCol', 'attributeCol', 'idCol', 'splitCol', 'split',
  'splitSeed', 'splitGroupCol', 'join', 'joinOn', 'interactions', 'interactionsFormat', 'userCol', 'itemCol',
  'timeCol', 'eventCol', 'events', 'baskets',
];
/** Keys whose values are paths, resolved against the spec file's folder. */
const PATH_KEYS: ReadonlyArray<keyof DatasetSpecInput> = ['manifest', 'imageFolder', 'imageRoot', 'textRoot', 'interactions'];

function camelCase(key: string): string {
  return key.replace(/[-_]([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function listOf(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const items = Array.isArray(value) ? value : value.split(',');
  return items.map((s) => String(s).trim()).filter((s) => s.length > 0);
}

const DELIMITER_NAMES: Record<string, string> = { tab: '\t', '\\t': '\t', comma: ',', semicolon: ';', pipe: '|' };

export function parseDelimiter(value: string): string {
  const named = DELIMITER_NAMES[value.toLowerCase()];
  if (named !== undefined) return named;
  if (value.length !== 1) {
    throw new DatasetSpecError(`delimiter must be one character or tab/comma/semicolon/pipe, got '${value}'`);
  }
  return value;
}

/** `train:0.9,test:0.1` (or {train: 0.9, test: 0.1}) → ordered fractions summing to 1. */
export function parseSplitFractions(value: string | Record<string, number>): SplitFraction[] {
  const pairs: Array<[string, number]> = [];
  if (typeof value === 'string') {
    for (const part of value.split(',')) {
      const [name, frac, ...rest] = part.split(':').map((s) => s.trim());
      const fraction = Number(frac);
      if (!name || frac === undefined || rest.length > 0 || !Number.isFinite(fraction)) {
        throw new DatasetSpecError(`--split expects name:fraction pairs like train:0.9,test:0.1, got '${value}'`);
      }
      pairs.push([name, fraction]);
    }
  } else {
    for (const [name, fraction] of Object.entries(value)) pairs.push([name, Number(fraction)]);
  }
  let total = 0;
  for (const [name, fraction] of pairs) {
    if (!(fraction >= 0)) throw new DatasetSpecError(`split '${name}' needs a fraction >= 0, got ${fraction}`);
    total += fraction;
  }
  if (pairs.length === 0 || Math.abs(total - 1) > 1e-6) {
    throw new DatasetSpecError(`split fractions must add up to 1, got ${total} from '${JSON.stringify(value)}'`);
  }
  return pairs.map(([name, fraction]) => ({ name, fraction }));
}

/** Which split a row belongs to, from its id alone: stable when rows are added, removed or reordered. */
export function assignSplit(id: string, split: readonly SplitFraction[], seed: number, unit: (id: string, seed: number) => number): string {
  const u = unit(id, seed);
  let acc = 0;
  for (const s of split) {
    acc += s.fraction;
    if (u < acc) return s.name;
  }
  return split[split.length - 1]!.name;
}

/** Keys whose value may be a list of strings (or one comma-separated string). */
const LIST_KEYS: ReadonlySet<string> = new Set(['columns', 'textCol', 'textFileCol', 'attributeCol', 'events', 'shards']);

/**
 * A spec file's value, checked to have the type its key takes (a YAML `textCol: {a: 1}` is named here,
 * not a TypeError later); a YAML number where a string goes (`id_col: 2024`) is taken as its text.
 */
function checkSpecValue(file: string, key: string, name: keyof DatasetSpecInput, value: unknown): unknown {
  const isString = typeof value === 'string';
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  let ok: boolean;
  let expected: string;
  if (LIST_KEYS.has(name)) {
    ok = isString || (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number'));
    expected = 'a string or a list of strings';
  } else if (name === 'split') {
    ok = isString || (isObject && Object.values(value as object).every((v) => typeof v === 'number'));
    expected = 'name:fraction pairs, as a string (train:0.9,test:0.1) or a map of numbers';
  } else if (name === 'splitSeed') {
    ok = isString || typeof value === 'number';
    expected = 'an integer';
  } else if (name === 'join' || name === 'baskets') {
    ok = isString || (isObject && typeof (value as { file?: unknown }).file === 'string' && Object.entries(value as object).every(([k, v]) => k === 'file' || typeof v === 'string'));
    expected = 'a file path, or an object with a "file" path and string settings';
  } else {
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    ok = isString;
    expected = 'a string';
  }
  if (!ok) throw new DatasetSpecError(`dataset spec ${file}: '${key}' must be ${expected}, got ${(JSON.stringify(value) ?? String(value)).slice(0, 80)}`);
  return LIST_KEYS.has(name) && Array.isArray(value) ? value.map(String) : value;
}

/** Read a spec file (JSON or YAML); relative paths in it are relative to the file. */
export function loadDatasetSpecFile(file: string): DatasetSpecInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DatasetSpecError(`dataset spec ${file} ${fileReadProblem(err)}`);
  }
  let raw: unknown;
  try {
    // logLevel 'error': yaml would print its warnings (an unknown tag, an odd alias) to stderr as multi-line blocks; the values are checked below.
    raw = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text, { logLevel: 'error' });
  } catch (err) {
    // yaml's messages add the offending lines under a caret: the first line says it all.
    throw new DatasetSpecError(`dataset spec ${file} is not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DatasetSpecError(`dataset spec ${file} must be an object of settings, e.g. {"manifest": "items.csv", "imageCol": "image"}`);
  }
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const name = camelCase(key);
    if (!(SPEC_KEYS as readonly string[]).includes(name)) {
      throw new DatasetSpecError(`dataset spec ${file}: unknown key '${key}'; known keys: ${SPEC_KEYS.join(', ')}`);
    }
    input[name] = checkSpecValue(file, key, name as keyof DatasetSpecInput, value);
  }
  const base = dirname(resolve(file));
  for (const key of PATH_KEYS) {
    const value = input[key];
    if (typeof value === 'string') input[key] = resolve(base, value);
  }
  if (input.shards !== undefined) input.shards = shardPatterns(input.shards as string | string[]).map((p) => resolve(base, p));
  for (const key of ['join', 'baskets']) {
    const value = input[key];
    if (typeof value === 'string') input[key] = resolve(base, value);
    else if (value !== null && typeof value === 'object' && typeof (value as { file?: unknown }).file === 'string') {
      input[key] = { ...(value as { file: string }), file: resolve(base, (value as { file: string }).file) };
    }
  }
  return input as DatasetSpecInput;
}

/** The `shards` value as patterns: a list as given, one string split at the commas outside braces. */
function shardPatterns(value: string | string[]): string[] {
  return (Array.isArray(value) ? value.map((v) => String(v).trim()) : splitOutsideBraces(value)).filter((v) => v.length > 0);
}

/** Keys that describe a manifest's own files or columns; a shard's sample carries its fields itself. */
const NOT_WITH_SHARDS: ReadonlyArray<keyof DatasetSpecInput> = ['imageFolder', 'format', 'delimiter', 'columns', 'imageRoot', 'imageExt', 'textFileCol', 'textRoot', 'join'];

/** `shards` patterns → absolute shard paths in order (braces expanded); a duplicate or an empty list is an error. */
export function resolveShards(input: DatasetSpecInput, cwd: string): string[] {
  const clash = NOT_WITH_SHARDS.find((k) => input[k] !== undefined);
  if (clash !== undefined) {
    throw new DatasetSpecError(`'${clash}' does not apply to shards: each sample holds its image and fields (key.jpg, key.txt, key.json); name json fields with textCol/labelCol/idCol`);
  }
  if (input.manifest !== undefined) throw new DatasetSpecError('give exactly one of --manifest FILE or --shards PATTERN, not both');
  const paths: string[] = [];
  for (const pattern of shardPatterns(input.shards!)) {
    try {
      paths.push(...braceExpand(pattern).map((p) => resolve(cwd, p)));
    } catch (err) {
      if (err instanceof BraceError) throw new DatasetSpecError(`shards ${err.message}`);
      throw err;
    }
  }
  if (paths.length === 0) throw new DatasetSpecError('shards: no shard named; expected a pattern like data/{000000..000127}.tar or a list of .tar paths');
  const seen = new Set<string>();
  for (const p of paths) {
    // Images are read in place by byte offset: a compressed shard has none to read at.
    if (!p.endsWith('.tar')) throw new DatasetSpecError(`shards: ${p} is not a .tar file; shards are uncompressed tar files (a .tar.gz cannot be read in place: gunzip it, or write shards with m6 data pack)`);
    if (seen.has(p)) throw new DatasetSpecError(`shards: ${p} is named twice; each shard is read once per epoch`);
    seen.add(p);
  }
  return paths;
}

/** The data a spec reads rows from, in words for reports: the manifest, the image folder, or the shards' first and count. */
export function rowSourceOf(spec: DatasetSpec): string | undefined {
  if (spec.shards !== undefined) return spec.shards.length === 1 ? spec.shards[0] : `${spec.shards[0]} … (${spec.shards.length} shards)`;
  return spec.manifest ?? spec.imageFolder;
}

/** Merge spec-file values with flags (flags win), check them, and resolve paths. */
export function resolveDatasetSpec(input: DatasetSpecInput, cwd = process.cwd()): DatasetSpec {
  const manifest = input.manifest !== undefined ? resolve(cwd, input.manifest) : undefined;
  const imageFolder = input.imageFolder !== undefined ? resolve(cwd, input.imageFolder) : undefined;
  const interactions = input.interactions !== undefined ? resolveInteractions(input, cwd) : undefined;
  if (input.shards !== undefined) return resolveShardSpec(input, cwd, interactions);
  // Interactions alone are a dataset (Amazon Beauty has no catalog); otherwise one source of rows.
  if (manifest !== undefined && imageFolder !== undefined) {
    throw new DatasetSpecError('give exactly one of --manifest FILE or --image-folder DIR, not both');
  }
  if (manifest === undefined && imageFolder === undefined && interactions === undefined) {
    throw new DatasetSpecError('give exactly one of --manifest FILE (CSV/TSV/JSONL) or --image-folder DIR (one folder per class), or --interactions FILE (user-item events or sequences)');
  }
  let format: ManifestFormat = 'csv';
  if (input.format !== undefined) {
    const f = input.format.toLowerCase();
    if (f === 'jsonl' || f === 'ndjson') format = 'jsonl';
    else if (f === 'csv' || f === 'tsv') format = 'csv';
    else throw new DatasetSpecError(`--format must be csv, tsv or jsonl, got '${input.format}'`);
  } else if (manifest !== undefined && ['.jsonl', '.ndjson'].includes(extname(manifest).toLowerCase())) {
    format = 'jsonl';
  }
  let delimiter = input.delimiter !== undefined ? parseDelimiter(input.delimiter) : undefined;
  if (delimiter === undefined && (input.format?.toLowerCase() === 'tsv' || (manifest !== undefined && extname(manifest).toLowerCase() === '.tsv'))) {
    delimiter = '\t';
  }
  const columns = listOf(input.columns);
  const textCols = listOf(input.textCol);
  const textFileCols = listOf(input.textFileCol);
  if (input.split !== undefined && input.splitCol !== undefined) {
    throw new DatasetSpecError('give either --split-col NAME or --split train:0.9,test:0.1, not both');
  }
  const split = input.split !== undefined ? parseSplitFractions(input.split) : undefined;
  if (input.splitGroupCol !== undefined && input.split === undefined) {
    throw new DatasetSpecError('--split-group-col COL groups the rows of --split train:0.9,test:0.1 (give --split too); with --split-col each row names its own split');
  }
  if (input.splitGroupCol !== undefined && imageFolder !== undefined) {
    throw new DatasetSpecError('--split-group-col needs --manifest: an image folder has no columns to group by');
  }
  const splitSeed = input.splitSeed !== undefined ? Number(input.splitSeed) : 0;
  if (!Number.isInteger(splitSeed)) throw new DatasetSpecError(`--split-seed must be an integer, got '${input.splitSeed}'`);
  if (imageFolder !== undefined && (input.imageCol !== undefined || textCols.length > 0 || columns.length > 0)) {
    throw new DatasetSpecError('--image-folder takes images and labels from the folder tree; --image-col, --text-col and --columns need --manifest');
  }
  let join: JoinSpec | undefined;
  if (input.join !== undefined) {
    const j = typeof input.join === 'string' ? { file: input.join, on: input.joinOn } : input.join;
    const on = j.on ?? input.joinOn;
    let left = 'left' in j ? j.left : undefined;
    let right = 'right' in j ? j.right : undefined;
    if (on !== undefined) {
      const eq = on.indexOf('=');
      if (eq <= 0 || eq === on.length - 1) throw new DatasetSpecError(`--join-on expects MANIFEST_COL=JOINED_COL, got '${on}'`);
      left = on.slice(0, eq).trim();
      right = on.slice(eq + 1).trim();
    }
    if (left === undefined || right === undefined) throw new DatasetSpecError('--join FILE needs --join-on MANIFEST_COL=JOINED_COL');
    join = { file: resolve(cwd, j.file), left, right };
    if ('delimiter' in j && typeof j.delimiter === 'string') join.delimiter = parseDelimiter(j.delimiter);
  }
  const home = manifest !== undefined ? dirname(manifest) : imageFolder ?? dirname(interactions!.file);
  const spec: DatasetSpec = {
    format,
    textCols,
    textFileCols,
    textJoin: input.textJoin ?? '\n',
    splitSeed,
  };
  if (manifest !== undefined) spec.manifest = manifest;
  if (imageFolder !== undefined) spec.imageFolder = imageFolder;
  if (delimiter !== undefined) spec.delimiter = delimiter;
  if (columns.length > 0) spec.columns = columns;
  if (input.imageCol !== undefined) spec.imageCol = input.imageCol;
  if (input.imageCol !== undefined || imageFolder !== undefined) {
    spec.imageRoot = input.imageRoot !== undefined ? resolve(cwd, input.imageRoot) : home;
  }
  if (input.imageExt !== undefined) spec.imageExt = input.imageExt.startsWith('.') ? input.imageExt : `.${input.imageExt}`;
  if (textFileCols.length > 0) {
    spec.textRoot = input.textRoot !== undefined ? resolve(cwd, input.textRoot) : join !== undefined ? dirname(join.file) : home;
  }
  if (input.labelCol !== undefined) spec.labelCol = input.labelCol;
  if (input.priceCol !== undefined) spec.priceCol = input.priceCol;
  const attributeCols = listOf(input.attributeCol);
  if (attributeCols.length > 0) spec.attributeCols = attributeCols;
  if (input.idCol !== undefined) spec.idCol = input.idCol;
  if (input.splitCol !== undefined) spec.splitCol = input.splitCol;
  if (split !== undefined) spec.split = split;
  if (input.splitGroupCol !== undefined) spec.splitGroupCol = input.splitGroupCol;
  if (join !== undefined) spec.join = join;
  if (interactions !== undefined) spec.interactions = interactions;
  if (input.baskets !== undefined) spec.baskets = resolveBaskets(input.baskets, cwd);
  return spec;
}

/** A spec reading shards: the row keys of a manifest spec, applied to each sample's fields (json keys, txt, cls). */
function resolveShardSpec(input: DatasetSpecInput, cwd: string, interactions: InteractionsSpec | undefined): DatasetSpec {
  const shards = resolveShards(input, cwd);
  // The row rules (split, id, label, text) are a manifest's: resolve them as for one, then drop its manifest.
  const { manifest: _m, format: _f, ...spec } = resolveDatasetSpec({ ...input, shards: undefined, manifest: shards[0] }, cwd);
  const out: DatasetSpec = { ...spec, format: 'csv', shards };
  delete out.imageRoot;
  if (interactions !== undefined) out.interactions = interactions;
  return out;
}

/** 'events' for tables; a .txt whose first line has no CSV delimiter is `user item item …` sequences. */
function sniffInteractionsFormat(file: string): 'events' | 'sequences' {
  const ext = extname(file).toLowerCase();
  if (ext !== '.txt') return 'events';
  let first = '';
  try {
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(4096);
      first = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8').split('\n')[0]!;
    } finally {
      closeSync(fd);
    }
  } catch {
    return 'sequences'; // unreadable: readInteractions says so, naming the file
  }
  return /[,\t;|]/.test(first) ? 'events' : 'sequences';
}

function parseInteractionsFormat(value: string | undefined, file: string, flag: string): 'events' | 'sequences' {
  if (value === undefined) return sniffInteractionsFormat(file);
  const f = value.toLowerCase();
  if (f === 'events' || f === 'sequences') return f;
  throw new DatasetSpecError(`${flag} must be events (one row per user-item event) or sequences (\`user item item …\` per line), got '${value}'`);
}

function resolveInteractions(input: DatasetSpecInput, cwd: string): InteractionsSpec {
  const file = resolve(cwd, input.interactions!);
  const format = parseInteractionsFormat(input.interactionsFormat, file, '--interactions-format');
  const events = listOf(input.events);
  if (events.length > 0 && input.eventCol === undefined) {
    throw new DatasetSpecError(`--events ${events.join(',')} keeps rows by their event: give --event-col NAME too`);
  }
  if (format === 'sequences' && (input.timeCol !== undefined || input.eventCol !== undefined)) {
    throw new DatasetSpecError(`--interactions ${file} holds sequences (\`user item item …\`, already in time order): --time-col and --event-col apply to event tables only`);
  }
  const spec: InteractionsSpec = { file, format, userCol: input.userCol ?? 'user', itemCol: input.itemCol ?? 'item' };
  if (extname(file).toLowerCase() === '.tsv') spec.delimiter = '\t';
  else if (input.manifest === undefined && input.delimiter !== undefined) spec.delimiter = parseDelimiter(input.delimiter);
  if (input.timeCol !== undefined) spec.timeCol = input.timeCol;
  if (input.eventCol !== undefined) spec.eventCol = input.eventCol;
  if (events.length > 0) spec.events = events;
  return spec;
}

function resolveBaskets(value: string | BasketsInput, cwd: string): InteractionsSpec {
  const b: BasketsInput = typeof value === 'string' ? { file: value } : value;
  if (typeof b.file !== 'string') throw new DatasetSpecError('baskets must be a file path or {file, userCol, itemCol}');
  const file = resolve(cwd, b.file);
  const spec: InteractionsSpec = { file, format: parseInteractionsFormat(b.format, file, 'baskets format'), userCol: b.userCol ?? 'basket', itemCol: b.itemCol ?? 'item', baskets: true };
  if (b.delimiter !== undefined) spec.delimiter = parseDelimiter(b.delimiter);
  else if (extname(file).toLowerCase() === '.tsv') spec.delimiter = '\t';
  return spec;
}
