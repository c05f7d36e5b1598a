// Reading shoppers' behaviour: who interacted with which item, in what order. Two shapes arrive in
// practice: an event log (one row per user × item [× time × event], CSV/TSV/JSONL, read with the
// manifest's `readTable`) and pre-built sequences (`user item item …` per line, as S3-Rec ships
// Amazon Beauty). Both become one `InteractionLog`: per user, item ids in time order. Without a
// time column a user's rows are a basket (an outfit, an order): a set, not a sequence.
import { readFile } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { extname } from 'node:path';
import { BadRowLog } from './badRows.js';
import { DatasetSpecError } from './datasetSpec.js';
import { checkColumns, readTable } from './manifest.js';

export interface InteractionsSpec {
  file: string;                         // absolute path
  /** 'events': one row per (user, item[, time][, event]) in CSV/TSV/JSONL; 'sequences': one user per line, `user item item …` in time order (whitespace-separated, no header: Amazon Beauty's Beauty.txt). */
  format: 'events' | 'sequences';
  delimiter?: string;
  userCol: string;                      // default 'user' (events only)
  itemCol: string;                      // default 'item'
  timeCol?: string;                     // numbers or ISO dates; absent = each user's rows are one basket (unordered set)
  eventCol?: string;
  /** Keep only rows whose event is one of these (e.g. ['click','cart','purchase']); default all. */
  events?: string[];
  /** Each user (line) is a basket, a set of items that go together, even in the sequences format (ordered=false). */
  baskets?: boolean;
}

export interface InteractionLog {
  /** Per user, item ids in time order (a stable sort on time; file order breaks ties). Consecutive repeats of one item are collapsed to one step (a view, a click and a cart of one item are one interaction). */
  sequences: Map<string, string[]>;
  /** false when there is no time column: each user's list is then a basket/outfit (a set of items that go together), not a sequence. */
  ordered: boolean;
  /** Rows read (good ones), and the bad rows (missing user/item, unparsable time, wrong field count…), with file and row. */
  rows: number;
  /** Good rows dropped because their event is not one of `spec.events` (not bad: asked for). */
  filtered: number;
  bad: BadRowLog;
  source: string;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** A time value as a number: a plain number (epoch seconds, a step) or an ISO date; undefined when neither. */
export function parseTime(value: string): number | undefined {
  if (value === '') return undefined;
  const n = Number(value);
  if (Number.isFinite(n)) return n;
  if (!ISO_DATE.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Drop consecutive repeats (a sequence) or every repeat (a basket: a set keeps first appearances). */
function collapse(items: string[], ordered: boolean): string[] {
  if (!ordered) return [...new Set(items)];
  const out: string[] = [];
  for (const it of items) if (out[out.length - 1] !== it) out.push(it);
  return out;
}

async function readSequences(spec: InteractionsSpec, bad: BadRowLog): Promise<InteractionLog> {
  let buf: Buffer;
  try {
    buf = await readFile(spec.file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetSpecError(`interactions ${spec.file} ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(err as Error).message}`}`);
  }
  const source = spec.file;
  const split = spec.delimiter !== undefined ? spec.delimiter : /\s+/;
  const sequences = new Map<string, string[]>();
  let rows = 0;
  let start = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  for (let line = 1; start < buf.length; line++) {
    let end = buf.indexOf(10, start);
    if (end < 0) end = buf.length;
    const bytes = buf.subarray(start, end);
    start = end + 1;
    if (!isUtf8(bytes)) {
      bad.add({ reason: 'invalid UTF-8', source, row: line, expected: 'UTF-8 text', got: `bytes ${bytes.subarray(0, 24).toString('hex')}` });
      continue;
    }
    const text = bytes.toString('utf8').trim();
    if (text === '') continue;
    const [user, ...items] = text.split(split).map((s) => s.trim()).filter((s) => s !== '');
    if (items.length === 0) {
      bad.add({ reason: 'missing value', source, row: line, field: 'item', expected: '`user item item …`: at least one item after the user', got: `'${text.slice(0, 40)}'` });
      continue;
    }
    rows++;
    // A user on two lines: the later line continues the earlier one (files are in time order).
    const seq = sequences.get(user!);
    if (seq === undefined) sequences.set(user!, items);
    else seq.push(...items);
  }
  const ordered = spec.baskets !== true;
  for (const [user, seq] of sequences) sequences.set(user, collapse(seq, ordered));
  return { sequences, ordered, rows, filtered: 0, bad, source };
}

async function readEvents(spec: InteractionsSpec, bad: BadRowLog): Promise<InteractionLog> {
  const ext = extname(spec.file).toLowerCase();
  const tableOpts: Parameters<typeof readTable>[1] = { format: ext === '.jsonl' || ext === '.ndjson' ? 'jsonl' : 'csv', bad, what: 'interactions' };
  if (spec.delimiter !== undefined) tableOpts.delimiter = spec.delimiter;
  const table = await readTable(spec.file, tableOpts);
  checkColumns(table, [['--user-col', spec.userCol], ['--item-col', spec.itemCol], ['--time-col', spec.timeCol], ['--event-col', spec.eventCol]]);
  const source = spec.file;
  const keep = spec.events !== undefined ? new Set(spec.events) : undefined;
  const byUser = new Map<string, Array<{ item: string; time: number }>>();
  let rows = 0;
  let filtered = 0;
  for (const { row, fields } of table.records) {
    const user = fields.get(spec.userCol) ?? '';
    const item = fields.get(spec.itemCol) ?? '';
    if (user === '' || item === '') {
      const field = user === '' ? spec.userCol : spec.itemCol;
      bad.add({ reason: 'missing value', source, row, field, expected: user === '' ? 'a user id' : 'an item id', got: 'an empty field' });
      continue;
    }
    let time = 0;
    if (spec.timeCol !== undefined) {
      const raw = fields.get(spec.timeCol) ?? '';
      const t = parseTime(raw);
      if (t === undefined) {
        bad.add({ reason: 'unparsable time', source, row, field: spec.timeCol, expected: 'a number or an ISO date (2024-05-01T12:00:00Z)', got: raw === '' ? 'an empty field' : `'${raw}'` });
        continue;
      }
      time = t;
    }
    if (keep !== undefined && spec.eventCol !== undefined && !keep.has(fields.get(spec.eventCol) ?? '')) {
      filtered++;
      continue;
    }
    rows++;
    let list = byUser.get(user);
    if (list === undefined) byUser.set(user, (list = []));
    list.push({ item, time });
  }
  const ordered = spec.timeCol !== undefined && spec.baskets !== true;
  const sequences = new Map<string, string[]>();
  for (const [user, list] of byUser) {
    // Array.prototype.sort is stable (ES2019): file order breaks ties in time.
    if (ordered) list.sort((a, b) => a.time - b.time);
    sequences.set(user, collapse(list.map((e) => e.item), ordered));
  }
  return { sequences, ordered, rows, filtered, bad, source };
}

/** Read an interaction log; bad rows are counted in `bad` (or a new log) and skipped. */
export async function readInteractions(spec: InteractionsSpec, opts: { bad?: BadRowLog } = {}): Promise<InteractionLog> {
  const bad = opts.bad ?? new BadRowLog();
  if (spec.events !== undefined && spec.eventCol === undefined) {
    throw new DatasetSpecError(`interactions ${spec.file}: events ${spec.events.join(',')} need --event-col NAME (the column holding each row's event)`);
  }
  return spec.format === 'sequences' ? readSequences(spec, bad) : readEvents(spec, bad);
}

/** Counts for reports: users, distinct items, interactions and sequence lengths. */
export function describeInteractions(log: InteractionLog): { users: number; items: number; interactions: number; length: { min: number; median: number; max: number } } {
  const items = new Set<string>();
  const lengths: number[] = [];
  for (const seq of log.sequences.values()) {
    lengths.push(seq.length);
    for (const it of seq) items.add(it);
  }
  lengths.sort((a, b) => a - b);
  const interactions = lengths.reduce((s, n) => s + n, 0);
  const median = lengths.length === 0 ? 0 : lengths.length % 2 === 1 ? lengths[(lengths.length - 1) / 2]! : (lengths[lengths.length / 2 - 1]! + lengths[lengths.length / 2]!) / 2;
  return { users: log.sequences.size, items: items.size, interactions, length: { min: lengths[0] ?? 0, median, max: lengths[lengths.length - 1] ?? 0 } };
}
